"""JSON-ready report and text table of an agreement matrix (used by ``reviewdesk metrics``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from app.metrics._pairs import CONFUSION_CELL_LIMIT, pair_confusion
from app.metrics.matrix import (
    AVG,
    GROUND_TRUTH,
    AgreementMatrix,
    Mode,
    _consensus_eligible,
    _Control,
    _control_rows,
    _positions,
    _prepare,
    _setup,
    _with_avg,
    agreement_matrices,
    shared_preparation,
)
from app.metrics.quality import annotator_quality
from app.metrics.stats import UndefinedStatisticError, alpha_from_codes, fleiss_kappa, kappa_from_confusion

__all__ = [
    "STATS",
    "alpha_report",
    "control_alpha",
    "format_matrix_table",
    "kappa_matrices",
    "kappa_cell_reasons",
    "kappa_report",
    "metrics_report",
    "to_jsonable",
]

#: the statistics ``reviewdesk metrics --stat`` and the dashboard's selector offer
STATS = ("agreement", "kappa", "alpha")

#: what the two ground-truth numbers of the agreement report are (they differ over several dimensions)
DEFINITIONS = {
    "Ground truth": "matrix column: mean score against the reference (ground truth) over the tasks the row "
    "shares with it; for all dimensions, the unweighted mean of the per-dimension cells",
    "Consensus (Dawid-Skene)": "matrix column (dashboard): mean score against the Dawid-Skene consensus answer "
    "of the human annotators, own vote included; categorical dimensions only",
    "accuracy": "per_annotator: score against the reference pooled over every (task, dimension) compared "
    "(dimensions with more compared tasks weigh more), with a 95% Wilson interval; equals the Ground truth "
    "cell on a single dimension",
}

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


def jsonable_object(x: Mapping[Any, Any]) -> dict[str, Any]:
    """:func:`to_jsonable` of a mapping: a JSON object."""
    return {str(k): to_jsonable(v) for k, v in x.items()}


def control_alpha(
    annotations: pd.DataFrame,
    params: Mapping[str, Mapping[str, Any]] | None,
    control: str,
    evaluators: Sequence[str] | None = None,
    *,
    shared: bool = False,
    ground_truth: pd.DataFrame | None = None,
) -> float | None:
    """Krippendorff's alpha of one control over its tasks (evaluators = coders, tasks = units).

    Single choices, pairwise and taxonomy are nominal (the answer set is the category), ratings ordinal,
    numbers interval; empty answers are missing values. ``None`` for multiple choices and for
    region/text controls, which have no value scale.

    ``shared``: inside :func:`shared_preparation`, after :func:`agreement_matrices` of every evaluator with
    ``ground_truth``: the control's results are not keyed a second time -- the rows of ``evaluators`` are
    taken from that preparation (same answers, same categories; the ground truth itself is no coder either
    way). The dashboard's difficulty chart: 0.2 s less at 1M annotations.
    """
    gt = ground_truth if shared else None
    if shared:
        ev_index, task_index, _ = _setup(annotations, gt, None)
    else:
        ev_index, task_index, _ = _setup(annotations, None, evaluators)
    if _control_rows(annotations, gt, control, ev_index)[2] not in _LEVELS:
        return None  # regions, text, ...: no value scale (decided before keying every result)
    ctl = _prepare(annotations, gt, params, control, ev_index, task_index)
    level = _LEVELS.get(ctl.ctype)
    if level is None or (ctl.ctype == "choices" and str(ctl.params.get("choice", "")).lower() == "multiple"):
        return None
    task, code = ctl.task, ctl.code
    if shared and evaluators is not None:  # the coders' rows of the shared preparation
        coders = _positions(ev_index, pd.Series(list(evaluators), dtype=object))
        keep = np.isin(ctl.ev, coders[coders >= 0])
        task, code = task[keep], code[keep]
    if ctl.ctype in ("rating", "number"):
        vals = ctl.values if ctl.values is not None else np.array([_num(r) for r in ctl.reps], dtype=float)
        ok = ~np.isnan(vals[code])
        domain, codes = np.unique(vals[code[ok]], return_inverse=True)
        a = alpha_from_codes(task[ok], codes.ravel(), len(task_index), domain, level)  # type: ignore[arg-type]
    else:
        empty = np.array([not r for r in ctl.reps], dtype=bool)
        ok = ~empty[code]
        uniq, codes = np.unique(code[ok], return_inverse=True)
        a = alpha_from_codes(task[ok], codes.ravel(), len(task_index), np.arange(uniq.size, dtype=float))
    return None if math.isnan(a) else float(a)


def _num(result: Any) -> float:
    from app.metrics.matching import _number

    v = _number(result or [])
    return math.nan if v is None else v


@shared_preparation()  # its reports code the frames once
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
        consensus_reference=None,  # the JSON report keeps its shape (Ground truth, then the evaluators)
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
    return jsonable_object(
        {
            "definitions": {k: v for k, v in DEFINITIONS.items() if not k.startswith("Consensus")},
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


# --------------------------------------------------------------------------------------------------
# --stat kappa | alpha


def _categorical(ctl: _Control) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Rows with a non-empty answer: (mask, answer code, ground-truth code or -1, number of codes).
    An empty answer ("nothing selected") is a missing value for kappa, alpha and Fleiss' kappa."""
    empty = np.array([not r for r in ctl.reps], dtype=bool)
    ok = ~empty[ctl.code] if ctl.code.size else np.zeros(0, bool)
    keep = np.flatnonzero(~empty)
    remap = np.full(len(ctl.reps), -1, np.int64)
    remap[keep] = np.arange(keep.size)
    gt = np.where(ctl.gt_code >= 0, remap[np.maximum(ctl.gt_code, 0)], -1)
    return ok, remap[ctl.code], gt, int(keep.size)


