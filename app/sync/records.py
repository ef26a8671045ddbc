"""The compact decision record ReviewDesk keeps in ``task.meta["reviewdesk"]["decisions"]``.

Every pushed decision leaves one record carrying its client UUID: it is how the push recognises its own
earlier effect after any fault (idempotency), how other tools and other reviewers see decisions that Label
Studio Community has no field for (reject, escalate, reasons, comments), and how another reviewer's decision
on the same annotation is noticed (a conflict, never silently overwritten).

``PATCH /api/tasks/{id}/ {"meta": ...}`` replaces the whole meta, so records are merged into what was read
(other keys untouched), written, and read back to verify.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

META_KEY = "reviewdesk"
JUDGED = ("accept", "fix", "reject", "escalate")


def meta_records(meta: Any) -> list[dict[str, Any]]:
    if not isinstance(meta, dict):
        return []
    rd = meta.get(META_KEY)
    if not isinstance(rd, dict):
        return []
    recs = rd.get("decisions")
    return [r for r in recs if isinstance(r, dict) and isinstance(r.get("uuid"), str)] if isinstance(recs, list) else []


def record_uuids(meta: Any) -> set[str]:
    return {r["uuid"] for r in meta_records(meta)}


def merge(meta: Any, records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """``meta`` with ``records`` appended (by UUID: a record already there is not added twice)."""
    out = copy.deepcopy(meta) if isinstance(meta, dict) else {}
    rd = out.get(META_KEY)
    if not isinstance(rd, dict):
        rd = {}
    existing = rd.get("decisions") if isinstance(rd.get("decisions"), list) else []
    have = {r.get("uuid") for r in existing if isinstance(r, dict)}
    merged = list(existing)
    for r in records:
        if r["uuid"] not in have:
            merged.append(r)
            have.add(r["uuid"])
    rd["decisions"] = merged
    rd.setdefault("v", 1)
    out[META_KEY] = rd
    return out


def build_record(*, uuid: str, verdict: str, annotation: int | None, prediction: int | None, reviewer: str,
                 role: str, at: str, reason: str | None = None, comment: str | None = None,
                 retracts: str | None = None, fix_annotation: int | None = None, forced: bool = False,
                 lead_time_ms: int | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {"uuid": uuid, "verdict": verdict}
    if annotation is not None:
        rec["annotation"] = annotation
    if prediction is not None:
        rec["prediction"] = prediction
    rec.update({"reviewer": reviewer, "role": role, "at": at})
    for key, value in (("reason", reason), ("comment", comment), ("retracts", retracts),
                       ("fix_annotation", fix_annotation), ("lead_time_ms", lead_time_ms)):
        if value is not None:
            rec[key] = value
    if forced:
        rec["forced"] = True
    return rec


def competing(records: list[dict[str, Any]], *, annotation: int | None, prediction: int | None, reviewer: str,
              role: str, known: set[str]) -> list[dict[str, Any]]:
    """Other reviewers' live decisions on the same annotation (or prediction) that this client did not know.

    A record is *known* when its UUID is one of ours or was already in the task meta the reviewer had
    (pulled before deciding). An expert deciding on an escalated annotation is the normal workflow, not a
    conflict.
    """
    retracted = {r.get("retracts") for r in records if r.get("verdict") == "retract"}
    out = []
    for r in records:
        if r["uuid"] in known or r["uuid"] in retracted or r.get("verdict") not in JUDGED:
            continue
        if r.get("reviewer") == reviewer:
            continue
        same = (annotation is not None and r.get("annotation") == annotation) or (
            prediction is not None and r.get("prediction") == prediction)
        if not same:
            continue
        if role == "expert" and r.get("verdict") == "escalate":
            continue
        out.append(r)
    return out
