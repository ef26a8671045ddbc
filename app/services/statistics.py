"""Chance-corrected statistics for the dashboard's statistic selector (Qt-free).

The numbers are those of ``reviewdesk metrics --stat kappa|alpha --json``: the same engine functions
(:func:`app.metrics.kappa_matrices`, :func:`app.metrics.alpha_report`) on the same frames
(:func:`app.services.dashboard.load_frames`), every evaluator (annotators and model versions) included.
Krippendorff's alpha is also given over the annotators only, the set the dashboard's difficulty chart uses, so
the two alphas on screen are labelled as two different things rather than read as one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.metrics import AgreementMatrix, alpha_report, kappa_matrices
from app.models.store import Store
from app.services.dashboard import MODEL_PREFIX, load_frames

#: the selector's entries: key, label (the label carries the mnemonic-free display text)
STATISTICS: tuple[tuple[str, str], ...] = (
    ("agreement", "Percent agreement"),
    ("kappa", "Cohen's κ (pairwise)"),
    ("alpha", "Krippendorff's α"),
    ("fleiss", "Fleiss' κ"),
)

INCOMPLETE_DESIGN = "n/a — not every task has the same number of raters"


@dataclass(frozen=True)
class KappaCell:
    value: float | None  # None: undefined (see reason)
    n: int  # shared tasks (Avg. row: summed over pairs)
    reason: str | None


@dataclass(frozen=True, eq=False)
class KappaView:
    """Cohen's kappa matrix of one dimension (``None``: all categorical dimensions, mean), heatmap-shaped."""

    control: str | None
    matrix: AgreementMatrix | None  # None: not computed for this dimension (see note)
    reasons: tuple[tuple[str | None, ...], ...]  # same shape as the matrix: why a cell is undefined
    note: str | None = None

    def cell(self, row: str, column: str) -> KappaCell:
        m = self.matrix
        if m is None:
            raise KeyError(row)
        r, c = m.rows.index(row), m.columns.index(column)
        v = float(m.matrix[r, c])
        return KappaCell(None if np.isnan(v) else v, int(m.counts[r, c]), self.reasons[r][c])


@dataclass(frozen=True)
class DimensionStatistic:
    """Krippendorff's alpha and Fleiss' kappa of one dimension (``None`` + a reason when not defined)."""

    control: str
    type: str
    level: str | None  # nominal / ordinal / interval; None: no value scale
    alpha: float | None
    alpha_reason: str | None
    alpha_annotators: float | None  # over the annotators only (the difficulty chart's alpha)
    alpha_annotators_reason: str | None
    fleiss_kappa: float | None
    fleiss_reason: str | None
    raters_per_task: int | None

    @property
    def fleiss_text(self) -> str:
        """The cell text: the value, or ``n/a`` and why in a few words."""
        if self.fleiss_kappa is not None:
            return f"{self.fleiss_kappa:.3f}"
        return fleiss_na_text(self.fleiss_reason)


def fleiss_na_text(reason: str | None) -> str:
    why = reason or "undefined"
    if why.startswith("incomplete design"):
        return INCOMPLETE_DESIGN
    if why.startswith("not applicable"):
        return "n/a — not a categorical dimension"
    return f"n/a — {why}"


@dataclass(frozen=True, eq=False)
class Statistics:
    project_id: int
    version: tuple[Any, ...]
    evaluators: tuple[str, ...]
    kappa: Mapping[str | None, KappaView]  # every control (None = all categorical, mean)
    kappa_controls: tuple[str, ...]  # the categorical controls the "all" kappa averages
    dimensions: tuple[DimensionStatistic, ...]
    overall_alpha: float | None
    overall_alpha_reason: str | None
    overall_alpha_annotators: float | None
    overall_method: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    def dimension(self, control: str) -> DimensionStatistic:
        return next(d for d in self.dimensions if d.control == control)


def _reasons(m: AgreementMatrix) -> tuple[tuple[str | None, ...], ...]:
    """Why each cell is undefined -- the wording of ``kappa_report``'s ``reasons``."""
    E = len(m.evaluators)
    out = []
    for r, row in enumerate(m.rows):
        line: list[str | None] = []
        for c, col in enumerate(m.columns):
            if not np.isnan(m.matrix[r, c]):
                line.append(None)
            elif r < E and row == col:
                line.append("diagonal")
            elif r == E:
                line.append("no defined cell in this column")
            elif m.counts[r, c] == 0:
                line.append("no shared task with an answer from both")
            else:
                line.append("undefined: no variation in the answers (expected agreement 1)")
        out.append(tuple(line))
    return tuple(out)


def compute_statistics(store: Store, project_id: int) -> Statistics:
    """Cohen's kappa per pair, Krippendorff's alpha and Fleiss' kappa per dimension, for the dashboard."""
    frames = load_frames(store, project_id)
    ann = frames.annotations
    if ann.empty:
        return Statistics(project_id, frames.version, (), {}, (), (), None, "no annotations yet", None,
                          "unweighted mean of the defined per-dimension alphas",
                          notes=("This project has no annotations yet.",))
    gt = frames.ground_truth if not frames.ground_truth.empty else None
    mats, skipped = kappa_matrices(ann, gt, frames.params)
    kappa: dict[str | None, KappaView] = {}
    for c in (*frames.controls, None):
        m = mats.get(c)
        if m is None:
            note = skipped.get(c or "", "no categorical dimension to compute Cohen's κ on")
            kappa[c] = KappaView(c, None, (), note)
        else:
            kappa[c] = KappaView(c, m, _reasons(m))
    rep = alpha_report(ann, gt, frames.params)
    humans = sorted({str(e) for e in ann["evaluator"].unique() if not str(e).startswith(MODEL_PREFIX)})
    rep_h = alpha_report(ann, gt, frames.params, evaluators=humans) if humans else None
    dims = []
    for c, e in rep["by_control"].items():
        h = rep_h["by_control"].get(c, {}) if rep_h else {}
        dims.append(DimensionStatistic(
            control=c, type=e["type"], level=e["level"], alpha=e["alpha"], alpha_reason=e["alpha_reason"],
            alpha_annotators=h.get("alpha"), alpha_annotators_reason=h.get("alpha_reason", "no annotators"),
            fleiss_kappa=e["fleiss_kappa"], fleiss_reason=e["fleiss_reason"],
            raters_per_task=e["raters_per_task"]))
    o = rep["overall"]
    return Statistics(project_id, frames.version, tuple(rep["evaluators"]), kappa,
                      tuple(c for c in mats if c is not None), tuple(dims), o["alpha"], o["reason"],
                      rep_h["overall"]["alpha"] if rep_h else None, o["method"])
