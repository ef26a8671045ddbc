"""Side-by-side comparison of a task's annotations, per control (Qt-free)."""

from __future__ import annotations

import json
from collections.abc import Sequence
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
class DecisionNote:
    """One live decision on a compared annotation, e.g. ``Priya rejected 2 h ago — Wrong label``."""

    text: str
    verdict: str
    origin: str  # local | server (another reviewer's, pulled: read-only)
    reviewer: str

    @property
    def from_server(self) -> bool:
        return self.origin == "server"


@dataclass(frozen=True)
class Comparison:
    evaluators: tuple[str, ...]
    annotation_ids: tuple[int, ...]
    rows: tuple[ControlRow, ...]
    notes: tuple[tuple[DecisionNote, ...], ...] = ()  # per annotation: live decisions on it, newest first

    @property
    def disagreements(self) -> int:
        return sum(1 for r in self.rows if r.differs)


def decision_notes(annotation_ids: Sequence[int], decisions: Sequence[Any], *, me: str | None = None,
                   per_annotation: int = 3) -> tuple[tuple[DecisionNote, ...], ...]:
    """Per annotation, its live (not undone) decisions from everyone, newest first (at most
    ``per_annotation``). ``decisions`` are :class:`app.services.review.TeamDecision` values, newest first."""
    out: dict[int, list[DecisionNote]] = {a: [] for a in annotation_ids}
    for d in decisions:
        lst = out.get(d.annotation_id) if d.annotation_id is not None else None
        if lst is None or d.retracted or d.verdict in ("retract", "skip") or len(lst) >= per_annotation:
            continue
        lst.append(DecisionNote(d.sentence("", me=me), d.verdict, d.origin, d.reviewer))
    return tuple(tuple(out[a]) for a in annotation_ids)


def compare_annotations(detail: TaskDetail, config: LabelingConfig, decisions: Sequence[Any] = (), *,
                        me: str | None = None, fixed: dict[int, Sequence[Any]] | None = None,
                        names: dict[int, str] | None = None) -> Comparison:
    """The task's annotations side by side per control; ``decisions`` (the task's history, newest first)
    adds who decided what on each annotation, others' included. ``fixed`` (annotation id -> its fixed result)
    shows a saved fix as ``original → fixed``; ``names`` (annotation id -> display name) names the columns."""
    display = names or {}
    anns = [a for a in detail.annotations if not a.was_cancelled] or list(detail.annotations)
    controls = [c.name for c in config.controls] + [u.name for u in config.unknown]
    seen_extra: list[str] = []
    for a in anns:
        for it in a.result:
            fn = it.get("from_name") if isinstance(it, dict) else None
            if isinstance(fn, str) and fn not in controls and fn not in seen_extra:
                seen_extra.append(fn)
    rows = []
    for name in controls + seen_extra:
        tag = config.tag(name)
        per = [[it for it in a.result if isinstance(it, dict) and it.get("from_name") == name] for a in anns]
        if not any(per):
            continue
        cells = tuple(_cell(items) for items in per)
        if fixed:
            cells = tuple(_fixed_cell(cell, fixed.get(a.id), name) for cell, a in zip(cells, anns, strict=True))
        canon = {_canonical(items) for items in per}
        rows.append(ControlRow(name, tag.tag if tag else "?", cells, len(canon) > 1))
    ids = tuple(a.id for a in anns)
    evaluators = tuple(display.get(a.id, a.evaluator) for a in anns)
    return Comparison(evaluators, ids, tuple(rows), decision_notes(ids, decisions, me=me))


def _cell(items: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    return tuple(describe_item(it).split(": ", 1)[-1] for it in items) or ("—",)


def _fixed_cell(cell: tuple[str, ...], fixed: Sequence[Any] | None, control: str) -> tuple[str, ...]:
    """``original → fixed`` when a saved fix changed this control's value."""
    if fixed is None:
        return cell
    new = _cell([it for it in fixed if isinstance(it, dict) and it.get("from_name") == control])
    if new == cell:
        return cell
    return (f"{'; '.join(cell)} → {'; '.join(new)}",)
