"""Agreement matrices across evaluators, per-task agreement and pair drill-down.

Input contract (built by the store layer)
-----------------------------------------
``annotations``: a pandas DataFrame, one row per (task, evaluator, control):

================ ========== ==========================================================================
column           dtype      meaning
================ ========== ==========================================================================
``task``         int        task id
``evaluator``    str        annotator e-mail, or ``"model:<version>"`` for a prediction
``control``      str        control name (``from_name``)
``type``         str        LS result type of the control (``choices``, ``labels``, ``rectanglelabels``,
                            ``rating``, ``textarea``, ...)
``result``       list       the LS result items of that annotation/prediction for that control; an
                            *empty list* means "annotated, nothing selected" and is scored (both empty
                            = 1, one empty = 0). Omit the row when the evaluator did not annotate the task.
``lead_time``    float      optional: seconds spent (per-annotator quality)
``created_at``   datetime   optional: when the annotation was made (drift)
================ ========== ==========================================================================

Duplicated (task, evaluator, control) rows are reduced to the last one.

``ground_truth``: the same columns without ``evaluator`` -- one reference result per (task, control) --
plus an optional ``source_evaluator`` column (str, or ``None``/``NaN``): the evaluator whose own result *is*
the reference (an accepted annotation, a ground-truth flag on the server, an accepted prediction). That
(task, evaluator) pair is never scored against the reference -- it is left out of the ``Ground truth``
column, of accuracy and drift (:mod:`app.metrics.quality`) and of :func:`pair_disagreements` against
``"Ground truth"`` -- while the evaluator's result keeps counting everywhere else (pairwise agreement with
the other evaluators, consensus, volume, time). ``None`` when the reference is nobody's own result (a fix).

``params``: ``{control_name: {attribute: value}}`` -- the control's attributes that matchers read, e.g.
``{"sentiment": {"choice": "multiple"}, "quality": {"maxRating": 5}, "bbox": {"average": "precision"}}``.
Number controls without ``min``/``max`` are normalised by the observed range of their values.

Output
------
:class:`AgreementMatrix` (frozen): ``evaluators`` (humans sorted, then ``model:*`` sorted, unless given),
``columns`` (``"Ground truth"`` then the evaluators in ``pairwise`` mode; ``"Ground truth"`` and
``"Consensus"`` in ``consensus`` mode), ``matrix`` (``len(evaluators) + 1`` rows: the evaluators then
``"Avg."``; values in [0, 1]; ``nan`` where there is no overlap and on the diagonal), ``counts``
(shared tasks per cell; the ``Avg.`` row holds column sums), ``control`` (``None`` = overall), ``mode``.

Cell ``(i, j)`` is the mean over the tasks shared by i and j of ``score(result_i, reference=result_j)``,
so the matrix may be asymmetric when the matcher is (``average="precision"`` for regions).
``Avg.`` is the unweighted mean of the column's cells (as in published agreement tables).
The overall matrix is the (optionally weighted) mean over controls of the per-control cells; its
counts are the distinct tasks shared.

Consensus: evaluator e's answer on a task is compared with the majority answer of the *other*
evaluators of the task (leave-one-out). Answers agree when their score is at or above ``threshold``
(binary for exact-match controls, so any threshold in (0, 1] gives the same result). The majority answer
is the other evaluators' answer agreed with by most of them; on a tie e gets the mean over the tied
answers (weighted by how many evaluators hold each). A task with a single evaluator has no consensus.

Speed: when a control has few distinct answers (single choices, ratings, pairwise, ...), results are
coded as integers and cells come from a pair-count tensor (bincount / BLAS, no loop per pair or task);
otherwise rows sharing a task are expanded into pairs with vectorised numpy and each distinct
(result, reference) pair is scored once -- identical results are deduplicated. Distinct pairs of a
control are scored together (:mod:`app.metrics._batch`): region controls (boxes, spans, polygons) compute
all their region IoUs in one vectorised pass, and scores of built-in matchers are memoised across calls
(``agreement_matrices``, ``annotator_quality``, ``task_agreement`` and ``pair_disagreements`` on the same
data reuse them; registering a matcher clears the memo).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from app.metrics._batch import PairScorer
from app.metrics._pairs import CONFUSION_CELL_LIMIT, distinct, ordered_pairs, pair_confusion, sort_by_task
from app.metrics.matching import _BUILTIN, _SCORE_MEMO, _answer_set, _number, get_matcher, result_digests

Mode = Literal["pairwise", "consensus"]

GROUND_TRUTH = "Ground truth"
CONSENSUS = "Consensus"
#: optional pairwise column: each evaluator scored against the Dawid-Skene consensus label of the task
CONSENSUS_DS = "Consensus (Dawid-Skene)"
AVG = "Avg."
MODEL_PREFIX = "model:"
#: optional ground-truth column: the evaluator whose own result is the reference (never scored against it)
SOURCE_EVALUATOR = "source_evaluator"
#: controls with at most this many distinct answers use the integer-code fast path
CATEGORICAL_MAX_CODES = 64

__all__ = [
    "AVG",
    "CONSENSUS",
    "CONSENSUS_DS",
    "GROUND_TRUTH",
    "SOURCE_EVALUATOR",
    "AgreementMatrix",
    "agreement_matrices",
    "agreement_matrix",
    "dawid_skene_consensus",
    "order_evaluators",
    "pair_disagreements",
    "shared_preparation",
    "DEFAULT_TOLERANCE",
    "default_tolerances",
    "task_agreement",
]


@dataclass(frozen=True, eq=False)
class AgreementMatrix:
    evaluators: tuple[str, ...]
    columns: tuple[str, ...]
    matrix: np.ndarray
    counts: np.ndarray
    control: str | None
    mode: str

    @property
    def rows(self) -> tuple[str, ...]:
        return (*self.evaluators, AVG)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.matrix, index=list(self.rows), columns=list(self.columns))

    def counts_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.counts, index=list(self.rows), columns=list(self.columns))

    def cell(self, row: str, column: str) -> float:
        return float(self.matrix[self.rows.index(row), self.columns.index(column)])


def order_evaluators(names: Sequence[str]) -> tuple[str, ...]:
    """Humans sorted, then model versions (``model:*``) sorted."""
    if isinstance(names, pd.Series) and names.dtype != object and not names.hasnans:
        distinct_names = names.unique()  # in the column's own dtype: no object copy of every row (issue 14)
    else:
        distinct_names = pd.Series(names, dtype=object).unique()
    uniq = sorted({str(n) for n in distinct_names})
    return tuple(
        [n for n in uniq if not n.startswith(MODEL_PREFIX)] + [n for n in uniq if n.startswith(MODEL_PREFIX)]
    )


# --------------------------------------------------------------------------------------------------
# per-control preparation


_EMPTY_KEY = ("<empty>",)  # hashable, not NA for pd.factorize
_CATEGORICAL_TYPES = {"choices", "pairwise", "taxonomy", "datetime"}
_NUMERIC_TYPES = {"rating", "number"}
# How far below a perfect score a numeric or region comparison may fall and still count as agreeing when
# drilling down into disagreements (``pair_disagreements(..., tolerance=...)``): a quarter of a rating's
# scale (one star of five), a box or span at three quarters of the matched overlap. Categorical answers
# have no near match.
DEFAULT_TOLERANCE: dict[str, float] = {
    "rating": 0.25, "number": 0.25, "labels": 0.25, "timeserieslabels": 0.25, "hypertextlabels": 0.25,
    "paragraphlabels": 0.25, "rectanglelabels": 0.25, "rectangle": 0.25, "polygonlabels": 0.25, "polygon": 0.25,
    "keypointlabels": 0.25, "keypoint": 0.25, "textarea": 0.1,
}


def default_tolerances(annotations: pd.DataFrame) -> dict[str, float]:
    """Control name -> its type's :data:`DEFAULT_TOLERANCE` (0 for categorical types) for a frame."""
    if annotations.empty:
        return {}
    pairs = annotations[["control", "type"]].drop_duplicates("control")
    return {str(c): DEFAULT_TOLERANCE.get(str(t).lower(), 0.0) for c, t in zip(pairs["control"], pairs["type"],
                                                                              strict=True)}