def _kappa_control(ctl: _Control, E: int) -> tuple[np.ndarray, np.ndarray]:
    """Cohen's kappa matrix (E rows; columns ``Ground truth`` then the evaluators) and shared-task counts."""
    ok, code, gt, K = _categorical(ctl)
    if K == 0:
        return np.full((E, E + 1), np.nan), np.zeros((E, E + 1), np.int64)
    task, ev, code, gt = ctl.task[ok], ctl.ev[ok], code[ok], gt[ok]
    C = pair_confusion(task, ev, code, E, K)
    body = np.asarray(kappa_from_confusion(C), dtype=np.float64)
    np.fill_diagonal(body, np.nan)
    has = gt >= 0
    G = np.bincount((ev[has] * K + code[has]) * K + gt[has], minlength=E * K * K).reshape(E, K, K)
    gtk = np.asarray(kappa_from_confusion(G), dtype=np.float64)
    counts = np.column_stack([G.sum(axis=(1, 2)), C.sum(axis=(2, 3))]).astype(np.int64)
    return np.column_stack([gtk, body]), counts


def kappa_matrices(
    annotations: pd.DataFrame,
    ground_truth: pd.DataFrame | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    evaluators: Sequence[str] | None = None,
) -> tuple[dict[str | None, AgreementMatrix], dict[str, str]]:
    """Cohen's kappa (unweighted) for every evaluator pair and against the ground truth, per categorical
    control, in the heatmap's shape (rows: evaluators then ``Avg.``; columns: ``Ground truth`` then the
    evaluators; ``mode="kappa"``); ``None`` = all categorical controls (mean of the per-control cells, counts
    summed over controls). Cells are ``nan`` on the diagonal, without a shared answered task, or where kappa
    is undefined (no variation: expected agreement 1). Returns the matrices and, per control left out, why.
    """
    ev_index, task_index, controls = _setup(annotations, ground_truth, evaluators)
    E = len(ev_index)
    evs = tuple(map(str, ev_index))
    columns = (GROUND_TRUTH, *evs)
    out: dict[str | None, AgreementMatrix] = {}
    skipped: dict[str, str] = {}
    for c in controls:
        ctype = _control_rows(annotations, ground_truth, c, ev_index)[2]
        if not _consensus_eligible(ctype, dict((params or {}).get(c, {}) or {})):
            skipped[c] = f"{ctype} has no categorical answer (kappa needs single choices, pairwise, taxonomy or rating)"
            continue
        ctl = _prepare(annotations, ground_truth, params, c, ev_index, task_index)
        n_codes = sum(1 for r in ctl.reps if r)
        if (E * n_codes) ** 2 > CONFUSION_CELL_LIMIT:
            skipped[c] = f"{n_codes} distinct answers x {E} evaluators is too large for pairwise kappa"
            continue
        mat, cnt = _kappa_control(ctl, E)
        m2, c2 = _with_avg(mat, cnt)
        out[c] = AgreementMatrix(evs, columns, m2, c2, c, "kappa")
    if out:
        stack = np.stack([m.matrix[:E] for m in out.values()])
        ok = ~np.isnan(stack)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(ok.any(axis=0), np.where(ok, stack, 0.0).sum(axis=0) / np.maximum(ok.sum(axis=0), 1),
                            np.nan)
        cnt = np.sum([m.counts[:E] for m in out.values()], axis=0).astype(np.int64)
        m2, c2 = _with_avg(mean, cnt)
        out[None] = AgreementMatrix(evs, columns, m2, c2, None, "kappa")
    return out, skipped


