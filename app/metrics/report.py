"""JSON-ready report and text table of an agreement matrix (used by ``reviewdesk metrics``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from app.metrics.matrix import (
    AVG,
    GROUND_TRUTH,
    AgreementMatrix,
    Mode,
    _control_rows,
    _prepare,
    _setup,
    agreement_matrices,
)
from app.metrics.quality import annotator_quality
from app.metrics.stats import alpha_from_codes

__all__ = ["control_alpha", "format_matrix_table", "metrics_report", "to_jsonable"]

_LEVELS = {
    "choices": "nominal",
    "pairwise": "nominal",
    "taxonomy": "nominal",
    "rating": "ordinal",
    "number": "interval",
}


def to_jsonable(x: Any) -> Any:
    """Convert numpy/pandas values recursively to JSON types; ``nan``/``NaT`` become ``None``."""
    if isinstance(x, Mapping):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return [to_jsonable(v) for v in x.tolist()]
    if isinstance(x, list | tuple):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float):
        return None if math.isnan(x) or math.isinf(x) else x
    if isinstance(x, pd.Timestamp):
        return None if pd.isna(x) else x.isoformat()
    if x is pd.NaT or x is pd.NA:
        return None
    return x


def control_alpha(
    annotations: pd.DataFrame,
    params: Mapping[str, Mapping[str, Any]] | None,
    control: str,
    evaluators: Sequence[str] | None = None,
) -> float | None:
    """Krippendorff's alpha of one control over its tasks (evaluators = coders, tasks = units).

    Single choices, pairwise and taxonomy are nominal (the answer set is the category), ratings ordinal,
    numbers interval; empty answers are missing values. ``None`` for multiple choices and for
    region/text controls, which have no value scale.
    """
    ev_index, task_index, _ = _setup(annotations, None, evaluators)
    if _control_rows(annotations, None, control, ev_index)[2] not in _LEVELS:
        return None  # regions, text, ...: no value scale (decided before keying every result)
    ctl = _prepare(annotations, None, params, control, ev_index, task_index)
    level = _LEVELS.get(ctl.ctype)
    if level is None or (ctl.ctype == "choices" and str(ctl.params.get("choice", "")).lower() == "multiple"):
        return None
    if ctl.ctype in ("rating", "number"):
        vals = ctl.values if ctl.values is not None else np.array([_num(r) for r in ctl.reps], dtype=float)
        ok = ~np.isnan(vals[ctl.code])
        domain, codes = np.unique(vals[ctl.code[ok]], return_inverse=True)
        a = alpha_from_codes(ctl.task[ok], codes.ravel(), len(task_index), domain, level)  # type: ignore[arg-type]
    else:
        empty = np.array([not r for r in ctl.reps], dtype=bool)
        ok = ~empty[ctl.code]
        uniq, codes = np.unique(ctl.code[ok], return_inverse=True)
        a = alpha_from_codes(ctl.task[ok], codes.ravel(), len(task_index), np.arange(uniq.size, dtype=float))
    return None if math.isnan(a) else float(a)


def _num(result: Any) -> float:
    from app.metrics.matching import _number

    v = _number(result or [])
    return math.nan if v is None else v


def metrics_report(
    annotations: pd.DataFrame,
    ground_truth: pd.DataFrame | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    control: str | None = None,
    mode: Mode = "pairwise",
    decisions: pd.DataFrame | None = None,
    threshold: float = 0.5,
    weights: Mapping[str, float] | None = None,
    evaluators: Sequence[str] | None = None,
) -> dict[str, Any]:
    """JSON-ready report: ``{"control", "mode", "evaluators", "columns", "rows", "matrix", "counts",
    "per_annotator", "alpha", "alpha_by_control"}`` (``nan`` -> ``None``).

    ``matrix``/``counts`` have one row per evaluator then the ``Avg.`` row (see ``rows``). ``alpha`` is the
    selected control's Krippendorff alpha; with ``control=None`` it is the only control's alpha when the
    project has one control, else ``None`` (see ``alpha_by_control``). ``per_annotator`` holds the
    :func:`~app.metrics.quality.annotator_quality` table as records.
    """
    mats = agreement_matrices(
        annotations,
        ground_truth,
        params,
        mode=mode,
        threshold=threshold,
        weights=weights,
        evaluators=evaluators,
    )
    if control is not None and control not in mats:
        raise KeyError(f"unknown control {control!r}; known: {sorted(k for k in mats if k is not None)}")
    m = mats[control]
    controls = [c for c in mats if c is not None]
    alphas = {c: control_alpha(annotations, params, c, evaluators) for c in controls}
    if control is not None:
        alpha = alphas.get(control)
    else:
        alpha = alphas[controls[0]] if len(controls) == 1 else None
    quality = annotator_quality(
        annotations,
        ground_truth,
        params,
        decisions,
        controls=[control] if control is not None else None,
        evaluators=evaluators,
    )
    return to_jsonable(
        {
            "control": control,
            "mode": mode,
            "evaluators": list(m.evaluators),
            "columns": list(m.columns),
            "rows": list(m.rows),
            "matrix": m.matrix,
            "counts": m.counts,
            "per_annotator": quality.table.to_dict(orient="records"),
            "alpha": alpha,
            "alpha_by_control": alphas,
        }
    )


def format_matrix_table(m: AgreementMatrix, *, decimals: int = 0, max_name: int = 28) -> str:
    """Render a matrix as a text table of percentages, evaluators as rows, ``Ground truth`` then the
    other columns, ``—`` on the diagonal, ``n/a`` where there is no overlap and a final ``Avg.`` row."""

    def short(s: str) -> str:
        return s if len(s) <= max_name else s[: max_name - 1] + "…"

    header = ["Evaluator", *[short(c) for c in m.columns]]
    body: list[list[str]] = []
    for r, row_name in enumerate(m.rows):
        cells = [short(row_name)]
        for c, col in enumerate(m.columns):
            v = m.matrix[r, c]
            if row_name == col and row_name not in (AVG, GROUND_TRUTH):
                cells.append("—")
            elif np.isnan(v):
                cells.append("n/a")
            else:
                cells.append(f"{100 * v:.{decimals}f}%")
        body.append(cells)
    widths = [max(len(x[i]) for x in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            [cells[0].ljust(widths[0])] + [x.rjust(w) for x, w in zip(cells[1:], widths[1:], strict=True)]
        )

    title = f"Agreement ({m.mode}) — {m.control if m.control is not None else 'all controls'}"
    rule = "-" * len(line(header))
    return "\n".join([title, line(header), rule, *[line(b) for b in body[:-1]], rule, line(body[-1])])
