"""Plain-text descriptions of Label Studio results (for the task pane, CLI and history)."""

from __future__ import annotations

from collections.abc import Iterable
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