def kappa_cell_reasons(m: AgreementMatrix) -> list[list[str | None]]:
    """Why each cell of a kappa matrix is undefined (``None`` where it is defined), as ``kappa_report`` says."""
    E = len(m.evaluators)
    reasons: list[list[str | None]] = []
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
        reasons.append(line)
    return reasons


@shared_preparation()  # its reports code the frames once
def kappa_report(
    annotations: pd.DataFrame,
    ground_truth: pd.DataFrame | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    control: str | None = None,
    evaluators: Sequence[str] | None = None,
) -> dict[str, Any]:
    """JSON-ready ``--stat kappa`` report: the :func:`kappa_matrices` matrix of ``control`` (``None`` = all
    categorical controls) with ``rows``, ``columns``, ``matrix`` (``null`` = undefined), ``counts``,
    ``reasons`` (same shape: why a cell is ``null``), ``controls`` (the controls averaged) and ``skipped``."""
    mats, skipped = kappa_matrices(annotations, ground_truth, params, evaluators=evaluators)
    _, _, all_controls = _setup(annotations, ground_truth, evaluators)
    if control is not None and control not in all_controls:
        raise KeyError(f"unknown control {control!r}; known: {sorted(all_controls)}")
    m = mats.get(control)
    base: dict[str, Any] = {
        "stat": "kappa",
        "statistic": "Cohen's kappa (unweighted), row vs column over the tasks both answered",
        "control": control,
        "controls": [c for c in mats if c is not None],
        "skipped": skipped,
    }
    if m is None:
        reason = skipped.get(control or "", "no categorical control to compute kappa on")
        return jsonable_object({**base, "evaluators": [], "columns": [], "rows": [], "matrix": [], "counts": [],
                            "reasons": [], "note": reason})
    return jsonable_object({**base, "evaluators": list(m.evaluators), "columns": list(m.columns),
                        "rows": list(m.rows), "matrix": m.matrix, "counts": m.counts,
                        "reasons": kappa_cell_reasons(m)})


def _alpha_detail(ctl: _Control, level: str, n_units: int) -> tuple[float | None, str | None]:
    ok, code, _, _ = _categorical(ctl) if ctl.ctype not in ("rating", "number") else (None, None, None, 0)
    if ctl.ctype in ("rating", "number"):
        vals = ctl.values if ctl.values is not None else np.array([_num(r) for r in ctl.reps], dtype=float)
        good = ~np.isnan(vals[ctl.code])
        domain, codes = np.unique(vals[ctl.code[good]], return_inverse=True)
        units, codes = ctl.task[good], codes.ravel()
    else:
        assert ok is not None and code is not None
        uniq, codes = np.unique(code[ok], return_inverse=True)
        domain = np.arange(uniq.size, dtype=float)
        units, codes = ctl.task[ok], codes.ravel()
    if codes.size == 0:
        return None, "every value is missing (no answer)"
    m_u = np.bincount(units, minlength=n_units)
    if not (m_u >= 2).any():
        return None, "no task has answers from two evaluators"
    paired = (m_u >= 2)[units]
    if np.unique(codes[paired]).size < 2:
        return None, "no variation: every paired answer is the same (expected disagreement 0)"
    a = alpha_from_codes(units, codes, n_units, domain, level)  # type: ignore[arg-type]
    if math.isnan(a):
        return None, "undefined (no expected disagreement)"
    return float(a), None


