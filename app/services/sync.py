"""Sync as a Qt-free service: login, pull, push, sync, status and conflict resolution.

The GUI (``app.views.sync_ui``) and the CLI (``app.cli.sync``) call only this. Every call returns frozen
dataclasses and a :class:`Changes`; long calls take ``progress(done, total)`` and a ``cancel`` event and are
meant to run off the UI thread. Tokens are read from the OS keyring (or ``REVIEWDESK_TOKEN``) per call and
never returned, stored or logged.

Decision delivery states (``decision_sync.state``): ``pending`` (queued) -> ``synced`` | ``conflict`` |
``cancelled``; ``local`` never leaves the machine (no server, or a skip). ``conflict`` -> ``pending`` with
``force`` (keep mine) or ``cancelled`` (discard mine: a retraction is recorded and neither is ever sent).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from app.models.audit import append_event
from app.models.schema import Annotation, Decision, DecisionSync, Project, Server, SyncState, Task
from app.models.store import Store, now_iso
from app.services import webhook
from app.services.changes import Changes
from app.sync import auth
from app.sync.client import LSClient
from app.sync.errors import AuthError, NoTokenError, SyncError
from app.sync.pull import PullReport, pull_project
from app.sync.push import PushReport, push_server

ClientFactory = Callable[[str, "str | None", "str | None"], LSClient]
Progress = Callable[[int, "int | None"], None]


@dataclass(frozen=True)
class LoginResult:
    server_id: int
    url: str
    email: str | None
    user_id: int | None
    edition: str
    token_kind: str
    token_stored: str  # "keyring" | "environment" (REVIEWDESK_TOKEN fallback)
    warning: str | None = None


@dataclass(frozen=True)
class ServerInfo:
    id: int
    url: str
    edition: str | None
    user_email: str | None
    has_token: bool
    ca_bundle: str | None


@dataclass(frozen=True)
class SyncStatus:
    servers: tuple[ServerInfo, ...]
    pending: int
    conflicts: int
    failed_attempts: int
    last_pull_at: str | None
    last_push_at: str | None
    last_error: str | None

    @property
    def last_sync_at(self) -> str | None:
        stamps = [s for s in (self.last_pull_at, self.last_push_at) if s]
        return max(stamps) if stamps else None


@dataclass(frozen=True)
class ConflictInfo:
    uuid: str
    project_id: int
    task_id: int
    task_server_id: int | None
    annotation_id: int | None
    annotation_server_id: int | None
    verdict: str
    reason: str | None
    comment: str | None
    reviewer: str
    created_at: str
    kind: str  # changed | deleted | task_deleted | other_reviewer
    message: str
    mine_result: tuple[Any, ...] | None  # the fixed result (fix), else what the reviewer judged
    seen_result: tuple[Any, ...] | None  # the annotation as the reviewer saw it
    theirs: dict[str, Any] | None  # the server's version (annotation or the other reviewer's record)
    current_result: tuple[Any, ...] | None  # the annotation as now stored locally (after the pull)


@dataclass(frozen=True)
class PullOutcome:
    report: PullReport
    changes: Changes


@dataclass(frozen=True)
class PushOutcome:
    reports: tuple[tuple[str, PushReport], ...]
    changes: Changes

    @property
    def synced(self) -> int:
        return sum(r.synced for _, r in self.reports)

    @property
    def conflicts(self) -> int:
        return sum(r.conflicts for _, r in self.reports)

    @property
    def failed(self) -> int:
        return sum(r.failed for _, r in self.reports)

    @property
    def auth_required(self) -> tuple[str, ...]:
        return tuple(url for url, r in self.reports if r.auth_required)


@dataclass(frozen=True)
class SyncOutcome:
    push: PushOutcome
    pulls: tuple[PullReport, ...]
    errors: tuple[str, ...]
    changes: Changes
    auth_required: tuple[str, ...] = ()
    rounds: int = 1  # push + verifying pull rounds this sync took
    reappended: int = 0  # records of ours found erased on the server and written again

    @property
    def lost(self) -> int:
        return sum(p.lost for p in self.pulls)


def default_client(url: str, token: str | None, ca_bundle: str | None) -> LSClient:
    return LSClient(url, token, ca_bundle=ca_bundle)


PULL_CHANGES = Changes(projects=True, tasks=True, annotations=True, predictions=True, members=True,
                       sync=True, queue=True)


class SyncService:
    def __init__(self, store: Store, *, client_factory: ClientFactory | None = None) -> None:
        self.store = store
        self.client_factory = client_factory or default_client

    # -- connection ---------------------------------------------------------------------------------------
    def login(self, url: str, token: str, *, ca_bundle: str | None = None, store_token: bool = True) -> tuple[
            LoginResult, Changes]:
        """Check the token against the server, detect the edition, keep the token in the OS keyring."""
        url = auth.normalise_url(url)
        token = token.strip()
        if not token:
            raise NoTokenError("The token is empty.")
        client = self.client_factory(url, token, ca_bundle)
        me = client.whoami()
        edition = "enterprise" if client.enterprise_probe() else "community"
        stored = "keyring"
        warning = None
        if store_token:
            try:
                auth.save_token(url, token)
            except auth.KeyringUnavailable as exc:
                stored, warning = "environment", str(exc)
        with self.store.transaction() as s:
            server = s.scalar(select(Server).where(Server.url == url))
            if server is None:
                server = Server(url=url, created_at=now_iso())
                s.add(server)
            server.edition, server.user_email, server.ca_bundle = edition, me.get("email"), ca_bundle
            s.flush()
            sid = server.id
            append_event(s, me.get("email") or "local", "sync.login",
                         {"server": url, "edition": edition, "token_kind": auth.token_kind(token),
                          "token_stored": stored})
        return (LoginResult(sid, url, me.get("email"), me.get("id"), edition, auth.token_kind(token), stored, warning),
                Changes(sync=True, settings=True))

    def logout(self, url: str) -> Changes:
        auth.delete_token(url)
        return Changes(sync=True)

    def servers(self) -> tuple[ServerInfo, ...]:
        with self.store.session() as s:
            rows = s.scalars(select(Server).order_by(Server.id)).all()
            return tuple(ServerInfo(r.id, r.url, r.edition, r.user_email, auth.load_token(r.url) is not None,
                                    r.ca_bundle) for r in rows)

    def _server(self, url: str | None = None, server_id: int | None = None, *, create: bool = False) -> Server:
        with self.store.session() as s:
            if server_id is not None:
                row = s.get(Server, server_id)
            else:
                row = s.scalar(select(Server).where(Server.url == auth.normalise_url(url or "")))
        if row is None and create and url:
            token = auth.load_token(url)
            if token is None:
                raise NoTokenError(f"Not logged in to {auth.normalise_url(url)}: run `reviewdesk login "
                                   f"{auth.normalise_url(url)}` first, or set {auth.ENV_TOKEN}.")
            self.login(url, token, store_token=False)
            return self._server(url)
        if row is None:
            raise LookupError(f"No server {url or server_id} is configured; log in first.")
        return row

    def client(self, server: Server) -> LSClient:
        return self.client_factory(server.url, auth.load_token(server.url), server.ca_bundle)

    def check_online(self, url: str | None = None) -> bool:
        """A cheap reachability + token check (``whoami``); False when offline or refused."""
        try:
            server = self._server(url) if url else self._first_server()
            if server is None:
                return False
            c = self.client(server)
            c.retries = 0
            c.whoami()
            return True
        except (SyncError, LookupError):
            return False

    def _first_server(self) -> Server | None:
        with self.store.session() as s:
            return s.scalar(select(Server).order_by(Server.id).limit(1))

    # -- pull / push / sync ---------------------------------------------------------------------------------
    def pull(self, url: str, project: int, *, full: bool = False, media: bool = True,
             progress: Progress | None = None, cancel: threading.Event | None = None,
             page_size: int = 500) -> PullOutcome:
        """Pull Label Studio project ``project`` (its server id) from ``url`` into the store."""
        server = self._server(url, create=True)
        client = self.client(server)
        from app.services.settings import load_settings

        cap = max(1, int(load_settings(self.store.data_dir).media_cache_cap_mb)) * 1024 * 1024
        report = pull_project(self.store, client, server.id, project, full=full, media=media, progress=progress,
                              cancel=cancel, page_size=page_size, actor=server.user_email or "sync",
                              media_cap_bytes=cap, edition=server.edition)
        return PullOutcome(report, PULL_CHANGES | Changes(
            decisions=report.conflicts > 0 or report.server_decisions > 0 or report.lost > 0,
            queue=report.server_decisions > 0, sync=report.lost > 0 or report.conflicts > 0))

    def push(self, url: str | None = None, *, progress: Progress | None = None,
             cancel: threading.Event | None = None, concurrency: int = 4) -> PushOutcome:
        """Push every queued decision (of one server, or all) in order; returns what happened per server."""
        servers = [self._server(url)] if url else self._servers_with_work()
        reports: list[tuple[str, PushReport]] = []
        for server in servers:
            client = self.client(server)
            before = webhook.pending_decision_ids(self.store, server.id)  # [] when no webhook is set
            try:
                edition = server.edition or ("enterprise" if client.enterprise_probe() else "community")
                rep = push_server(self.store, client, server.id, edition=edition, concurrency=concurrency,
                                  progress=progress, cancel=cancel, actor=server.user_email or "sync")
                # the signed summary of what this push synced: queued, delivered in the background (0016)
                webhook.notify_push(self.store, server.id, before, now_iso())
            except AuthError as exc:
                rep = PushReport(errors=(str(exc),), auth_required=True)
            except SyncError as exc:
                if not exc.transient and type(exc).__name__ == "Cancelled":
                    raise
                rep = PushReport(errors=(str(exc),))
            reports.append((server.url, rep))
        return PushOutcome(tuple(reports), Changes(sync=True, decisions=True, queue=True))

    def _servers_with_work(self) -> list[Server]:
        with self.store.session() as s:
            return list(s.scalars(select(Server).where(Server.id.in_(
                select(Project.server_ref).join(Decision, Decision.project_id == Project.id)
                .join(DecisionSync, DecisionSync.decision_id == Decision.id)
                .where(DecisionSync.state == "pending"))).order_by(Server.id)))

    def sync(self, url: str | None = None, *, progress: Progress | None = None,
             cancel: threading.Event | None = None, max_rounds: int = 3) -> SyncOutcome:
        """Push, then pull every project of the server(s); the pull verifies that this store's synced records
        are still on the server. Records another client's concurrent write erased go back to the queue and are
        pushed again in another round (at most ``max_rounds``), so when a sync ends cleanly every decision it
        calls synced was seen on the server after the last write that could have erased it."""
        pushes: list[PushOutcome] = []
        all_pulls: list[PullReport] = []
        errors: list[str] = []
        refused: set[str] = set()
        reappended = 0
        rounds = 0
        for _ in range(max(1, max_rounds)):
            rounds += 1
            pushed = self.push(url, progress=progress, cancel=cancel)
            pushes.append(pushed)
            reappended += sum(r.reappended for _, r in pushed.reports)
            pulls, errs, refused_now = self._pull_all(url, pushed, progress, cancel)
            all_pulls.extend(pulls)
            errors.extend(e for e in errs if e not in errors)
            refused |= refused_now
            lost = sum(p.lost for p in pulls)
            reappended += lost
            if not lost or errs:
                break
        merged = PushOutcome(tuple(r for p in pushes for r in p.reports),
                             Changes(sync=True, decisions=True, queue=True))
        return SyncOutcome(merged, tuple(all_pulls), tuple(errors), merged.changes | PULL_CHANGES,
                           tuple(sorted(refused)), rounds, reappended)

    def _pull_all(self, url: str | None, pushed: PushOutcome, progress: Progress | None,
                  cancel: threading.Event | None) -> tuple[list[PullReport], list[str], set[str]]:
        with self.store.session() as s:
            q = select(Server.url, Project.server_id).join(Project, Project.server_ref == Server.id)
            if url:
                q = q.where(Server.url == auth.normalise_url(url))
            targets = [(u, int(p)) for u, p in s.execute(q.order_by(Project.id)) if p is not None]
        pulls: list[PullReport] = []
        errors: list[str] = [e for _, r in pushed.reports for e in r.errors]
        refused = set(pushed.auth_required)
        for server_url, ls_pid in targets:
            if server_url in refused:
                continue
            try:
                pulls.append(self.pull(server_url, ls_pid, progress=progress, cancel=cancel).report)
            except AuthError as exc:
                errors.append(str(exc))
                refused.add(server_url)
            except SyncError as exc:
                if type(exc).__name__ == "Cancelled":
                    raise
                errors.append(f"{server_url} project {ls_pid}: {exc}")
        return pulls, errors, refused

    # -- status ---------------------------------------------------------------------------------------------
    def status(self) -> SyncStatus:
        with self.store.session() as s:
            counts = dict(s.execute(select(DecisionSync.state, func.count()).group_by(DecisionSync.state)).all())
            failed = s.scalar(select(func.count()).select_from(DecisionSync).where(
                DecisionSync.state == "pending", DecisionSync.attempts > 0)) or 0
            last_err = s.scalar(select(DecisionSync.last_error).where(
                DecisionSync.state == "pending", DecisionSync.last_error.is_not(None))
                .order_by(DecisionSync.updated_at.desc()).limit(1))
            lp = s.scalar(select(func.max(SyncState.last_pull_at)))
            lpu = s.scalar(select(func.max(SyncState.last_push_at)))
        return SyncStatus(self.servers(), counts.get("pending", 0), counts.get("conflict", 0), failed, lp, lpu,
                          last_err)

    # -- conflicts --------------------------------------------------------------------------------------------
    def conflicts(self, project_id: int | None = None) -> tuple[ConflictInfo, ...]:
        with self.store.session() as s:
            q = (select(Decision, DecisionSync).join(DecisionSync, DecisionSync.decision_id == Decision.id)
                 .where(DecisionSync.state == "conflict").order_by(Decision.id))
            if project_id is not None:
                q = q.where(Decision.project_id == project_id)
            out = []
            for d, ds in s.execute(q):
                eff = ds.effect or {}
                c = eff.get("conflict") or {}
                ann = s.get(Annotation, d.annotation_id) if d.annotation_id else None
                task = s.get(Task, d.task_id)
                seen = eff.get("seen_result")
                if seen is None and ann is not None:
                    seen = ann.result  # found at push time: the local copy is still what the reviewer saw
                mine = d.result if d.verdict == "fix" else seen
                current = None if ann is None or ann.deleted else ann.result
                out.append(ConflictInfo(
                    uuid=d.uuid, project_id=d.project_id, task_id=d.task_id,
                    task_server_id=task.server_id if task else None, annotation_id=d.annotation_id,
                    annotation_server_id=ann.server_id if ann else None, verdict=d.verdict, reason=d.reason,
                    comment=d.comment, reviewer=d.reviewer, created_at=d.created_at, kind=c.get("kind", "changed"),
                    message=ds.last_error or "", mine_result=_tup(mine), seen_result=_tup(seen),
                    theirs=c.get("theirs"), current_result=_tup(current)))
            return tuple(out)

    def keep_mine(self, decision_uuid: str, *, actor: str) -> Changes:
        """Push the decision anyway (recorded: an audit event and ``forced`` in the server record)."""
        with self.store.transaction() as s:
            ds = self._conflict_row(s, decision_uuid)
            eff = dict(ds.effect or {})
            eff["force"] = True
            eff["resolution"] = {"action": "keep_mine", "by": actor, "at": now_iso()}
            before = _conflict_state(s, ds)
            ds.effect, ds.state, ds.last_error, ds.updated_at = eff, "pending", None, now_iso()
            append_event(s, actor, "sync.conflict.keep_mine",
                         {**before, "to": {"state": "pending", "force": True, "verdict": before["from"]["verdict"]}})
        return Changes(sync=True, decisions=True, queue=True)

    def discard_mine(self, decision_uuid: str, *, actor: str, role: str = "reviewer",
                     action: str = "discard_mine") -> Changes:
        """Retract the decision (recorded as a retraction); neither it nor the retraction is ever sent."""
        from app.services.decisions import DecisionService

        with self.store.transaction() as s:
            ds = self._conflict_row(s, decision_uuid)
            eff = dict(ds.effect or {})
            eff["resolution"] = {"action": action, "by": actor, "at": now_iso()}
            ds.effect = eff
            before = _conflict_state(s, ds)
            append_event(s, actor, f"sync.conflict.{action}",
                         {**before, "to": {"state": "retracted", "verdict": None,
                                           "rereview": action == "rereview"}})
        recorded = DecisionService(self.store).retract(decision_uuid, reviewer=actor, role=role)
        with self.store.transaction() as s:
            from app.sync.push import cancel_unsent_retractions

            pid = s.scalar(select(Decision.project_id).where(Decision.uuid == decision_uuid))
            if pid is not None:  # always: the retraction above found the decision
                cancel_unsent_retractions(s, [pid], actor)
        return recorded.changes | Changes(sync=True, decisions=True, queue=True)

    def rereview(self, decision_uuid: str, *, actor: str, role: str = "reviewer") -> tuple[int, Changes]:
        """Discard my decision and return the task to review again against the server's current version."""
        with self.store.session() as s:
            task_id = s.scalar(select(Decision.task_id).where(Decision.uuid == decision_uuid))
        if task_id is None:
            raise LookupError(f"No decision {decision_uuid}.")
        return task_id, self.discard_mine(decision_uuid, actor=actor, role=role, action="rereview")

    def _conflict_row(self, s: Any, decision_uuid: str) -> DecisionSync:
        ds = s.scalar(select(DecisionSync).join(Decision, Decision.id == DecisionSync.decision_id)
                      .where(Decision.uuid == decision_uuid))
        if ds is None:
            raise LookupError(f"No decision {decision_uuid}.")
        if ds.state != "conflict":
            raise LookupError(f"Decision {decision_uuid} is not in conflict (it is {ds.state}).")
        return ds

    # -- media -----------------------------------------------------------------------------------------------
    def register_media_lookup(self) -> Callable[[], None] | None:
        """Let ``app.services.media`` find files in the sync media cache. Returns an unregister function."""
        try:
            from app.services.media import register_cache_lookup
        except ImportError:
            return None
        from app.sync.media import lookup

        def find(url: str) -> str | None:
            # server URLs from the store (a servers row per login; no keyring read per image on the UI thread)
            with self.store.session() as s:
                urls = list(s.scalars(select(Server.url)))
            p = lookup(self.store, url, urls)
            return str(p) if p else None

        return register_cache_lookup(find)


def _conflict_state(s: Any, ds: DecisionSync) -> dict[str, Any]:
    """The audit payload's object and "from" side of a conflict resolution: the decision, its task and verdict,
    and what the server had changed (``kind``), so the trail reads ``conflict -> pending`` or ``-> retracted``."""
    d = s.get(Decision, ds.decision_id)
    conflict = (ds.effect or {}).get("conflict") or {}
    return {"uuid": d.uuid, "project_id": d.project_id, "task": d.task_id, "annotation": d.annotation_id,
            "from": {"state": "conflict", "verdict": d.verdict, "kind": conflict.get("kind", "changed"),
                     "message": ds.last_error or ""}}


def _tup(v: Any) -> tuple[Any, ...] | None:
    return None if v is None else tuple(v)