def _key_function(ctype: str) -> tuple[Callable[[list[Any]], list[Any]], bool]:
    """Dedupe keys of a list of results for this control type, and whether they are result digests."""
    builtin = get_matcher(ctype) is _BUILTIN.get(ctype)
    if builtin and ctype in _CATEGORICAL_TYPES:
        return (lambda rs: [_answer_set(r or []) for r in rs]), False
    if builtin and ctype in _NUMERIC_TYPES:
        return (lambda rs: [_EMPTY_KEY if (v := _number(r or [])) is None else v for r in rs]), False
    return result_digests, True


# the preparation memo of the innermost shared_preparation() context (None outside one)
_SHARED: contextvars.ContextVar[dict[Any, Any] | None] = contextvars.ContextVar("metrics_shared", default=None)


@contextlib.contextmanager
def shared_preparation() -> Iterator[None]:
    """Share the per-control preparation between the engine calls made inside the block.

    ``agreement_matrices``, ``annotator_quality``, ``control_alpha``, ``kappa_matrices``, ``alpha_report``,
    ``task_agreement``... each prepare every control of their frames (select its rows, code its results,
    score the distinct pairs). Within the block, a preparation is made once per (annotations frame, ground-
    truth frame, params, control, evaluators) -- frames identified by object identity -- and reused by the
    later calls: the several reports of one command (``metrics_report``, the dashboard) code the frames once.
    The frames and params must not be modified inside the block (the engine never modifies them); the memo
    holds them, so an identity cannot be reused while it lives, and it is dropped when the block ends.
    Registering a matcher inside the block starts new preparations (the key holds the registry generation).
    Blocks nest (the outermost one owns the memo); each thread has its own.
    """
    if _SHARED.get() is not None:
        yield
        return
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def _shared(key: tuple[Any, ...], keep: tuple[Any, ...], make: Callable[[], Any]) -> Any:
    """``make()``, memoised under ``key`` inside :func:`shared_preparation` (``keep``: the objects whose
    identities the key holds, kept alive with the entry)."""
    memo = _SHARED.get()
    if memo is None:
        return make()
    hit = memo.get(key)
    if hit is None:
        hit = memo[key] = (keep, make())
    return hit[1]


def _result_codes(results: list[Any], keyf: Callable[[list[Any]], list[Any]]) -> tuple[np.ndarray, Any]:
    """``pd.factorize(keyf(results))`` -- a code per row, the distinct keys in order of first appearance --
    with ``keyf`` evaluated once per distinct result *object* instead of once per row.

    Rows that hold the same list object hold the same result (frames from the store share one decoded list
    among the rows with equal stored items; ``app.services.frames``), so keying the first row of each object
    and spreading its key is the per-row keying, code for code and in the same order: the first row of each
    distinct key is the first row of one of its objects. Identity is only compared within this call, while
    every object is alive (held by ``results``), so no stale or reused id can be met.
    """
    n = len(results)
    if n == 0:
        return np.zeros(0, np.int64), pd.Index([], dtype=object)
    obj_codes, _ = pd.factorize(np.fromiter(map(id, results), dtype=np.uint64, count=n))
    _, first = np.unique(obj_codes, return_index=True)  # first row of each object, in object-code order
    key_codes, uniq = pd.factorize(pd.Series(keyf([results[i] for i in first.tolist()]), dtype=object))
    return key_codes[obj_codes], uniq


