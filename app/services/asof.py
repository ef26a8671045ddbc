"""Metrics "as of" an audit point: the project's state right after one audit event (issue 16, point 2).

A reported number can be recomputed later from the record: ``reviewdesk metrics PROJECT --as-of EVENT_ID``
(or ``--as-of 2026-12-05T08:00:00Z``) and ``compute_dashboard(..., as_of=...)`` give the numbers the store
would have given right after that event. docs/adr/0015-exports-asof-api.md says exactly what is rewound.

How: :func:`snapshot` copies the store (SQLite online backup) into a temporary folder and rewinds the copy
to the cut-off, then the unchanged frame builder and metrics engine run on the copy — so "as of" uses the
same reference and evaluator rules, line for line, as the live numbers. The live store is only read.

What is rewound, and how each row is dated:

- **decisions** (append-only): a decision exists at the cut-off when the audit event that recorded it
  (``decision.recorded`` / ``decision.retracted``: ``uuid``; ``sync.server_decisions``: ``uuids``) is at
  or before the cut-off event. A decision no event names (an Enterprise review, or past the 200 uuids one
  pull event lists) is dated by the local time it was stored: ``created_at`` for a local decision, its
  ``decision_sync.updated_at`` for a pulled one.
- **ground truth** rows (written only by decisions) follow their decision; a row without a decision by
  its ``created_at``.
- **annotations** changed by pulls after the cut-off (``sync.pulled`` lists them per annotation): ones a
  later pull created are removed, ones it marked deleted come back, and a ground-truth flag it changed is
  put back to its earlier value. A later pull's change of an annotation's *result* cannot be undone (the
  store keeps only the current result): those are counted in :attr:`Rewind.changed_since`, as are
  annotations a later pull removed outright (:attr:`Rewind.removed_since`) and pull events whose change
  list was capped (:attr:`Rewind.pulls_truncated`), and tasks a later pull found deleted on the server
  (:attr:`Rewind.tasks_deleted_since`: they stay deleted). Numbers are exact when all four are zero.
- decision records in task meta (what pushes write and pulls read) of decisions left out are removed, so a
  retraction pushed after the cut-off does not undo a decision that stood then.
- Not dated in the store, hence as now: tasks, predictions, the rest of task meta, members, the delivery
  effects of pushes, the labeling config.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

from app.models.store import STORE_FILENAME, Store, _sqlite_backup

__all__ = ["AsOf", "AsOfError", "Rewind", "resolve_as_of", "snapshot"]

_AT_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # how audit events store `at` (app.models.store.now_iso)


class AsOfError(ValueError):
    """The cut-off cannot be used (unknown event, bad or future timestamp, broken trail); a user message."""


@dataclass(frozen=True)
class Rewind:
    """What the copy had to undo to get back to the cut-off, and what it could not undo."""

    decisions_after: int = 0  # decisions recorded after the cut-off (left out)
    ground_truth_after: int = 0  # ground-truth rows written after it (left out)
    annotations_added_after: int = 0  # annotations a later pull created (left out)
    annotations_undeleted: int = 0  # annotations a later pull marked deleted (put back)
    flags_restored: int = 0  # ground-truth flags a later pull changed (put back)
    changed_since: int = 0  # annotations a later pull changed: their earlier result is not in the store
    removed_since: int = 0  # annotations a later pull removed from the store outright
    pulls_truncated: int = 0  # later pull events whose per-annotation change list was capped
    tasks_deleted_since: int = 0  # tasks later pulls found deleted on the server (they stay deleted here)

    @property
    def exact(self) -> bool:
        """True when nothing after the cut-off had to be left as it is now."""
        return not (self.changed_since or self.removed_since or self.pulls_truncated or self.tasks_deleted_since)


@dataclass(frozen=True)
class AsOf:
    """A resolved cut-off: the state right after audit event ``event_id`` (recorded at ``at``)."""

    event_id: int
    at: str
    requested: str  # what the user gave (an event id or a timestamp)
    rewind: Rewind = Rewind()

    def as_json(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "at": self.at, "requested": self.requested,
                "exact": self.rewind.exact, "rewind": self.rewind.__dict__.copy()}


def _parse_time(spec: str) -> datetime:
    try:
        dt = datetime.fromisoformat(spec)
    except ValueError:
        raise AsOfError(f"--as-of {spec!r} is neither an audit event id nor an ISO 8601 timestamp "
                        "(e.g. 2026-12-05T08:00:00Z)") from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def resolve_as_of(store: Store, spec: str | int) -> AsOf:
    """``EVENT_ID`` or an ISO 8601 timestamp (UTC when no offset is given) -> :class:`AsOf`.

    A timestamp means the last audit event recorded at or before it. Raises :class:`AsOfError` for an
    unknown event id, an unparsable or future timestamp, a time before the first event, or an audit
    trail that is broken at or before the cut-off (the record cannot be trusted to reproduce from)."""
    from app.models.audit import verify_full

    text_spec = str(spec).strip()
    with store.session() as s:
        conn = s.connection()
        first, last = conn.exec_driver_sql("SELECT min(id), max(id) FROM audit_events").one()
        if text_spec.isdigit():
            ev_id = int(text_spec)
            row = conn.exec_driver_sql("SELECT at FROM audit_events WHERE id = ?", (ev_id,)).first()
            if row is None:
                have = f"its events are {first}..{last}" if first is not None else "it has no events yet"
                raise AsOfError(f"No audit event {ev_id} in this store ({have}; `reviewdesk audit log PROJECT` "
                                "lists them).")
            at = str(row[0])
        else:
            when = _parse_time(text_spec)
            if when > datetime.now(UTC):
                raise AsOfError(f"--as-of {text_spec} is in the future; metrics as of a later time are today's.")
            row = conn.exec_driver_sql("SELECT max(id) FROM audit_events WHERE at <= ?",
                                       (when.strftime(_AT_FORMAT),)).first()
            if row is None or row[0] is None:
                first_at = conn.exec_driver_sql("SELECT min(at) FROM audit_events").scalar()
                raise AsOfError(f"Nothing was recorded at or before {text_spec}"
                                + (f" (the first audit event is at {first_at})." if first_at else
                                   " (this store has no audit events yet)."))
            ev_id = int(row[0])
            at = str(conn.exec_driver_sql("SELECT at FROM audit_events WHERE id = ?", (ev_id,)).scalar())
        rep = verify_full(s)
    if not rep.ok and rep.first_bad is not None and rep.first_bad <= ev_id:
        raise AsOfError(f"The audit trail is broken at event {rep.first_bad} ({rep.reason}), at or before the "
                        f"cut-off {ev_id}: numbers as of it cannot be reproduced from this record. Run "
                        "`reviewdesk audit verify`.")
    return AsOf(ev_id, at, text_spec)


def _payload(raw: Any) -> dict[str, Any]:
    try:
        p = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    return p if isinstance(p, dict) else {}


@contextmanager
def snapshot(store: Store, cut: AsOf, project_id: int | None = None) -> Iterator[tuple[Store, AsOf]]:
    """A temporary copy of ``store`` rewound to ``cut`` (module doc), as an open :class:`Store`, and the
    cut-off with what was rewound. The copy is deleted on exit. ``project_id``: refuse (``AsOfError``) a
    project that did not exist yet at the cut-off, and count what was rewound for it."""
    folder = Path(tempfile.mkdtemp(prefix="reviewdesk-asof-"))
    snap: Store | None = None
    try:
        path = folder / STORE_FILENAME
        src = sqlite3.connect(str(store.path))
        dst = sqlite3.connect(str(path))
        try:
            _sqlite_backup(src, dst)
        finally:
            src.close()
        try:
            rewind = _rewind(dst, cut, project_id)
            dst.commit()
        finally:
            dst.close()
        engine = create_engine(f"sqlite:///{path}", future=True)
        snap = Store(folder, engine, None)
        yield snap, AsOf(cut.event_id, cut.at, cut.requested, rewind)
    finally:
        if snap is not None:
            from app.services.dashboard import _CACHE, _CACHE_LOCK

            with _CACHE_LOCK:
                for key in [k for k in _CACHE if k[0] == str(snap.path)]:
                    del _CACHE[key]
            snap.close()
        shutil.rmtree(folder, ignore_errors=True)


def _rewind(conn: sqlite3.Connection, cut: AsOf, project_id: int | None) -> Rewind:
    e, t = cut.event_id, cut.at
    if project_id is not None:
        row = conn.execute("SELECT created_at FROM projects WHERE id = ?", (project_id,)).fetchone()
        if row is not None and row[0] is not None and str(row[0]) > t:
            raise AsOfError(f"Project {project_id} did not exist yet as of event {e} ({t}); it was created "
                            f"at {row[0]}.")
    for table in ("decisions", "audit_events"):  # the copy only: its append-only guards are in the way
        conn.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        conn.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
    named: dict[str, int] = {}  # decision uuid -> id of the event that recorded it
    pulls_after: list[dict[str, Any]] = []
    for ev_id, kind, raw in conn.execute("SELECT id, kind, payload FROM audit_events ORDER BY id"):
        if kind in ("decision.recorded", "decision.retracted") or kind == "sync.server_decisions":
            p = _payload(raw)
            uuids = [p.get("uuid")] if kind.startswith("decision.") else list(p.get("uuids") or [])
            for u in uuids:
                if isinstance(u, str):
                    named.setdefault(u, ev_id)
        elif kind == "sync.pulled" and ev_id > e:
            pulls_after.append(_payload(raw))
    drop: list[tuple[int, str]] = []
    n_dec = 0
    for did, uuid, origin, created, synced_at, pid in conn.execute(
            "SELECT d.id, d.uuid, d.origin, d.created_at, ds.updated_at, d.project_id FROM decisions d "
            "LEFT JOIN decision_sync ds ON ds.decision_id = d.id").fetchall():
        if uuid in named:
            after = named[uuid] > e
        else:
            stamp = created if (origin or "local") == "local" else (synced_at or created)
            after = stamp is None or str(stamp) > t
        if after:
            drop.append((did, uuid))
            n_dec += project_id is None or pid == project_id
    dropped = {u for _, u in drop}
    conn.executemany("DELETE FROM decision_sync WHERE decision_id = ?", [(d,) for d, _ in drop])
    conn.executemany("DELETE FROM comments WHERE decision_uuid = ?", [(u,) for u in dropped])
    conn.executemany("DELETE FROM decisions WHERE id = ?", [(d,) for d, _ in drop])
    gt_drop: list[tuple[int]] = []
    n_gt = 0
    for gid, duuid, created, pid in conn.execute(
            "SELECT g.id, g.decision_uuid, g.created_at, t.project_id FROM ground_truth g "
            "JOIN tasks t ON t.id = g.task_id").fetchall():
        if (duuid in dropped) if duuid is not None else (created is None or str(created) > t):
            gt_drop.append((gid,))
            n_gt += project_id is None or pid == project_id
    conn.executemany("DELETE FROM ground_truth WHERE id = ?", gt_drop)
    conn.execute("DELETE FROM audit_events WHERE id > ?", (e,))
    _drop_meta_records(conn, dropped)

    added = undeleted = flags = changed = removed = truncated = tasks_gone = 0
    for p in reversed(pulls_after):  # latest pull first: each change is undone onto the state before it
        if project_id is not None and p.get("project_id") != project_id:
            continue
        truncated += bool(p.get("changes_truncated"))
        tasks_gone += int(p.get("deleted") or 0)
        for c in reversed(list(p.get("changes") or [])):
            if not isinstance(c, dict):
                continue
            task, sid = c.get("task"), c.get("annotation")
            row = conn.execute("SELECT id FROM annotations WHERE task_id = ? AND server_id IS ?", (task, sid)).fetchone()
            if c.get("from") is None:  # created by the later pull
                if row is not None:
                    conn.execute("DELETE FROM comments WHERE annotation_id = ?", (row[0],))
                    conn.execute("DELETE FROM annotations WHERE id = ?", (row[0],))
                    added += 1
                continue
            if row is None:
                removed += 1
                continue
            if c.get("to") is None:  # marked deleted by the later pull
                conn.execute("UPDATE annotations SET deleted = 0, updated_at = ? WHERE id = ?", (c["from"], row[0]))
                undeleted += 1
                continue
            gt = c.get("ground_truth")
            if isinstance(gt, dict) and "from" in gt:
                conn.execute("UPDATE annotations SET ground_truth = ? WHERE id = ?", (int(bool(gt["from"])), row[0]))
                flags += 1
            conn.execute("UPDATE annotations SET updated_at = ? WHERE id = ?", (c["from"], row[0]))
            changed += 1
    return Rewind(n_dec, n_gt, added, undeleted, flags, changed, removed, truncated, tasks_gone)


def _drop_meta_records(conn: sqlite3.Connection, dropped: set[str]) -> None:
    """Decision records in task meta (``meta["reviewdesk"]["decisions"]``: what pushes wrote, what pulls
    read) of decisions left out: the frames read retractions and fix annotations from them, so a retraction
    pushed after the cut-off must not undo a decision that stood then. ``UUID/...`` records go with UUID."""
    from app.sync.records import META_KEY

    if not dropped:
        return
    for tid, raw in conn.execute("SELECT id, meta FROM tasks WHERE instr(meta, ?) > 0", (META_KEY,)).fetchall():
        meta = _payload(raw)
        rd = meta.get(META_KEY)
        if not isinstance(rd, dict) or not isinstance(rd.get("decisions"), list):
            continue
        recs = rd["decisions"]
        keep = [r for r in recs if not (isinstance(r, dict) and isinstance(r.get("uuid"), str)
                                        and r["uuid"].split("/")[0] in dropped)]
        if len(keep) != len(recs):
            meta[META_KEY] = {**rd, "decisions": keep}
            conn.execute("UPDATE tasks SET meta = ? WHERE id = ?", (json.dumps(meta), tid))
