"""Chance-corrected statistics for the dashboard's statistic selector (Qt-free).

The numbers are those of ``reviewdesk metrics --stat kappa|alpha --json``: the same engine functions
(:func:`app.metrics.kappa_matrices`, :func:`app.metrics.alpha_report`) on the same frames
(:func:`app.services.dashboard.load_frames`), every evaluator (annotators and model versions) included.
Krippendorff's alpha is also given over the annotators only, the set the dashboard's difficulty chart uses, so
the two alphas on screen are labelled as two different things rather than read as one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from app.metrics import AVG, AgreementMatrix, alpha_report, kappa_cell_reasons, kappa_matrices
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
    def raters_text(self) -> str:
        """Raters per task: one number on a complete design, else the range the reason names (``4–7``)."""
        if self.raters_per_task is not None:
            return str(self.raters_per_task)
        m = re.search(r"between (\d+) and (\d+) raters", self.fleiss_reason or "")
        return f"{m.group(1)}–{m.group(2)}" if m else ""

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
    """Why each cell is undefined -- ``kappa_report``'s own ``reasons``."""
    return tuple(tuple(line) for line in kappa_cell_reasons(m))


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


def kappa_long(st: Statistics) -> pd.DataFrame:
    """Every defined or undefined kappa cell, tidy: ``dimension, evaluator_a, evaluator_b, kappa`` (-1..1, empty
    when undefined), ``n_shared_tasks``, ``reason`` (why undefined); no diagonal, no Avg. row."""
    rows = []
    for c, view in st.kappa.items():
        m = view.matrix
        if m is None:
            continue
        for r, a in enumerate(m.rows):
            if a == AVG:
                continue
            for k, b in enumerate(m.columns):
                if a == b:
                    continue
                v = float(m.matrix[r, k])
                rows.append((c if c is not None else "all categorical dimensions (mean)", a, b,
                             None if np.isnan(v) else round(v, 6), int(m.counts[r, k]), view.reasons[r][k] or ""))
    return pd.DataFrame(rows, columns=["dimension", "evaluator_a", "evaluator_b", "kappa", "n_shared_tasks",
                                       "reason"])


def dimensions_table(st: Statistics) -> pd.DataFrame:
    """Per dimension: ``alpha`` (all evaluators), ``alpha_annotators``, ``fleiss_kappa`` (coefficients -1..1,
    empty when undefined) with reasons and ``raters_per_task``; a last ``overall`` row for alpha."""
    rows = [(d.control, d.type, d.level or "", d.alpha, d.alpha_annotators, d.fleiss_kappa, d.raters_text,
             d.alpha_reason or "", d.fleiss_reason or "") for d in st.dimensions]
    rows.append(("overall", "", "", st.overall_alpha, st.overall_alpha_annotators, None, "",
                 st.overall_alpha_reason or st.overall_method, ""))
    return pd.DataFrame(rows, columns=["dimension", "type", "level", "alpha", "alpha_annotators", "fleiss_kappa",
                                       "raters_per_task", "alpha_reason", "fleiss_reason"])


def export_statistics_csv(st: Statistics, path: str) -> list[str]:
    """``<stem>-kappa.csv`` and ``<stem>-alpha.csv`` beside ``path`` (see :func:`kappa_long`,
    :func:`dimensions_table`); returns the files written."""
    from pathlib import Path

    p = Path(path)
    written = []
    for suffix, frame in (("kappa", kappa_long(st)), ("alpha", dimensions_table(st))):
        if not frame.empty:
            q = p.with_name(f"{p.stem}-{suffix}{p.suffix or '.csv'}")
            frame.to_csv(q, index=False)
            written.append(str(q))
    return written
