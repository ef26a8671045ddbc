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
    existing = rd.get("decisions")
    if not isinstance(existing, list):
        existing = []
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
                 lead_time_ms: int | None = None, contested: list[str] | None = None) -> dict[str, Any]:
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
    if contested:
        # on the record, but with no effect on the server: another reviewer decided differently first
        rec["contested"] = list(contested)
    return rec


def resolution_uuid(decision_uuid: str) -> str:
    """The id of the record that says "kept after a conflict" for ``decision_uuid`` (deterministic: idempotent)."""
    return f"{decision_uuid}/kept"


def resolution_record(*, decision_uuid: str, reviewer: str, role: str, at: str,
                      against: str | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {"uuid": resolution_uuid(decision_uuid), "verdict": "resolve", "resolves": decision_uuid,
                           "outcome": "keep", "reviewer": reviewer, "role": role, "at": at}
    if against:
        rec["against"] = against
    return rec


def retracted_uuids(records: list[dict[str, Any]]) -> set[str]:
    return {r["retracts"] for r in records if r.get("verdict") == "retract" and isinstance(r.get("retracts"), str)}


def same_judgement(a_verdict: str, a_result: Any, b_verdict: str, b_result: Any) -> bool:
    """Two verdicts that agree (both accept, both reject, or fixes to the same result) are no conflict."""
    if a_verdict != b_verdict:
        return False
    if a_verdict != "fix" or a_result is None or b_result is None:
        return True
    import json

    return json.dumps(a_result, sort_keys=True) == json.dumps(b_result, sort_keys=True)


def competing(records: list[dict[str, Any]], *, annotation: int | None, prediction: int | None, reviewer: str,
              role: str, known: set[str], verdict: str | None = None, result: Any = None,
              fix_results: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Other reviewers' live decisions on the same annotation (or prediction) that this client did not know.

    A record is *known* when its UUID is one of ours or was already in the task meta the reviewer had
    (pulled before deciding). An expert deciding on an escalated annotation -- or overruling reviewers -- is
    the normal workflow, not a conflict; escalations never conflict. When ``verdict`` is given, a record that
    judges the same way (same verdict; for fixes the same result, looked up in ``fix_results`` by record
    UUID) agrees and is no conflict.
    """
    retracted = retracted_uuids(records)
    out = []
    for r in records:
        if r["uuid"] in known or r["uuid"] in retracted or r.get("verdict") not in JUDGED:
            continue
        if r.get("reviewer") == reviewer or r.get("verdict") == "escalate":
            continue
        same = (annotation is not None and r.get("annotation") == annotation) or (
            prediction is not None and r.get("prediction") == prediction)
        if not same:
            continue
        if role == "expert":
            continue
        if verdict is not None and same_judgement(verdict, result, r["verdict"],
                                                  (fix_results or {}).get(r["uuid"])):
            continue
        out.append(r)
    return out