def _fleiss_detail(ctl: _Control) -> tuple[float | None, str | None, int | None]:
    ok, code, _, K = _categorical(ctl)
    task = ctl.task[ok]
    if task.size == 0:
        return None, "no answer", None
    uniq_t, t = np.unique(task, return_inverse=True)
    table = np.bincount(t.ravel() * K + code[ok], minlength=uniq_t.size * K).reshape(uniq_t.size, K)
    n_i = table.sum(axis=1)
    lo, hi = int(n_i.min()), int(n_i.max())
    if lo != hi:
        return None, (f"incomplete design: tasks have between {lo} and {hi} raters (Fleiss' kappa needs the "
                      "same number of raters on every task)"), None
    if lo < 2:
        return None, "every task has a single rater", lo
    try:
        return fleiss_kappa(table), None, lo
    except UndefinedStatisticError as exc:
        return None, str(exc), lo


@shared_preparation()  # its reports code the frames once
def alpha_report(
    annotations: pd.DataFrame,
    ground_truth: pd.DataFrame | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    control: str | None = None,
    evaluators: Sequence[str] | None = None,
) -> dict[str, Any]:
    """JSON-ready ``--stat alpha`` report: per dimension (``by_control``) Krippendorff's alpha (level
    nominal for single choices, pairwise, taxonomy; ordinal for ratings; interval for numbers; empty answers
    missing) and Fleiss' kappa (categorical dimensions with a complete design: every task rated by the same
    number of evaluators), each ``null`` with a ``*_reason`` when not applicable or undefined; ``overall``:
    the unweighted mean of the defined per-dimension alphas (of ``control`` only when given)."""
    ev_index, task_index, controls = _setup(annotations, ground_truth, evaluators)
    if control is not None:
        if control not in controls:
            raise KeyError(f"unknown control {control!r}; known: {sorted(controls)}")
        controls = [control]
    by: dict[str, dict[str, Any]] = {}
    for c in controls:
        ctype = _control_rows(annotations, None, c, ev_index)[2]
        p = dict((params or {}).get(c, {}) or {})
        level = _LEVELS.get(ctype)
        multiple = ctype == "choices" and str(p.get("choice", "")).lower() == "multiple"
        entry: dict[str, Any] = {"type": ctype, "level": None if multiple else level}
        if level is None or multiple:
            why = "multiple choices have no single value" if multiple else f"{ctype} answers have no value scale"
            entry.update(alpha=None, alpha_reason=f"not applicable: {why}", fleiss_kappa=None,
                         fleiss_reason=f"not applicable: {why}", raters_per_task=None)
            by[c] = entry
            continue
        ctl = _prepare(annotations, None, params, c, ev_index, task_index)
        a, a_why = _alpha_detail(ctl, level, len(task_index))
        entry.update(alpha=a, alpha_reason=a_why)
        if _consensus_eligible(ctype, p):
            f, f_why, n = _fleiss_detail(ctl)
            entry.update(fleiss_kappa=f, fleiss_reason=f_why, raters_per_task=n)
        else:
            entry.update(fleiss_kappa=None, fleiss_reason=f"not applicable: {ctype} is not categorical",
                         raters_per_task=None)
        by[c] = entry
    defined = [e["alpha"] for e in by.values() if e["alpha"] is not None]
    overall = {
        "alpha": float(np.mean(defined)) if defined else None,
        "reason": None if defined else "no dimension has a defined alpha",
        "method": "unweighted mean of the defined per-dimension alphas",
        "n_controls": len(defined),
    }
    return jsonable_object({"stat": "alpha", "control": control, "evaluators": list(map(str, ev_index)),
                        "by_control": by, "overall": overall})
