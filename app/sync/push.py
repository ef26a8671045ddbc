"""Push queued decisions to Label Studio: in order, idempotent, conflict-aware, bounded concurrency.

Delivery is at-least-once with an idempotent effect. Decisions are grouped by task; groups run concurrently
(``concurrency`` threads; the server is threaded) while the decisions of one task go in creation order and
share one read-merge-write-verify of the task meta. Every attempt at a group starts by READING the task, so
whatever an earlier, interrupted attempt achieved is recognised instead of repeated:

* the decision's UUID already in ``meta.reviewdesk.decisions`` -> it was delivered; mark it synced;
* a fix: the reviewer annotation is created with ``unique_id`` = the decision UUID (the server refuses a
  second one with 409) and is found again by reviewer + identical result;
* the ground-truth flag and the meta merge are idempotent by nature.

Community edition (DESIGN.md section 5): accept -> ``ground_truth: true`` on the annotation (when the project
folds decisions into ground truth); fix -> a new annotation with the fixed result, ``completed_by`` = the
reviewer's member id, ``ground_truth: true``; reject / escalate -> no native field; every verdict -> a compact
record (with reason and comment) in the task meta. Enterprise: an annotation review (accepted / rejected, with
result or comment) and, for escalations, a comment; the meta record as well.

A retraction (undo) of a decision that never reached the server cancels both (state ``cancelled``: neither is
ever sent). A retraction of a delivered decision pushes a reversal: the ground-truth flag it set is cleared
and a ``retract`` record names the retracted UUID.

Conflicts: the annotation changed on the server after the reviewer saw it (``updated_at`` differs from
``seen_updated_at`` and not because of our own push), it was deleted, or another reviewer's decision record
for it appeared -> ``conflict``; never pushed until the reviewer resolves it ("keep mine" sets ``force``).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models.audit import append_event
from app.models.schema import Annotation, Decision, DecisionSync, Member, Prediction, Project, SyncState, Task
from app.models.store import Store, now_iso
from app.sync import records as rec
from app.sync.client import LSClient
from app.sync.errors import (
    AuthError,
    Cancelled,
    ConnectionLost,
    NotFoundError,
    OfflineError,
    RequestError,
    SyncError,
    TLSError,
)

log = logging.getLogger("reviewdesk.sync")
CONCURRENCY = 4
GROUP_ATTEMPTS = 5
PUSHABLE = ("accept", "fix", "reject", "escalate", "retract")
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class PushReport:
    attempted: int = 0
    synced: int = 0
    already_on_server: int = 0
    conflicts: int = 0
    cancelled: int = 0
    failed: int = 0
    errors: tuple[str, ...] = ()
    auth_required: bool = False
    reappended: int = 0  # records erased on the server by a concurrent write and written again


@dataclass
class Item:
    """One decision to push, read from the store (plain values: safe to hand to a worker thread)."""

    decision_id: int
    uuid: str
    project_id: int
    verdict: str
    annotation_sid: int | None
    annotation_local: int | None
    prediction_sid: int | None
    prediction_result: Any
    result: Any
    reason: str | None
    comment: str | None
    reviewer: str
    role: str
    created_at: str
    lead_time_ms: int | None
    seen_updated_at: str | None
    retracts: str | None
    force: bool
    fold: bool
    target: dict[str, Any] | None = None  # for retractions: the retracted decision's verdict/effect/annotation
    seen_result: Any = None  # the annotation's result as the reviewer saw it


@dataclass
class Group:
    task_local: int
    task_sid: int
    known_uuids: set[str]
    items: list[Item]
    own_updated: dict[int, set[str]] = field(default_factory=dict)
    ls_project: int | None = None


@dataclass
class Outcome:
    uuid: str
    state: str  # synced | conflict | cancelled | pending
    effect: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    already: bool = False


# -- preparing ----------------------------------------------------------------------------------------------
def cancel_unsent_retractions(s: Session, project_ids: list[int], actor: str) -> int:
    """Undo of a decision that never reached the server: neither is ever sent (both ``cancelled``)."""
    n = 0
    rows = s.execute(select(Decision, DecisionSync).join(DecisionSync, DecisionSync.decision_id == Decision.id)
                     .where(Decision.project_id.in_(project_ids), Decision.verdict == "retract",
                            DecisionSync.state == "pending").order_by(Decision.id)).all()
    for d, ds in rows:
        target = s.execute(select(Decision, DecisionSync).join(DecisionSync, DecisionSync.decision_id == Decision.id)
                           .where(Decision.uuid == d.retracts)).first()
        if target is None:
            continue
        _td, tds = target
        if tds.state == "conflict" and (tds.effect or {}).get("on_server"):
            # a disagreement already on the record: the retraction is pushed (it settles the conflict there too)
            tds.state = "synced"
            tds.updated_at = now_iso()
            continue
        if tds.state in ("pending", "conflict", "cancelled", "local"):
            now = now_iso()
            if tds.state in ("pending", "conflict"):
                tds.state = "cancelled"
                tds.effect = {**(tds.effect or {}), "cancelled_by": d.uuid}
                tds.updated_at = now
                n += 1
            ds.state = "cancelled" if tds.state == "cancelled" else "local"
            ds.effect = {**(ds.effect or {}), "cancels": d.retracts}
            ds.updated_at = now
            n += 1
            append_event(s, actor, "sync.cancelled", {"retract": d.uuid, "retracted": d.retracts})
    return n


def load_groups(s: Session, server_ref: int) -> tuple[list[Group], dict[int, bool]]:
    projects = {p.id: p for p in s.scalars(select(Project).where(Project.server_ref == server_ref))}
    if not projects:
        return [], {}
    rows = s.execute(select(Decision, DecisionSync).join(DecisionSync, DecisionSync.decision_id == Decision.id)
                     .where(Decision.project_id.in_(list(projects)), DecisionSync.state == "pending",
                            Decision.origin == "local", Decision.verdict.in_(PUSHABLE))
                     .order_by(Decision.id)).all()
    groups: dict[int, Group] = {}
    ann_cache: dict[int, Annotation | None] = {}
    for d, ds in rows:
        task = s.get(Task, d.task_id)
        if task is None or task.server_id is None:
            continue
        ann = None
        if d.annotation_id is not None:
            ann = ann_cache.setdefault(d.annotation_id, s.get(Annotation, d.annotation_id))
        pred = s.get(Prediction, d.prediction_id) if d.prediction_id is not None else None
        target = None
        if d.verdict == "retract":
            t = s.execute(select(Decision, DecisionSync).join(DecisionSync, DecisionSync.decision_id == Decision.id)
                          .where(Decision.uuid == d.retracts)).first()
            if t is None:
                continue
            td, tds = t
            tann = s.get(Annotation, td.annotation_id) if td.annotation_id else None
            target = {"uuid": td.uuid, "verdict": td.verdict, "state": tds.state, "effect": tds.effect or {},
                      "annotation_sid": tann.server_id if tann else None}
        g = groups.get(task.id)
        if g is None:
            g = groups[task.id] = Group(task.id, task.server_id, rec.record_uuids(task.meta), [],
                                        ls_project=projects[d.project_id].server_id)
        g.items.append(Item(
            decision_id=d.id, uuid=d.uuid, project_id=d.project_id, verdict=d.verdict,
            annotation_sid=ann.server_id if ann else None, annotation_local=d.annotation_id,
            prediction_sid=pred.server_id if pred else None, prediction_result=pred.result if pred else None,
            result=d.result, reason=d.reason, comment=d.comment, reviewer=d.reviewer, role=d.role,
            created_at=d.created_at, lead_time_ms=d.lead_time_ms, seen_updated_at=d.seen_updated_at,
            retracts=d.retracts, force=bool((ds.effect or {}).get("force")),
            fold=bool(projects[d.project_id].fold_ground_truth), target=target,
            seen_result=(ds.effect or {}).get("seen_result", ann.result if ann else None)))
    # our own earlier ground-truth writes are not conflicts; our own decision UUIDs are known
    ann_ids = [i.annotation_local for g in groups.values() for i in g.items if i.annotation_local]
    if ann_ids:
        from app.sync.pull import own_updated_at

        own = own_updated_at(s, ann_ids)
        for g in groups.values():
            g.own_updated = {i.annotation_local: set(own.get(i.annotation_local, set()))
                             for i in g.items if i.annotation_local}
    # known = this store's own decisions only: a differing verdict by another reviewer is a conflict on both
    # sides even when it was pulled before (it is settled by "keep mine" or a retraction, never silently)
    ours = set(s.scalars(select(Decision.uuid).where(Decision.project_id.in_(list(projects)),
                                                     Decision.origin == "local")))
    for g in groups.values():
        g.known_uuids = set(ours)
    return list(groups.values()), {pid: p.fold_ground_truth for pid, p in projects.items()}


# -- one task ----------------------------------------------------------------------------------------------------
def _fix_result(anns: dict[int, Any], fix_annotation: Any) -> Any:
    """The result of the fix annotation a record names (None when it names none, or one not on the task)."""
    if not isinstance(fix_annotation, int):
        return None
    return (anns.get(fix_annotation) or {}).get("result")


def _same_result(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _completed_by_id(v: Any) -> int | None:
    if isinstance(v, dict):
        v = v.get("id")
    return v if isinstance(v, int) else None


class GroupPusher:
    def __init__(self, client: LSClient, edition: str, members: dict[str, int], me: int | None) -> None:
        self.client = client
        self.edition = edition
        self.members = members
        self.me = me
        self._lock = threading.Lock()
        self.written: dict[int, set[str]] = {}  # task server id -> record uuids written and read back
        self.since: dict[int, str] = {}  # server project id -> the earliest updated_at our writes produced
        self.project_of: dict[int, int | None] = {}  # task server id -> server project id

    def push(self, g: Group, cancel: threading.Event | None) -> list[Outcome]:
        last: SyncError | None = None
        done: dict[str, Outcome] = {}
        for attempt in range(GROUP_ATTEMPTS):
            if cancel is not None and cancel.is_set():
                raise Cancelled("Push cancelled.")
            try:
                self._attempt(g, done)
                return [done[i.uuid] for i in g.items if i.uuid in done]
            except (AuthError, TLSError, Cancelled):
                raise
            except OfflineError as exc:
                if not isinstance(exc, ConnectionLost):
                    raise  # the server is unreachable: stop the whole push, everything stays queued
                last = exc
                time.sleep(min(0.3 * 2 ** attempt, 4.0))
                continue
            except NotFoundError:
                # the task itself is gone: every decision on it is a conflict for the reviewer to see
                for i in g.items:
                    done.setdefault(i.uuid, Outcome(i.uuid, "conflict", {"conflict": {
                        "kind": "task_deleted", "found_at": now_iso(), "theirs": None}},
                        "The task was deleted on the server."))
                return [done[i.uuid] for i in g.items]
            except SyncError as exc:
                last = exc
                if not exc.transient and not isinstance(exc, RequestError):
                    break
                time.sleep(min(0.3 * 2 ** attempt, 4.0))
        err = str(last) if last else "failed"
        return [done.get(i.uuid) or Outcome(i.uuid, "pending", error=err) for i in g.items]

    # The whole protocol for one task; safe to run again from the top after any fault.
    def _attempt(self, g: Group, done: dict[str, Outcome]) -> None:
        task = self.client.task(g.task_sid)
        meta = task.get("meta") or {}
        records = rec.meta_records(meta)
        by_uuid = {r["uuid"]: r for r in records}
        anns = {a["id"]: a for a in task.get("annotations") or []}
        preds = {p["id"]: p for p in task.get("predictions") or []}
        new_records: list[dict[str, Any]] = []
        # decision uuid -> (state once the write is verified, effect, record uuids that must be on the server)
        planned: dict[str, tuple[str, dict[str, Any], list[str], str | None]] = {}
        conflicted: set[str] = set()
        for it in g.items:
            if it.uuid in done and done[it.uuid].state != "pending":
                continue
            on = by_uuid.get(it.uuid)
            if on is not None:
                if it.force and rec.resolution_uuid(it.uuid) not in by_uuid and it.verdict != "retract":
                    # "keep mine" after a conflict whose record is already on the server: apply the effect now
                    # (idempotent) and say so on the record
                    eff = self._effect(it, g, task, anns)
                    res = rec.resolution_record(decision_uuid=it.uuid, reviewer=it.reviewer, role=it.role,
                                                at=now_iso(), against=(on.get("contested") or [None])[0])
                    new_records.append(res)
                    planned[it.uuid] = ("synced", {"meta": True, **eff}, [it.uuid, res["uuid"]], None)
                    continue
                if on.get("contested") and not it.force:
                    conflicted.add(it.uuid)
                    done[it.uuid] = Outcome(it.uuid, "conflict", {"on_server": True, "contest": True, "records": [it.uuid]},
                                            _conflict_text("other_reviewer"), already=True)
                    continue
                records_needed = [it.uuid] + ([rec.resolution_uuid(it.uuid)] if it.force and
                                              rec.resolution_uuid(it.uuid) in by_uuid else [])
                done[it.uuid] = Outcome(it.uuid, "synced", {"meta": True, "recognised": True,
                                                            "records": records_needed}, already=True)
                continue
            if it.verdict == "retract":
                tgt = it.target or {}
                if tgt.get("uuid") in conflicted or (tgt.get("state") in ("conflict", "cancelled")
                                                     and not (tgt.get("effect") or {}).get("on_server")):
                    done[it.uuid] = Outcome(it.uuid, "cancelled", {"cancels": it.retracts})
                    continue
                eff = self._reverse(it, anns)
                new_records.append(self._record(it, eff))
                planned[it.uuid] = ("synced", {"meta": True, **eff}, [it.uuid], None)
                continue
            conflict = None if it.force else self._conflict(it, g, anns, preds, records)
            if conflict is not None:
                conflicted.add(it.uuid)
                if conflict["kind"] == "other_reviewer":
                    # a disagreement between reviewers: put mine on the record (with no effect on the server)
                    # so the other side sees the conflict too; nothing is applied until someone resolves it
                    theirs = conflict.get("theirs") or {}
                    new_records.append(self._record(it, {}, contested=[theirs["uuid"]] if theirs.get("uuid") else []))
                    planned[it.uuid] = ("conflict", {"conflict": conflict, "on_server": True, "contest": True,
                                                    "records": [it.uuid]},
                                        [it.uuid], _conflict_text("other_reviewer"))
                else:
                    done[it.uuid] = Outcome(it.uuid, "conflict", {"conflict": conflict},
                                            _conflict_text(conflict["kind"]))
                continue
            eff = self._effect(it, g, task, anns)
            new_records.append(self._record(it, eff))
            planned[it.uuid] = ("synced", {"meta": True, **eff}, [it.uuid], None)
        if not new_records:
            return
        merged = rec.merge(meta, new_records)
        written = self.client.patch_task(g.task_sid, {"meta": merged})
        check = self.client.task(g.task_sid)
        present = rec.record_uuids(check.get("meta"))
        missing = [r["uuid"] for r in new_records if r["uuid"] not in present]
        if missing:
            raise _Transient("Another client overwrote the task meta while we wrote it; trying again.")
        with self._lock:
            self.written.setdefault(g.task_sid, set()).update(r["uuid"] for r in new_records)
            stamp = written.get("updated_at") if isinstance(written, dict) else None
            if g.ls_project is not None and isinstance(stamp, str):
                key = g.ls_project
                self.since[key] = min(self.since.get(key, stamp), stamp)
            self.project_of[g.task_sid] = g.ls_project
        for duuid, (state, eff, needed, err) in planned.items():
            eff = {**eff, "records": needed} if state == "synced" else eff
            done[duuid] = Outcome(duuid, state, eff, err)

    def _conflict(self, it: Item, g: Group, anns: dict[int, Any], preds: dict[int, Any],
                  records: list[dict[str, Any]]) -> dict[str, Any] | None:
        now = now_iso()
        if it.annotation_sid is not None:
            a = anns.get(it.annotation_sid)
            if a is None:
                return {"kind": "deleted", "found_at": now, "theirs": None}
            own = g.own_updated.get(it.annotation_local or -1, set())
            # a changed stamp alone (e.g. another reviewer's accept set the ground-truth flag) is no content change
            if it.seen_updated_at is not None and a.get("updated_at") != it.seen_updated_at \
                    and a.get("updated_at") not in own \
                    and not (it.seen_result is not None and _same_result(a.get("result"), it.seen_result)):
                return {"kind": "changed", "found_at": now,
                        "theirs": {"server_id": a["id"], "result": a.get("result"), "updated_at": a.get("updated_at"),
                                   "completed_by": _completed_by_id(a.get("completed_by"))}}
        elif it.prediction_sid is not None and it.prediction_sid not in preds:
            return {"kind": "deleted", "found_at": now, "theirs": None}
        fix_results = {r["uuid"]: _fix_result(anns, r.get("fix_annotation")) for r in records
                       if r.get("verdict") == "fix"}
        others = rec.competing(records, annotation=it.annotation_sid, prediction=it.prediction_sid,
                               reviewer=it.reviewer, role=it.role, known=g.known_uuids, verdict=it.verdict,
                               result=it.result, fix_results=fix_results)
        if others:
            return {"kind": "other_reviewer", "found_at": now, "theirs": others[-1]}
        return None

    def _effect(self, it: Item, g: Group, task: dict[str, Any], anns: dict[int, Any]) -> dict[str, Any]:
        if self.edition == "enterprise":
            return self._enterprise_effect(it)
        eff: dict[str, Any] = {}
        if it.verdict == "accept" and it.fold and it.annotation_sid is not None:
            a = anns[it.annotation_sid]
            if not a.get("ground_truth"):
                body = self.client.patch_annotation(it.annotation_sid, {"ground_truth": True})
                eff["annotation_updated_at"] = [body.get("updated_at")]
                a["ground_truth"] = True
                a["updated_at"] = body.get("updated_at")
                stamp = body.get("updated_at")
                if isinstance(stamp, str):
                    g.own_updated.setdefault(it.annotation_local or -1, set()).add(stamp)
            eff["ground_truth"] = it.annotation_sid
        elif it.verdict == "fix" or (it.verdict == "accept" and it.fold and it.prediction_sid is not None):
            result = it.result if it.verdict == "fix" else it.prediction_result
            eff["fix_annotation"] = self._create_fix(it, task, result or [], anns)
        return eff

    def _create_fix(self, it: Item, task: dict[str, Any], result: list[Any], anns: dict[int, Any]) -> int:
        member = self.members.get(it.reviewer.lower(), self.me)
        mine = [r for r in rec.meta_records(task.get("meta")) if r["uuid"] == it.uuid and r.get("fix_annotation")]
        if mine and mine[0]["fix_annotation"] in anns:
            return int(mine[0]["fix_annotation"])
        claimed = {r.get("fix_annotation") for r in rec.meta_records(task.get("meta")) if r["uuid"] != it.uuid}

        def find(annotations: list[dict[str, Any]]) -> int | None:
            for a in annotations:
                if a["id"] in claimed or a["id"] == it.annotation_sid:
                    continue
                if (member is None or _completed_by_id(a.get("completed_by")) == member) \
                        and _same_result(a.get("result"), result):
                    return int(a["id"])
            return None

        found = find(list(anns.values()))
        if found is not None:
            return found
        body: dict[str, Any] = {"result": result, "ground_truth": True, "unique_id": it.uuid,
                                "lead_time": (it.lead_time_ms or 0) / 1000.0}
        if member is not None:
            body["completed_by"] = member
        try:
            created = self.client.create_annotation(task["id"], body)
        except RequestError as exc:
            if exc.status != 409:
                raise
            # an earlier attempt created it (unique_id = this decision's UUID): find it again
            fresh = self.client.task(task["id"])
            again = find(fresh.get("annotations") or [])
            if again is None:
                raise SyncError("The reviewer annotation for this fix exists on the server but was changed "
                                "there; resolve it in Label Studio.") from None
            return again
        return int(created["id"])

    def _reverse(self, it: Item, anns: dict[int, Any]) -> dict[str, Any]:
        tgt = it.target or {}
        eff: dict[str, Any] = {"reverses": tgt.get("uuid")}
        if self.edition == "enterprise":
            return eff
        teff = tgt.get("effect") or {}
        flagged = teff.get("fix_annotation") or teff.get("ground_truth")
        if flagged and flagged in anns and anns[flagged].get("ground_truth"):
            body = self.client.patch_annotation(flagged, {"ground_truth": False})
            eff["cleared_ground_truth"] = flagged
            if flagged == tgt.get("annotation_sid"):
                eff["annotation_updated_at"] = [body.get("updated_at")]
        return eff

    def _enterprise_effect(self, it: Item) -> dict[str, Any]:
        tag = f"[reviewdesk {it.uuid}]"
        text = " — ".join(x for x in (it.reason, it.comment) if x)
        if it.annotation_sid is None:
            return {}
        if it.verdict == "escalate":
            for c in self.client.comments(it.annotation_sid):
                if tag in str(c.get("text", "")):
                    return {"comment": c.get("id")}
            c = self.client.create_comment({"annotation": it.annotation_sid, "text": f"{tag} escalated: {text}"})
            return {"comment": c.get("id")}
        for r in self.client.reviews(it.annotation_sid):
            if tag in str(r.get("comment") or ""):
                return {"review": r.get("id")}
        body: dict[str, Any] = {"annotation": it.annotation_sid, "accepted": it.verdict in ("accept", "fix"),
                                "comment": f"{tag} {text}".strip()}
        if it.verdict == "fix":
            body["result"] = it.result
        r = self.client.create_review(body)
        return {"review": r.get("id")}

    def _record(self, it: Item, eff: dict[str, Any], contested: list[str] | None = None) -> dict[str, Any]:
        return rec.build_record(uuid=it.uuid, verdict=it.verdict, annotation=it.annotation_sid,
                                prediction=it.prediction_sid, reviewer=it.reviewer, role=it.role, at=it.created_at,
                                reason=it.reason, comment=it.comment, retracts=it.retracts,
                                fix_annotation=eff.get("fix_annotation"), forced=it.force,
                                lead_time_ms=it.lead_time_ms, contested=contested)


class _Transient(SyncError):
    transient = True


def _conflict_text(kind: str) -> str:
    return {"changed": "The annotation changed on the server after you reviewed it.",
            "deleted": "The annotation was deleted on the server.",
            "task_deleted": "The task was deleted on the server.",
            "other_reviewer": "Another reviewer decided on the same annotation."}.get(kind, kind)


# -- the whole push ------------------------------------------------------------------------------------------------
def _apply(store: Store, outcomes: list[Outcome], actor: str) -> None:
    with store.transaction() as s:
        for o in outcomes:
            ds = s.scalar(select(DecisionSync).join(Decision, Decision.id == DecisionSync.decision_id)
                          .where(Decision.uuid == o.uuid))
            if ds is None or ds.state not in ("pending",):
                continue
            now = now_iso()
            ds.attempts = (ds.attempts or 0) + 1
            ds.updated_at = now
            if o.state == "pending":
                ds.last_error = o.error
                continue
            effect = dict(ds.effect or {})
            effect.update(o.effect)
            if o.state == "conflict" and "seen_result" not in effect:
                ann_id = s.scalar(select(Decision.annotation_id).where(Decision.uuid == o.uuid))
                ann = s.get(Annotation, ann_id) if ann_id else None
                if ann is not None:
                    effect["seen_result"] = ann.result
            if o.state == "synced":
                effect["synced_at"] = now
            ds.effect = effect
            ds.state = o.state
            ds.last_error = o.error
            append_event(s, actor, f"sync.{o.state}", {"uuid": o.uuid, **({"recognised": True} if o.already else {})})


RECHECK_DELAY = (0.3, 0.9)  # seconds: the jittered wait before re-reading what was written
ROUNDS = 3


def mark_lost(s: Session, decision_uuids: list[str], actor: str, *, where: str) -> int:
    """Records of ours that vanished from the server (erased by another client's concurrent write): back to
    ``pending`` so the next push re-appends them (idempotent by UUID). Returns how many."""
    n = 0
    if not decision_uuids:
        return 0
    for _d, ds in s.execute(select(Decision, DecisionSync).join(DecisionSync, DecisionSync.decision_id == Decision.id)
                            .where(Decision.uuid.in_(decision_uuids), Decision.origin == "local")):
        eff = dict(ds.effect or {})
        if ds.state == "synced":
            eff["lost"] = int(eff.get("lost", 0)) + 1
            ds.state, ds.effect, ds.updated_at = "pending", eff, now_iso()
            ds.last_error = "Erased on the server by another client's write; it will be written again."
            n += 1
        elif ds.state == "conflict" and eff.get("on_server"):
            # a disagreement that was on the record: queue it again (the push finds the conflict again and
            # puts it back on the record, or applies it if the other verdict is gone by now)
            for k in ("conflict", "on_server", "contest"):
                eff.pop(k, None)
            eff["lost"] = int(eff.get("lost", 0)) + 1
            ds.state, ds.effect, ds.updated_at = "pending", eff, now_iso()
            n += 1
    if n:
        append_event(s, actor, "sync.lost", {"uuids": decision_uuids[:200], "where": where, "count": n})
    return n


def _recheck(store: Store, client: LSClient, pusher: GroupPusher, concurrency: int, actor: str) -> int:
    """Re-read every task written in this round after a short jittered delay; re-queue what vanished.

    One list query per project (tasks updated since our earliest write, ``id``/``meta`` only) instead of a read
    per task; a written task the listing missed (it moved while paging) is read on its own.
    """
    written = pusher.written
    if not written:
        return 0
    time.sleep(random.uniform(*RECHECK_DELAY))
    from app.sync.pull import OVERLAP, format_ls_dt, parse_ls_dt, updated_filter

    present: dict[int, set[str]] = {}
    for ls_project, since in pusher.since.items():
        lower = format_ls_dt(parse_ls_dt(since) - OVERLAP)
        for page in range(1, 1000):
            try:
                body = client.tasks_page(ls_project, page=page, page_size=500, query=updated_filter(lower),
                                         fields=None, include="id,meta,updated_at")
            except SyncError:
                break
            batch = body.get("tasks") or []
            for t in batch:
                if isinstance(t.get("id"), int) and t["id"] in written:
                    present[t["id"]] = rec.record_uuids(t.get("meta"))
            if len(batch) < 500:
                break

    def read(task_sid: int) -> tuple[int, set[str] | None]:
        try:
            return task_sid, rec.record_uuids(client.task(task_sid).get("meta"))
        except SyncError:
            return task_sid, None  # unknown (gone, or unreachable): the verifying pull decides

    rest = [sid for sid in written if sid not in present]
    if rest:
        with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="push-recheck") as pool:
            for task_sid, got in pool.map(read, rest):
                if got is not None:
                    present[task_sid] = got
    missing = [u for sid, uuids in written.items() if sid in present for u in uuids if u not in present[sid]]
    if not missing:
        return 0
    decisions = sorted({u.split("/", 1)[0] for u in missing})
    with store.transaction() as s:
        return mark_lost(s, decisions, actor, where="push re-read")


def push_server(store: Store, client: LSClient, server_ref: int, *, edition: str = "community",
                concurrency: int = CONCURRENCY, progress: Progress | None = None,
                cancel: threading.Event | None = None, actor: str = "sync",
                recheck: bool = True) -> PushReport:
    """Push every pending decision of the server's projects.

    Rounds: push the queue; after a short jittered delay re-read every task written and re-queue any of our
    records that another client's concurrent read-merge-write erased; push again (at most ``ROUNDS`` times).
    """
    client.cancel_event = cancel
    with store.session() as s:
        pids = list(s.scalars(select(Project.id).where(Project.server_ref == server_ref)))
    final: dict[str, Outcome] = {}
    cancelled = 0
    errors: list[str] = []
    auth_required = False
    reappended = 0
    fatal: BaseException | None = None
    pusher: GroupPusher | None = None
    attempted: set[str] = set()
    for _round in range(ROUNDS):
        with store.transaction() as s:
            cancelled += cancel_unsent_retractions(s, pids, actor) if pids else 0
        with store.session() as s:
            groups, _folds = load_groups(s, server_ref)
        if not groups:
            break
        if pusher is None:
            pusher = _make_pusher(store, client, edition, pids)
        pusher.written, pusher.since, pusher.project_of = {}, {}, {}
        attempted.update(i.uuid for g in groups for i in g.items)
        fatal = _push_round(store, pusher, groups, concurrency, progress, cancel, actor, final, errors)
        if fatal is not None or not recheck:
            break
        lost = _recheck(store, client, pusher, concurrency, actor)
        if not lost:
            break
        reappended += lost
    with store.transaction() as s:
        now = now_iso()
        for pid in pids:
            st = s.get(SyncState, pid)
            if st is None:
                st = SyncState(project_id=pid)
                s.add(st)
            st.last_push_at = now
        synced = sum(1 for o in final.values() if o.state == "synced")
        conflicts = sum(1 for o in final.values() if o.state == "conflict")
        cancelled += sum(1 for o in final.values() if o.state == "cancelled")
        failed = sum(1 for o in final.values() if o.state == "pending")
        if attempted:
            append_event(s, actor, "sync.pushed", {"server": server_ref, "synced": synced, "conflicts": conflicts,
                                                   "failed": failed, "cancelled": cancelled,
                                                   "reappended": reappended})
    if not attempted:
        return PushReport(cancelled=cancelled)
    if isinstance(fatal, AuthError):
        auth_required = True
        errors.insert(0, str(fatal))
    elif isinstance(fatal, Cancelled):
        raise fatal
    elif fatal is not None:
        errors.insert(0, str(fatal))
    already = sum(1 for o in final.values() if o.state == "synced" and o.already)
    left = len(attempted) - synced - conflicts - failed - sum(1 for o in final.values() if o.state == "cancelled")
    return PushReport(attempted=len(attempted), synced=synced, already_on_server=already, conflicts=conflicts,
                      cancelled=cancelled, failed=failed + max(0, left), errors=tuple(errors),
                      auth_required=auth_required, reappended=reappended)


def _make_pusher(store: Store, client: LSClient, edition: str, pids: list[int]) -> GroupPusher:
    users = client.users()
    members = {str(u.get("email", "")).lower(): int(u["id"]) for u in users if isinstance(u.get("id"), int)}
    with store.session() as s:
        for m in s.scalars(select(Member).where(Member.project_id.in_(pids), Member.email.is_not(None))):
            if m.user_id is not None:
                members.setdefault(str(m.email).lower(), int(m.user_id))
    me = client.whoami().get("id")
    return GroupPusher(client, edition, members, me if isinstance(me, int) else None)


def _push_round(store: Store, pusher: GroupPusher, groups: list[Group], concurrency: int,
                progress: Progress | None, cancel: threading.Event | None, actor: str,
                final: dict[str, Outcome], errors: list[str]) -> BaseException | None:
    total = sum(len(g.items) for g in groups)
    done_items = 0
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="push")
    pending_futs: dict[Future[list[Outcome]], Group] = {}
    queue = list(groups)
    fatal: BaseException | None = None
    try:
        while queue or pending_futs:
            while queue and len(pending_futs) < max(1, concurrency) and fatal is None:
                g = queue.pop(0)
                pending_futs[pool.submit(pusher.push, g, cancel)] = g
            if not pending_futs:
                break
            finished, _ = wait(list(pending_futs), return_when=FIRST_COMPLETED)
            for fut in finished:
                g = pending_futs.pop(fut)
                try:
                    outs = fut.result()
                except (AuthError, TLSError, Cancelled, OfflineError) as exc:
                    fatal = fatal or exc
                    queue.clear()
                    continue
                _apply(store, outs, actor)
                for o in outs:
                    final[o.uuid] = o
                    if o.state == "pending" and o.error and o.error not in errors:
                        errors.append(o.error)
                done_items += len(g.items)
                if progress:
                    progress(done_items, total)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return fatal
