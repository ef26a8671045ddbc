"""Side-by-side comparison of a task's annotations, per control (Qt-free)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from app.models.config import LabelingConfig
from app.services.describe import describe_item
from app.services.projects import TaskDetail

_VOLATILE = {"id", "origin", "score", "readonly", "hidden", "parentID"}


def _canonical(items: list[dict[str, Any]]) -> str:
    """Order-insensitive, id-insensitive form of one control's items, for equality tests."""
    norm = []
    for it in items:
        d = {k: v for k, v in it.items() if k not in _VOLATILE}
        v = d.get("value")
        if isinstance(v, dict):
            d["value"] = {k: (round(x, 1) if isinstance(x, float) else x) for k, x in v.items()}
        norm.append(json.dumps(d, sort_keys=True, default=str))
    return "\n".join(sorted(norm))


@dataclass(frozen=True)
class ControlRow:
    control: str
    tag: str
    cells: tuple[tuple[str, ...], ...]  # per annotation: description lines
    differs: bool


@dataclass(frozen=True)
class Comparison:
    evaluators: tuple[str, ...]
    annotation_ids: tuple[int, ...]
    rows: tuple[ControlRow, ...]

    @property
    def disagreements(self) -> int:
        return sum(1 for r in self.rows if r.differs)


def compare_annotations(detail: TaskDetail, config: LabelingConfig) -> Comparison:
    anns = [a for a in detail.annotations if not a.was_cancelled] or list(detail.annotations)
    names = [c.name for c in config.controls] + [u.name for u in config.unknown]
    seen_extra: list[str] = []
    for a in anns:
        for it in a.result:
            fn = it.get("from_name") if isinstance(it, dict) else None
            if isinstance(fn, str) and fn not in names and fn not in seen_extra:
                seen_extra.append(fn)
    rows = []
    for name in names + seen_extra:
        tag = config.tag(name)
        per = [[it for it in a.result if isinstance(it, dict) and it.get("from_name") == name] for a in anns]
        if not any(per):
            continue
        cells = tuple(tuple(describe_item(it).split(": ", 1)[-1] for it in items) or ("—",) for items in per)
        canon = {_canonical(items) for items in per}
        rows.append(ControlRow(name, tag.tag if tag else "?", cells, len(canon) > 1))
    return Comparison(tuple(a.evaluator for a in anns), tuple(a.id for a in anns), tuple(rows))