@dataclass
class _Control:
    name: str
    ctype: str
    params: dict[str, Any]
    task: np.ndarray  # global task code per row (sorted)
    ev: np.ndarray  # evaluator code per row
    code: np.ndarray  # result code per row
    frame_index: np.ndarray  # index labels of the rows in the annotations frame
    gt_code: np.ndarray  # per row: ground-truth result code or -1
    reps: list[Any]  # representative result per code
    n_codes: int
    rep_digests: list[bytes] | None = None  # result digest of each representative, when codes come from it
    S: np.ndarray | None = None  # K x K score matrix (categorical path)
    values: np.ndarray | None = None  # numeric values per code (numeric vector path)
    _memo: dict[int, float] = field(default_factory=dict)  # a * n_codes + b -> score
    _scorer: PairScorer | None = None

    def score(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Score of code a against reference code b, vectorised over arrays."""
        a = np.asarray(a, np.int64)
        b = np.asarray(b, np.int64)
        if self.S is not None:
            scores: np.ndarray = self.S[a, b]
            return scores
        if self.values is not None:
            va, vb = self.values[a], self.values[b]
            scale = self.params.get("scale") or 0.0
            na, nb = np.isnan(va), np.isnan(vb)
            with np.errstate(invalid="ignore"):
                s = np.clip(1.0 - np.abs(va - vb) / scale, 0.0, 1.0) if scale else (va == vb).astype(float)
            scored: np.ndarray = np.where(na | nb, (na & nb).astype(float), s)
            return scored
        if a.size == 0:
            return np.zeros(0)
        K = np.int64(self.n_codes)
        keys, inv = np.unique(a * K + b, return_inverse=True)
        return self.pair_scores(keys // K, keys % K)[inv.ravel()]

    def pair_scores(self, ka: np.ndarray, kb: np.ndarray) -> np.ndarray:
        """Matcher score of each distinct code pair ``(ka[n], kb[n])``, memoised per control."""
        K = int(self.n_codes)
        flat = (ka * K + kb).tolist()
        memo = self._memo
        vals = np.array([memo.get(k, np.nan) for k in flat], dtype=np.float64)
        todo = np.flatnonzero(np.isnan(vals))
        if todo.size:
            if self._scorer is None:
                self._scorer = PairScorer(self.ctype, self.params, self.reps, self.rep_digests)
            new = self._scorer(ka[todo], kb[todo])
            vals[todo] = new
            memo.update(zip([flat[i] for i in todo.tolist()], new.tolist(), strict=True))
        return vals


def _control_rows(
    annotations: pd.DataFrame,
    ground_truth: pd.DataFrame | None,
    control: str,
    ev_index: pd.Index,
) -> tuple[pd.DataFrame, pd.DataFrame | None, str]:
    """The control's annotation rows (last per task and evaluator), ground-truth rows and result type."""
    return _shared(("rows", id(annotations), id(ground_truth), control, id(ev_index)),  # type: ignore[no-any-return]
                   (annotations, ground_truth, ev_index),
                   lambda: _control_rows_of(annotations, ground_truth, control, ev_index))


def _control_rows_of(
    annotations: pd.DataFrame,
    ground_truth: pd.DataFrame | None,
    control: str,
    ev_index: pd.Index,
) -> tuple[pd.DataFrame, pd.DataFrame | None, str]:
    sub = annotations[annotations["control"] == control]
    sub = sub[sub["evaluator"].isin(ev_index)]
    sub = sub.drop_duplicates(["task", "evaluator"], keep="last")
    types = sub["type"] if len(sub) else pd.Series(dtype=object)
    gt = None
    if ground_truth is not None and len(ground_truth):
        gt = ground_truth[ground_truth["control"] == control].drop_duplicates("task", keep="last")
        if not len(types):
            types = gt["type"]
    ctype = str(types.mode().iloc[0]).lower() if len(types) else "choices"
    return sub, gt, ctype


def _prepare(
    annotations: pd.DataFrame,
    ground_truth: pd.DataFrame | None,
    params: Mapping[str, Mapping[str, Any]] | None,
    control: str,
    ev_index: pd.Index,
    task_index: pd.Index,
) -> _Control:
    return _shared(  # type: ignore[no-any-return]
        ("prepare", id(annotations), id(ground_truth), id(params), control, id(ev_index), id(task_index),
         _SCORE_MEMO.generation),
        (annotations, ground_truth, params, ev_index, task_index),
        lambda: _prepare_control(annotations, ground_truth, params, control, ev_index, task_index))


def _prepare_control(
    annotations: pd.DataFrame,
    ground_truth: pd.DataFrame | None,
    params: Mapping[str, Mapping[str, Any]] | None,
    control: str,
    ev_index: pd.Index,
    task_index: pd.Index,
) -> _Control:
    sub, gt, ctype = _control_rows(annotations, ground_truth, control, ev_index)
    p = dict((params or {}).get(control, {}) or {})

    keyf, by_digest = _key_function(ctype)
    results = list(sub["result"])
    gt_results = list(gt["result"]) if gt is not None else []
    all_results = results + gt_results
    codes, uniq = _result_codes(all_results, keyf)
    _, first = np.unique(codes, return_index=True)
    reps = [all_results[i] or [] for i in first]
    K = len(uniq)

    task_codes = task_index.get_indexer(sub["task"])
    ev_codes = _positions(ev_index, sub["evaluator"])
    ann_codes = codes[: len(results)]
    gt_by_task = np.full(len(task_index), -1, np.int64)
    src_by_task = np.full(len(task_index), -1, np.int64)  # evaluator whose own result is the reference
    if gt is not None and len(gt):
        gt_tasks = task_index.get_indexer(gt["task"])
        ok = gt_tasks >= 0
        gt_by_task[gt_tasks[ok]] = codes[len(results) :][ok]
        src = _source_codes(gt, ev_index)
        src_by_task[gt_tasks[ok]] = src[ok]
    order = np.argsort(task_codes, kind="stable")
    task_codes, ev_codes, ann_codes = task_codes[order], ev_codes[order], ann_codes[order]
    frame_index = sub.index.to_numpy()[order]
    gt_code = gt_by_task[task_codes] if len(task_codes) else np.zeros(0, np.int64)
    if len(task_codes):
        gt_code = np.where(src_by_task[task_codes] == ev_codes, -1, gt_code)  # no self-scoring

    if ctype == "number" and get_matcher(ctype) is _BUILTIN["number"] and not p.get("scale"):
        from app.metrics.matching import numeric_scale

        scale = numeric_scale("number", p)
        if scale is None:
            vals = np.array([np.nan if k == _EMPTY_KEY else float(k) for k in uniq], dtype=float)
            if np.isfinite(vals).sum() >= 2:
                rng = float(np.nanmax(vals) - np.nanmin(vals))
                scale = rng if rng > 0 else None
        if scale:
            p["scale"] = scale

    ctl = _Control(
        name=control,
        ctype=ctype,
        params=p,
        task=task_codes,
        ev=ev_codes,
        code=ann_codes.astype(np.int64),
        frame_index=frame_index,
        gt_code=gt_code,
        reps=reps,
        n_codes=K,
        rep_digests=list(uniq) if by_digest else None,
    )
    if 0 < K <= CATEGORICAL_MAX_CODES:
        ii, jj = np.divmod(np.arange(K * K, dtype=np.int64), K)
        ctl.S = ctl.pair_scores(ii, jj).reshape(K, K)
    elif ctype in _NUMERIC_TYPES and get_matcher(ctype) is _BUILTIN[ctype]:
        ctl.values = np.array([np.nan if k == _EMPTY_KEY else float(k) for k in uniq], dtype=float)
        if ctype == "rating" and not p.get("scale"):
            from app.metrics.matching import numeric_scale

            p["scale"] = numeric_scale("rating", p)
    return ctl


def _positions(index: pd.Index, values: pd.Series) -> np.ndarray:
    """``index.get_indexer(values)`` (-1 where absent) for a column of few distinct names: the column is
    factorized in its own dtype and only its distinct names are looked up (no object copy of every row)."""
    codes, uniq = pd.factorize(values)
    if len(uniq) == 0:
        return np.full(len(values), -1, dtype=np.intp)
    pos = np.append(index.get_indexer(uniq), -1)  # code -1 (a missing name) picks the appended -1
    return np.asarray(pos[codes], dtype=np.intp)


def _source_codes(ground_truth: pd.DataFrame, ev_index: pd.Index) -> np.ndarray:
    """Per ground-truth row: the code of the evaluator whose own result is the reference, or -1."""
    if SOURCE_EVALUATOR not in ground_truth.columns:
        return np.full(len(ground_truth), -1, np.int64)
    names = ground_truth[SOURCE_EVALUATOR].astype(object).where(ground_truth[SOURCE_EVALUATOR].notna(), None)
    return np.asarray(ev_index.get_indexer(names.to_numpy()), dtype=np.int64)


# --------------------------------------------------------------------------------------------------
# pair statistics


def _pair_sums(ctl: _Control, E: int) -> tuple[np.ndarray, np.ndarray]:
    """Score sums and shared-task counts for every ordered evaluator pair (row scored vs column)."""
    K = ctl.n_codes
    if ctl.S is not None and (E * K) ** 2 <= CONFUSION_CELL_LIMIT:
        C = pair_confusion(ctl.task, ctl.ev, ctl.code, E, K)
        return np.einsum("ijkl,kl->ij", C, ctl.S), C.sum(axis=(2, 3)).astype(np.int64)
    a, b = ordered_pairs(ctl.task)
    cell = ctl.ev[a].astype(np.int64) * E + ctl.ev[b]
    s = ctl.score(ctl.code[a], ctl.code[b])
    sums = np.bincount(cell, weights=s, minlength=E * E).reshape(E, E)
    counts = np.bincount(cell, minlength=E * E).reshape(E, E)
    return sums, counts


def _gt_scores(ctl: _Control) -> np.ndarray:
    """Per row: score against the ground truth (nan where the task has none)."""
    out = np.full(ctl.code.size, np.nan)
    has = ctl.gt_code >= 0
    if has.any():
        out[has] = ctl.score(ctl.code[has], ctl.gt_code[has])
    return out


def _consensus_scores(ctl: _Control, threshold: float) -> np.ndarray:
    """Per row: agreement with the leave-one-out majority answer of the task's other evaluators."""
    n_rows = ctl.code.size
    out = np.full(n_rows, np.nan)
    if n_rows == 0:
        return out
    if ctl.S is not None:
        K = ctl.n_codes
        B = (threshold <= ctl.S).astype(np.float64)
        task_ids, inv = np.unique(ctl.task, return_inverse=True)
        T = task_ids.size
        chunk = max(1, (1 << 22) // max(K, 1))
        starts = np.searchsorted(inv, np.arange(0, T, chunk))
        ends = np.r_[starts[1:], n_rows]
        for lo_row, hi_row in zip(starts, ends, strict=True):
            t_loc = inv[lo_row:hi_row] - inv[lo_row]
            c = ctl.code[lo_row:hi_row]
            n_t = int(t_loc[-1]) + 1
            M = np.bincount(t_loc * K + c, minlength=n_t * K).reshape(n_t, K).astype(np.float64)
            m = M[t_loc]
            m[np.arange(c.size), c] -= 1.0
            sup = m @ B
            cand = m > 0
            sup = np.where(cand, sup, -np.inf)
            mx = sup.max(axis=1, keepdims=True)
            tied = cand & (sup == mx)
            w = np.where(tied, m, 0.0)
            den = w.sum(axis=1)
            num = (w * B[c]).sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[lo_row:hi_row] = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
        return out
    a, b = ordered_pairs(ctl.task)
    if a.size == 0:
        return out
    agree = (ctl.score(ctl.code[a], ctl.code[b]) >= threshold).astype(np.float64)
    self_ok = (ctl.score(ctl.code, ctl.code) >= threshold).astype(np.float64)
    support = self_ok + np.bincount(b, weights=agree, minlength=n_rows)
    sup_minus = support[b] - agree  # support of answer b among the task's evaluators other than a
    mx = pd.Series(sup_minus).groupby(a).transform("max").to_numpy()
    tied = sup_minus == mx
    num = np.bincount(a, weights=tied * agree, minlength=n_rows)
    den = np.bincount(a, weights=tied.astype(np.float64), minlength=n_rows)
    has = den > 0
    out[has] = num[has] / den[has]
    return out


def _task_pairwise(ctl: _Control) -> tuple[np.ndarray, np.ndarray]:
    """Per global task code: summed pair scores and number of ordered pairs."""
    if ctl.code.size == 0:
        return np.zeros(0), np.zeros(0)
    T = int(ctl.task.max()) + 1
    if ctl.S is not None:
        K = ctl.n_codes
        sums = np.zeros(T)
        task_ids, inv = np.unique(ctl.task, return_inverse=True)
        chunk = max(1, (1 << 22) // max(K, 1))
        starts = np.searchsorted(inv, np.arange(0, task_ids.size, chunk))
        ends = np.r_[starts[1:], inv.size]
        for r0, r1 in zip(starts, ends, strict=True):
            t_loc = inv[r0:r1] - inv[r0]
            span = int(t_loc[-1]) + 1
            M = np.bincount(t_loc * K + ctl.code[r0:r1], minlength=span * K).reshape(span, K).astype(float)
            part = ((M @ ctl.S) * M).sum(axis=1) - M @ np.diag(ctl.S)
            sums[task_ids[inv[r0] : inv[r0] + span]] = part
        n = np.bincount(ctl.task, minlength=T).astype(float)
        return sums, n * (n - 1)
    a, b = ordered_pairs(ctl.task)
    s = ctl.score(ctl.code[a], ctl.code[b])
    return np.bincount(ctl.task[a], weights=s, minlength=T), np.bincount(ctl.task[a], minlength=T).astype(
        float
    )


# --------------------------------------------------------------------------------------------------
# public API


def _setup(
    annotations: pd.DataFrame,
    ground_truth: pd.DataFrame | None,
    evaluators: Sequence[str] | None,
) -> tuple[pd.Index, pd.Index, list[str]]:
    ev_index, task_index, controls = _shared(
        ("setup", id(annotations), id(ground_truth), None if evaluators is None else tuple(evaluators)),
        (annotations, ground_truth), lambda: _setup_of(annotations, ground_truth, evaluators))
    return ev_index, task_index, list(controls)


def _setup_of(
    annotations: pd.DataFrame,
    ground_truth: pd.DataFrame | None,
    evaluators: Sequence[str] | None,
) -> tuple[pd.Index, pd.Index, list[str]]:
    missing = {"task", "evaluator", "control", "type", "result"} - set(annotations.columns)
    if missing:
        raise ValueError(f"annotations frame lacks columns {sorted(missing)}")
    ev_index = pd.Index(
        list(evaluators) if evaluators is not None else order_evaluators(annotations["evaluator"])
    )
    tasks = annotations["task"]
    if ground_truth is not None and len(ground_truth):
        tasks = pd.concat([tasks, ground_truth["task"]])
    task_index = pd.Index(pd.unique(tasks)).sort_values()
    controls = list(pd.unique(annotations["control"]))
    if ground_truth is not None and len(ground_truth):
        controls += [c for c in pd.unique(ground_truth["control"]) if c not in controls]
    return ev_index, task_index, sorted(map(str, controls))


def _assemble(
    sums: np.ndarray,
    counts: np.ndarray,
    gt_sums: np.ndarray,
    gt_counts: np.ndarray,
    extra: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Matrix and counts: ``Ground truth``, then the ``extra`` reference column when given (the
    Dawid-Skene consensus), then the body; plus the ``Avg.`` row."""
    E = sums.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        body = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        gt = np.where(gt_counts > 0, gt_sums / np.maximum(gt_counts, 1), np.nan)
    if body.shape[1] == E:
        np.fill_diagonal(body, np.nan)
    cols, cnts = [gt], [gt_counts]
    if extra is not None:
        x_sums, x_counts = extra
        with np.errstate(invalid="ignore", divide="ignore"):
            cols.append(np.where(x_counts > 0, x_sums / np.maximum(x_counts, 1), np.nan))
        cnts.append(x_counts)
    mat = np.column_stack([*cols, body])
    cnt = np.column_stack([*cnts, counts]).astype(np.int64)
    return _with_avg(mat, cnt)


def _reference_sums(ctl: _Control, E: int) -> tuple[np.ndarray, np.ndarray]:
    """Per evaluator: summed scores against the control's reference (``gt_code``) and their count."""
    g = _gt_scores(ctl)
    has = ~np.isnan(g)
    return np.bincount(ctl.ev[has], weights=g[has], minlength=E), np.bincount(ctl.ev[has], minlength=E)


def _with_avg(mat: np.ndarray, cnt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore"):
        valid = ~np.isnan(mat)
        n = valid.sum(axis=0)
        avg = np.where(n > 0, np.where(valid, mat, 0.0).sum(axis=0) / np.maximum(n, 1), np.nan)
    return np.vstack([mat, avg]), np.vstack([cnt, cnt.sum(axis=0)])


def _control_matrix(
    ctl: _Control, E: int, mode: Mode, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    gt = _gt_scores(ctl)
    has = ~np.isnan(gt)
    gt_sums = np.bincount(ctl.ev[has], weights=gt[has], minlength=E)
    gt_counts = np.bincount(ctl.ev[has], minlength=E)
    if mode == "pairwise":
        sums, counts = _pair_sums(ctl, E)
    elif mode == "consensus":
        cs = _consensus_scores(ctl, threshold)
        ok = ~np.isnan(cs)
        sums = np.bincount(ctl.ev[ok], weights=cs[ok], minlength=E)[:, None]
        counts = np.bincount(ctl.ev[ok], minlength=E)[:, None]
    else:
        raise ValueError(f"mode must be 'pairwise' or 'consensus', not {mode!r}")
    return sums, counts, gt_sums, gt_counts


def _resolve_consensus(
    annotations: pd.DataFrame,
    params: Mapping[str, Mapping[str, Any]] | None,
    evs: Sequence[str],
    mode: str,
    consensus_reference: pd.DataFrame | str | None,
    controls: Sequence[str] | None = None,
) -> pd.DataFrame | None:
    """The consensus reference frame to add as a column, or ``None`` (no column)."""
    if consensus_reference is None:
        return None
    if isinstance(consensus_reference, str):
        if consensus_reference != "auto":
            raise ValueError(f"consensus_reference must be a frame, 'auto' or None, not {consensus_reference!r}")
        if mode != "pairwise":
            return None
        humans = [e for e in evs if not e.startswith(MODEL_PREFIX)]
        if not humans:
            return None
        ref = dawid_skene_consensus(annotations, params, evaluators=humans, controls=controls)
        return None if ref.empty else ref
    if mode != "pairwise":
        raise ValueError("consensus_reference is a pairwise-mode column")
    return consensus_reference


def agreement_matrices(
    annotations: pd.DataFrame,
    ground_truth: pd.DataFrame | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    mode: Mode = "pairwise",
    threshold: float = 0.5,
    weights: Mapping[str, float] | None = None,
    evaluators: Sequence[str] | None = None,
    consensus_reference: pd.DataFrame | Literal["auto"] | None = "auto",
) -> dict[str | None, AgreementMatrix]:
    """One :class:`AgreementMatrix` per control, plus the overall one under the key ``None``.

    ``consensus_reference`` (pairwise mode): a second reference frame with the ground-truth contract
    (``task, control, type, result``), e.g. :func:`dawid_skene_consensus`. It adds the column
    ``"Consensus (Dawid-Skene)"`` right after ``"Ground truth"``, computed exactly like it (each evaluator's
    result scored with the consensus result as reference; nobody is excluded, so an evaluator's own vote is
    part of the consensus it is scored against). Controls without consensus rows have ``nan`` there.
    ``"auto"`` (default): :func:`dawid_skene_consensus` of the human evaluators (not ``model:*``), the column
    only when some categorical control has a consensus; ``None``: no column (the pre-issue-12 shape).
    """
    ev_index, task_index, controls = _setup(annotations, ground_truth, evaluators)
    E = len(ev_index)
    evs = tuple(map(str, ev_index))
    auto = isinstance(consensus_reference, str) and consensus_reference == "auto" and mode == "pairwise"
    if not auto:
        consensus_reference = _resolve_consensus(annotations, params, evs, mode, consensus_reference)
    ds_controls = set(map(str, consensus_reference["control"])) if isinstance(consensus_reference, pd.DataFrame) else set()
    human = np.array([not e.startswith(MODEL_PREFIX) for e in evs], dtype=bool)
    parts = []
    auto_pairs: list[pd.DataFrame] = []
    ds_tasks: dict[str, np.ndarray] = {}  # auto consensus: the task codes each control has a consensus on
    for c in controls:
        ctl = _prepare(annotations, ground_truth, params, c, ev_index, task_index)
        extra: tuple[np.ndarray, np.ndarray] | None = None
        if auto:  # Dawid-Skene of the human evaluators on the codes already built (same as the explicit frame)
            if ctl.code.size and _consensus_eligible(ctl.ctype, ctl.params) and human.any():
                t_codes, codes, _, _ = _ds_fit(ctl, human[ctl.ev], 2, 100, 1e-5)
                if t_codes.size:
                    by_task = np.full(len(task_index), -1, np.int64)
                    by_task[t_codes] = codes
                    ref = by_task[ctl.task]
                    has = ref >= 0
                    s_ = ctl.score(ctl.code[has], ref[has])
                    extra = (np.bincount(ctl.ev[has], weights=s_, minlength=E), np.bincount(ctl.ev[has], minlength=E))
                    auto_pairs.append(pd.DataFrame({"task": task_index.to_numpy()[t_codes], "control": c}))
                    ds_tasks[c] = t_codes
        elif c in ds_controls:
            extra = _reference_sums(_prepare(annotations, consensus_reference, params, c, ev_index, task_index), E)
        parts.append((c, ctl, extra))
    if auto:
        consensus_reference = pd.concat(auto_pairs, ignore_index=True) if auto_pairs else None
    with_ds = isinstance(consensus_reference, pd.DataFrame)
    refs = (GROUND_TRUTH, CONSENSUS_DS) if with_ds else (GROUND_TRUTH,)
    columns = (*refs, *evs) if mode == "pairwise" else (GROUND_TRUTH, CONSENSUS)
    out: dict[str | None, AgreementMatrix] = {}
    for c, ctl, extra in parts:
        sums, counts, gt_sums, gt_counts = _control_matrix(ctl, E, mode, threshold)
        if with_ds and extra is None:
            extra = (np.zeros(E), np.zeros(E, np.int64))
        mat, cnt = _assemble(sums, counts, gt_sums, gt_counts, extra if with_ds else None)
        out[c] = AgreementMatrix(evs, columns, mat, cnt, c, mode)
    out[None] = _overall(out, annotations, ground_truth, ev_index, task_index, columns, mode, weights,
                         consensus_reference if isinstance(consensus_reference, pd.DataFrame) else None,
                         prepared=[ctl for _, ctl, _ in parts], ds_tasks=ds_tasks if auto else None)
    return out


def _overall(
    per_control: Mapping[str | None, AgreementMatrix],
    annotations: pd.DataFrame,
    ground_truth: pd.DataFrame | None,
    ev_index: pd.Index,
    task_index: pd.Index,
    columns: tuple[str, ...],
    mode: str,
    weights: Mapping[str, float] | None,
    consensus_reference: pd.DataFrame | None = None,
    *,
    prepared: Sequence[_Control] | None = None,
    ds_tasks: Mapping[str, np.ndarray] | None = None,
) -> AgreementMatrix:
    """The mean over controls; its counts are distinct tasks shared in any control. ``prepared``: every
    control's preparation (their rows are the annotations' rows of ``ev_index``, one per task and evaluator),
    so the (task, evaluator) pairs come from their codes instead of the frame; ``ds_tasks``: the task codes
    of each control's automatic consensus (the reference's rows, likewise)."""
    E = len(ev_index)
    evs = tuple(map(str, ev_index))
    shape = (E, len(columns))
    num = np.zeros(shape)
    den = np.zeros(shape)
    for c, m in per_control.items():
        if c is None:
            continue
        w = float((weights or {}).get(c, 1.0))
        body = m.matrix[:E]
        ok = ~np.isnan(body)
        num += np.where(ok, body, 0.0) * w
        den += ok * w
    with np.errstate(invalid="ignore", divide="ignore"):
        mat = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
    # counts: distinct tasks shared (any control)
    if prepared is not None:
        keys = distinct(np.concatenate([c.task.astype(np.int64) * E + c.ev for c in prepared] or
                                        [np.zeros(0, np.int64)]))
        t, e = np.divmod(keys, max(E, 1))
    else:
        pres = annotations[annotations["evaluator"].isin(ev_index)].drop_duplicates(["task", "evaluator"])
        t = task_index.get_indexer(pres["task"])
        e = _positions(ev_index, pres["evaluator"])
    gt_tasks = np.zeros(len(task_index), bool)
    scored = np.ones(len(t), bool)
    if ground_truth is not None and len(ground_truth):
        gt_t = task_index.get_indexer(ground_truth["task"])
        gt_tasks[gt_t] = True
        src = _source_codes(ground_truth, ev_index)
        own = (gt_t >= 0) & (src >= 0)
        if own.any():  # a pair whose result is the reference shares no scored task with it
            own_keys = distinct(gt_t[own].astype(np.int64) * E + src[own])
            scored = ~np.isin(t.astype(np.int64) * E + e, own_keys)
    gt_cnt = np.bincount(e, weights=gt_tasks[t] & scored, minlength=E).astype(np.int64)
    if mode == "pairwise":
        if E * E <= CONFUSION_CELL_LIMIT:
            shared = pair_confusion(t, e, np.zeros_like(e), E, 1)[:, :, 0, 0]
        else:
            ts, es = sort_by_task(t, e)
            a, b = ordered_pairs(ts)
            shared = np.bincount(es[a].astype(np.int64) * E + es[b], minlength=E * E).reshape(E, E)
        ref_cnt = [gt_cnt]
        if consensus_reference is not None and prepared is not None and ds_tasks is not None:
            # distinct tasks where the evaluator meets a consensus result, from the controls' rows
            met = []
            for ctl in prepared:
                on = ds_tasks.get(ctl.name)
                if on is not None and len(on):
                    keep = np.isin(ctl.task, on)
                    met.append(ctl.task[keep].astype(np.int64) * E + ctl.ev[keep])
            hit_keys = distinct(np.concatenate(met)) if met else np.zeros(0, np.int64)
            ref_cnt.append(np.bincount(hit_keys % max(E, 1), minlength=E).astype(np.int64))
        elif consensus_reference is not None:  # distinct tasks where the evaluator meets a consensus result
            hit = annotations.loc[annotations["evaluator"].isin(ev_index), ["task", "evaluator", "control"]].merge(
                consensus_reference[["task", "control"]].drop_duplicates(), on=["task", "control"]
            ).drop_duplicates(["task", "evaluator"])
            ref_cnt.append(np.bincount(_positions(ev_index, hit["evaluator"]), minlength=E).astype(np.int64))
        cnt = np.column_stack([*ref_cnt, shared])
    else:
        n_t = np.bincount(t, minlength=len(task_index))
        cnt = np.column_stack([gt_cnt, np.bincount(e, weights=n_t[t] > 1, minlength=E).astype(np.int64)])
    if mode == "pairwise":
        body = mat[:, 2 if consensus_reference is not None else 1 :]
        np.fill_diagonal(body, np.nan)
    m2, c2 = _with_avg(mat, cnt.astype(np.int64))
    return AgreementMatrix(evs, columns, m2, c2, None, mode)


def agreement_matrix(
    annotations: pd.DataFrame,
    ground_truth: pd.DataFrame | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    control: str | None = None,
    mode: Mode = "pairwise",
    threshold: float = 0.5,
    weights: Mapping[str, float] | None = None,
    evaluators: Sequence[str] | None = None,
    consensus_reference: pd.DataFrame | Literal["auto"] | None = "auto",
) -> AgreementMatrix:
    """Agreement matrix for one control, or overall (mean over controls, optional ``weights``) when
    ``control`` is None. See the module docstring for the input contract and the output."""
    if control is None:
        return agreement_matrices(
            annotations,
            ground_truth,
            params,
            mode=mode,
            threshold=threshold,
            weights=weights,
            evaluators=evaluators,
            consensus_reference=consensus_reference,
        )[None]
    ev_index, task_index, _ = _setup(annotations, ground_truth, evaluators)
    E = len(ev_index)
    evs = tuple(map(str, ev_index))
    ref = _resolve_consensus(annotations, params, evs, mode, consensus_reference)  # all controls: same shape
    refs = (GROUND_TRUTH, CONSENSUS_DS) if ref is not None else (GROUND_TRUTH,)
    columns = (*refs, *evs) if mode == "pairwise" else (GROUND_TRUTH, CONSENSUS)
    ctl = _prepare(annotations, ground_truth, params, control, ev_index, task_index)
    extra = None
    if ref is not None:
        if control in set(map(str, ref["control"])):
            extra = _reference_sums(_prepare(annotations, ref, params, control, ev_index, task_index), E)
        else:
            extra = (np.zeros(E), np.zeros(E, np.int64))
    mat, cnt = _assemble(*_control_matrix(ctl, E, mode, threshold), extra)
    return AgreementMatrix(evs, columns, mat, cnt, control, mode)


_DS_TYPES = {"choices", "pairwise", "taxonomy", "rating"}


def _consensus_eligible(ctype: str, params: Mapping[str, Any]) -> bool:
    """Controls with a categorical answer Dawid-Skene can estimate: single choices, pairwise, taxonomy,
    ratings (each distinct answer is a class); not multiple choices, numbers, regions or text."""
    if ctype not in _DS_TYPES or get_matcher(ctype) is not _BUILTIN.get(ctype):
        return False
    return not (ctype == "choices" and str(params.get("choice", "")).lower() == "multiple")


def _answer_label(ctype: str, result: list[Any]) -> str:
    if ctype == "rating":
        v = _number(result)
        return "" if v is None else (str(int(v)) if float(v).is_integer() else str(v))
    return ", ".join(sorted(map(str, _answer_set(result))))


def _ds_fit(
    ctl: _Control, rows: np.ndarray, min_answers: int, n_iter: int, tol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Dawid-Skene on the control's rows selected by the boolean mask ``rows``: per task with a consensus,
    its global task code, the consensus answer code, the posterior of that answer and the number of answers.
    Classes are ranked by canonical result key and answers sorted by (task, evaluator): row order and the
    numbering of codes do not change the fit."""
    from app.metrics.dawid_skene import dawid_skene
    from app.metrics.matching import result_key

    none = np.zeros(0, np.int64)
    task, ev, code = ctl.task[rows], ctl.ev[rows], ctl.code[rows]
    if task.size == 0:
        return none, none, np.zeros(0), none
    n_ans = np.bincount(task)
    keep = n_ans[task] >= min_answers
    if not keep.any():
        return none, none, np.zeros(0), none
    canon = np.argsort(np.argsort([result_key(r) for r in ctl.reps], kind="stable"), kind="stable")
    frame = pd.DataFrame({"task": task[keep], "worker": ev[keep], "label": canon[code[keep]]})
    res = dawid_skene(frame.sort_values(["task", "worker"], kind="stable"), n_iter=n_iter, tol=tol)
    by_canon = np.empty(len(ctl.reps), np.int64)
    by_canon[canon] = np.arange(len(ctl.reps))
    t_codes = res.labels.index.to_numpy(dtype=np.int64)
    return (t_codes, by_canon[res.labels.to_numpy(dtype=np.int64)], res.posteriors.to_numpy().max(axis=1),
            n_ans[t_codes].astype(np.int64))


def dawid_skene_consensus(
    annotations: pd.DataFrame,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    evaluators: Sequence[str] | None = None,
    controls: Sequence[str] | None = None,
    min_answers: int = 2,
    n_iter: int = 100,
    tol: float = 1e-5,
) -> pd.DataFrame:
    """Dawid-Skene consensus per (task, control) for the categorical controls (see ``_consensus_eligible``).

    Dawid-Skene (:func:`app.metrics.dawid_skene.dawid_skene`, published defaults, no gold) is fitted per
    control on every answer of ``evaluators`` (default: all; an empty result is the answer "nothing
    selected"). A task gets a consensus only with at least ``min_answers`` answers. Returns one row per
    (task, control): ``task``, ``control``, ``type``, ``result`` (the LS result items of the consensus
    answer: the frame is a valid reference for :func:`agreement_matrices` and :func:`pair_disagreements`),
    ``label`` (readable answer), ``confidence`` (posterior probability of that answer) and ``n_answers``.
    Classes are ordered by their canonical key, so the result does not depend on row order.
    """
    cols = ["task", "control", "type", "result", "label", "confidence", "n_answers"]
    ev_index, task_index, all_controls = _setup(annotations, None, evaluators)
    parts: list[pd.DataFrame] = []
    for c in controls if controls is not None else all_controls:
        sub, _, ctype = _control_rows(annotations, None, c, ev_index)
        p = dict((params or {}).get(c, {}) or {})
        if sub.empty or not _consensus_eligible(ctype, p):
            continue
        ctl = _prepare(annotations, None, params, c, ev_index, task_index)
        t_codes, codes, conf, n = _ds_fit(ctl, np.ones(ctl.task.size, bool), min_answers, n_iter, tol)
        if t_codes.size == 0:
            continue
        results = [ctl.reps[k] for k in codes]
        parts.append(pd.DataFrame({
            "task": task_index.to_numpy()[t_codes],
            "control": c,
            "type": ctype,
            "result": results,
            "label": [_answer_label(ctype, r) for r in results],
            "confidence": conf,
            "n_answers": n,
        }))
    if not parts:
        return pd.DataFrame({k: pd.Series(dtype=object if k in ("result", "label", "control", "type") else float)
                             for k in cols})
    return pd.concat(parts, ignore_index=True)[cols]


def task_agreement(
    annotations: pd.DataFrame,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    mode: Mode = "pairwise",
    control: str | None = None,
    threshold: float = 0.5,
    weights: Mapping[str, float] | None = None,
    evaluators: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Agreement score per task, for queue ordering (low first = most contentious).

    Returns a DataFrame indexed by task with one column per control, ``agreement`` (weighted mean over
    the task's controls) and ``n_evaluators``. ``pairwise``: mean over ordered pairs of evaluators of
    ``score(a, reference=b)``; ``consensus``: share of the task's evaluators agreeing with the
    leave-one-out majority answer. Tasks with fewer than two evaluators have ``nan``.
    """
    ev_index, task_index, controls = _setup(annotations, None, evaluators)
    if control is not None:
        controls = [control]
    T = len(task_index)
    cols: dict[str, np.ndarray] = {}
    for c in controls:
        ctl = _prepare(annotations, None, params, c, ev_index, task_index)
        if mode == "pairwise":
            s, n = _task_pairwise(ctl)
            s = np.r_[s, np.zeros(T - s.size)]
            n = np.r_[n, np.zeros(T - n.size)]
        elif mode == "consensus":
            cs = _consensus_scores(ctl, threshold)
            ok = ~np.isnan(cs)
            s = np.bincount(ctl.task[ok], weights=cs[ok], minlength=T)
            n = np.bincount(ctl.task[ok], minlength=T).astype(float)
        else:
            raise ValueError(f"mode must be 'pairwise' or 'consensus', not {mode!r}")
        with np.errstate(invalid="ignore", divide="ignore"):
            cols[c] = np.where(n > 0, s / np.where(n > 0, n, 1), np.nan)
    df = pd.DataFrame(cols, index=pd.Index(task_index, name="task"))
    w = np.array([float((weights or {}).get(c, 1.0)) for c in controls])
    vals = df[controls].to_numpy() if controls else np.zeros((T, 0))
    ok = ~np.isnan(vals)
    with np.errstate(invalid="ignore", divide="ignore"):
        den = (ok * w).sum(axis=1)
        df["agreement"] = np.where(
            den > 0, (np.where(ok, vals, 0.0) * w).sum(axis=1) / np.where(den > 0, den, 1), np.nan
        )
    sub = annotations[annotations["evaluator"].isin(ev_index)]
    n_ev = sub.drop_duplicates(["task", "evaluator"]).groupby("task").size()
    df["n_evaluators"] = n_ev.reindex(df.index).fillna(0).astype(int).to_numpy()
    return df


def pair_disagreements(
    annotations: pd.DataFrame,
    a: str,
    b: str,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    ground_truth: pd.DataFrame | None = None,
    control: str | None = None,
    weights: Mapping[str, float] | None = None,
    tolerance: float | Mapping[str, float] = 0.0,
) -> pd.DataFrame:
    """Tasks where evaluator ``a`` disagrees with ``b`` (``b`` may be ``"Ground truth"``), most first.

    Returns columns ``task``, ``score`` (a scored with b as reference, weighted mean over the shared
    controls), ``disagreement`` (= 1 - score) and ``controls`` (tuple of the controls where the score is
    below ``1 - tolerance``), sorted by decreasing disagreement then task. A task is listed when at least one
    control scores below ``1 - tolerance``: with the default 0 any difference counts; a tolerance (one
    number, or one per control name, in [0, 1)) lets near matches of numeric and region scores pass — a
    box at IoU 0.93 or a rating one step away is then no disagreement. See :data:`DEFAULT_TOLERANCE`.
    """
    sel = annotations if control is None else annotations[annotations["control"] == control]
    left = sel[sel["evaluator"] == a].drop_duplicates(["task", "control"], keep="last")
    if b == GROUND_TRUTH:
        if ground_truth is None:
            raise ValueError("ground_truth is required to compare with 'Ground truth'")
        ref = ground_truth if control is None else ground_truth[ground_truth["control"] == control]
        right = ref.drop_duplicates(["task", "control"], keep="last")
        if SOURCE_EVALUATOR in right.columns:  # a's own result as the reference is no comparison
            right = right[right[SOURCE_EVALUATOR].astype(object) != a]
    else:
        right = sel[sel["evaluator"] == b].drop_duplicates(["task", "control"], keep="last")
    m = left[["task", "control", "type", "result"]].merge(
        right[["task", "control", "result"]], on=["task", "control"], suffixes=("_a", "_b")
    )
    cols = ["task", "score", "disagreement", "controls"]
    if m.empty:
        return pd.DataFrame(columns=cols)
    scores = np.empty(len(m))
    groups: dict[tuple[Any, str], list[int]] = {}
    for n, key in enumerate(zip(m["control"], [str(t).lower() for t in m["type"]], strict=True)):
        groups.setdefault(key, []).append(n)
    res_a, res_b = m["result_a"].to_numpy(), m["result_b"].to_numpy()
    for (ctl, typ), idx in groups.items():
        rows = np.asarray(idx, dtype=np.int64)
        ra = [r or [] for r in res_a[rows]]
        rb = [r or [] for r in res_b[rows]]
        codes, uniq = pd.factorize(pd.Series(result_digests(ra + rb), dtype=object))
        _, first = np.unique(codes, return_index=True)
        both = ra + rb
        reps = [both[i] for i in first]
        pairs, inv = np.unique(codes[: len(ra)] * np.int64(len(uniq)) + codes[len(ra) :], return_inverse=True)
        ka, kb = np.divmod(pairs, len(uniq))
        p = dict((params or {}).get(ctl, {}) or {})
        scores[rows] = PairScorer(typ, p, reps, list(uniq))(ka, kb)[inv.ravel()]
    m["score"] = scores
    m["w"] = [float((weights or {}).get(c, 1.0)) for c in m["control"]]
    m["ws"] = m["w"] * m["score"]
    g = m.groupby("task", sort=True)
    out = pd.DataFrame({"score": g["ws"].sum() / g["w"].sum()})
    if isinstance(tolerance, Mapping):
        tol = np.array([float(tolerance.get(str(c), 0.0)) for c in m["control"]], dtype=np.float64)
    else:
        tol = np.full(len(m), float(tolerance))
    if ((tol < 0) | (tol >= 1) | ~np.isfinite(tol)).any():
        raise ValueError("tolerance must be in [0, 1)")
    beyond = m["score"].to_numpy() < 1.0 - tol - 1e-12
    below = m[beyond].groupby("task")["control"].agg(lambda s: tuple(sorted(map(str, s))))
    out["controls"] = below.reindex(out.index)
    out["disagreement"] = 1.0 - out["score"]
    out = out[out.index.isin(below.index)].reset_index()
    out["controls"] = [c if isinstance(c, tuple) else () for c in out["controls"]]
    return out.sort_values(["disagreement", "task"], ascending=[False, True], kind="stable")[
        cols
    ].reset_index(drop=True)
