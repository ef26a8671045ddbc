"""Plain-text descriptions of Label Studio results (for the task pane, CLI and history)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any


def _num(v: Any, digits: int = 1) -> str:
    return f"{v:.{digits}f}" if isinstance(v, int | float) else str(v)


def describe_item(item: dict[str, Any]) -> str:
    """One result item as a short human-readable line, e.g. ``category: Billing``."""
    name = item.get("from_name", "?")
    rtype = item.get("type", "")
    v = item.get("value") or {}
    if not isinstance(v, dict):
        return f"{name}: {v!r}"
    labels = None
    for key in (rtype, "labels", "choices", "rectanglelabels", "polygonlabels", "keypointlabels",
                "timeserieslabels", "hypertextlabels", "taxonomy"):
        if isinstance(v.get(key), list):
            labels = ", ".join(" / ".join(x) if isinstance(x, list) else str(x) for x in v[key])
            break
    if rtype == "choices" or rtype == "taxonomy":
        return f"{name}: {labels}"
    if rtype == "textarea":
        return f"{name}: " + " | ".join(str(t) for t in v.get("text", []))
    if rtype == "rating":
        return f"{name}: {v.get('rating')} ★"
    if rtype == "number":
        return f"{name}: {v.get('number')}"
    if rtype == "pairwise":
        return f"{name}: {v.get('selected')}"
    if rtype in ("rectanglelabels", "rectangle"):
        rot = v.get("rotation") or 0
        return (f"{name}: {labels or 'box'} @ {_num(v.get('x'))},{_num(v.get('y'))} "
                f"{_num(v.get('width'))}×{_num(v.get('height'))}%" + (f" ↻{_num(rot)}°" if rot else ""))
    if rtype in ("polygonlabels", "polygon"):
        return f"{name}: {labels or 'polygon'} ({len(v.get('points', []))} points)"
    if rtype in ("keypointlabels", "keypoint"):
        return f"{name}: {labels or 'point'} at ({_num(v.get('x'))}%, {_num(v.get('y'))}%)"
    if "start" in v and "end" in v:
        start, end = v.get("start"), v.get("end")
        if isinstance(start, float) or isinstance(end, float):
            span = f"{_num(start, 2)}–{_num(end, 2)} s"
        else:
            span = f"[{start}:{end}]"
        text = v.get("text")
        quoted = f' "{text}"' if isinstance(text, str) else ""
        return f"{name}: {labels}{quoted} {span}"
    return f"{name}: {rtype} {v}"


def describe_result(result: Iterable[dict[str, Any]] | None) -> list[str]:
    if result is None:
        return ["(result not included in the export)"]
    lines = [describe_item(i) for i in result if isinstance(i, dict) and i.get("type") != "relation"]
    return lines or ["(empty result)"]


# -- decisions ----------------------------------------------------------------------------------------------
_VERB = {"accept": "accepted", "fix": "fixed", "reject": "rejected", "escalate": "escalated", "skip": "skipped",
         "retract": "withdrew a decision on", "resolve": "resolved a conflict on"}


def parse_stamp(stamp: str | None) -> datetime | None:
    """An ISO 8601 time (``...Z``, an offset, or naive = UTC) as an aware UTC datetime; None if unreadable."""
    if not stamp:
        return None
    try:
        t = datetime.fromisoformat(stamp.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)


def ago(stamp: str | None, now: datetime | None = None) -> str:
    """``just now``, ``5 min ago``, ``2 h ago``, ``3 d ago``, else the date (a time from a clock ahead of
    ours reads ``just now``, never ``in 3 min``)."""
    then = parse_stamp(stamp)
    if then is None:
        return stamp or "at an unknown time"
    secs = int(((now or datetime.now(UTC)) - then).total_seconds())
    if secs < 60:
        return "just now"
    if secs < 3600:
        return f"{secs // 60} min ago"
    if secs < 86400:
        return f"{secs // 3600} h ago"
    if secs < 7 * 86400:
        return f"{secs // 86400} d ago"
    return f"on {then:%Y-%m-%d}"


def past_tense(verdict: str) -> str:
    """``reject`` -> ``rejected`` (the verbs of the review loop)."""
    return _VERB.get(verdict, verdict)


def describe_decision(*, who: str, verdict: str, target: str = "this annotation", created_at: str | None = None,
                      reason: str | None = None, comment: str | None = None, now: datetime | None = None) -> str:
    """One decision as a sentence, e.g. ``Priya rejected this annotation 2 h ago — Wrong label``."""
    verb = _VERB.get(verdict, verdict)
    note = " — ".join(x for x in (reason, comment) if x)
    return f"{who} {verb}" + (f" {target}" if target else "") + f" {ago(created_at, now)}" + (
        f" — {note}" if note else "")


def evaluator_name(evaluator: str | None, names: dict[str, str] | None = None) -> str:
    """One name format for an evaluator everywhere: the project member's display name when the server gave
    one (``names``: lower-cased e-mail -> name), else a name made from the e-mail's local part
    (``anna.k@lab.org`` -> ``Anna K``); the e-mail itself goes in tooltips."""
    if not evaluator:
        return "unknown"
    key = evaluator.strip().lower()
    if names and key in names and names[key].strip().lower() != key:
        return names[key]
    if "@" not in evaluator:
        return evaluator
    local = evaluator.split("@")[0].replace(".", " ").replace("_", " ").strip()
    return local.title() if local else evaluator
