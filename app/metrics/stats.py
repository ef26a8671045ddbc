"""Agreement statistics on arrays: Krippendorff's alpha, Cohen's and Fleiss' kappa, percent agreement,
majority vote, and evaluator x evaluator matrices computed from integer codes.

Conventions
-----------
* ``data`` for :func:`krippendorff_alpha` and :func:`percent_agreement` is an *evaluators x units*
  array (the layout of Krippendorff's reliability data); ``nan`` (or ``None`` in object arrays) marks
  a missing value.
* Matrix functions take three aligned 1-D integer arrays ``task, evaluator, label`` with one row per
  (task, evaluator); codes are ``0..E-1`` and ``0..K-1``. Rows already sorted by task are the fast
  path (no sort). Diagonal cells are ``nan``; cells of pairs that share no task are ``nan``.
"""

from __future__ import annotations

import contextlib
from typing import Literal

import numpy as np
import pandas as pd

from app.metrics._pairs import pair_confusion

Level = Literal["nominal", "ordinal", "interval", "ratio"]
Weights = Literal["linear", "quadratic"] | None

__all__ = [
    "alpha_from_codes",
    "cohen_kappa",
    "cohen_kappa_matrix",
    "fleiss_kappa",
    "kappa_from_confusion",
    "krippendorff_alpha",
    "majority_vote",
    "pairwise_agreement_matrix",
    "pairwise_confusion",
    "percent_agreement",
]


# --------------------------------------------------------------------------------------------------
# helpers


def _codes_2d(data: object) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Return (row, col, code) of the observed cells and the sorted domain of an E x U array (row is
    only filled for object arrays; the numeric fast path leaves it empty).

    The last item tells whether the domain is numeric.
    """
    arr = np.asarray(data)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D evaluators x units array, got shape {arr.shape}")
    if arr.dtype.kind in "biuf":
        arr = arr.astype(np.float64, copy=False)
        mask = ~np.isnan(arr)
        vals = arr[mask]
        cols = np.broadcast_to(np.arange(arr.shape[1]), arr.shape)[mask]
        rows = np.zeros(0, np.int64)  # not needed by the callers; kept for the signature
        if vals.size == 0:
            return rows, cols, np.zeros(0, np.int64), np.zeros(0)
        lo, hi = vals.min(), vals.max()
        off = (vals - lo).astype(np.int64) if hi - lo <= (1 << 22) else None
        if off is not None and bool(np.array_equal(off + lo, vals)):
            present = np.bincount(off) > 0
            remap = np.cumsum(present) - 1
            domain = lo + np.flatnonzero(present).astype(np.float64)
            return rows, cols, remap[off], domain
        domain, codes = np.unique(vals, return_inverse=True)
        return rows, cols, codes.ravel(), domain
    flat = pd.Series(arr.ravel(), dtype=object)
    mask = flat.notna().to_numpy().reshape(arr.shape)
    rows, cols = np.nonzero(mask)
    codes, uniques = pd.factorize(pd.Series(arr[rows, cols], dtype=object), sort=True)
    return rows, cols, codes.astype(np.int64), np.asarray(uniques, dtype=object)


def _value_counts_by_unit(cols: np.ndarray, codes: np.ndarray, n_units: int, n_values: int) -> np.ndarray:
    """Dense units x values count table of the units with at least two values (pairable units)."""
    m_u = np.bincount(cols, minlength=n_units)
    pairable = m_u >= 2
    keep = pairable[cols]
    unit_id = np.cumsum(pairable) - 1
    n_pairable = int(pairable.sum())
    flat = np.bincount(unit_id[cols[keep]] * n_values + codes[keep], minlength=n_pairable * n_values)
    return flat.reshape(n_pairable, n_values).astype(np.float64)


# --------------------------------------------------------------------------------------------------
# Krippendorff's alpha


def _delta2(level: str, domain: np.ndarray, n_c: np.ndarray) -> np.ndarray:
    V = domain.size
    if level == "nominal":
        return 1.0 - np.eye(V)
    if level == "ordinal":
        cs = np.cumsum(n_c)
        # for c <= k: sum_{g=c..k} n_g - (n_c + n_k) / 2 = cs[k] - cs[c] + (n_c - n_k) / 2
        a = cs[None, :] - cs[:, None] + (n_c[:, None] - n_c[None, :]) / 2.0
        a = np.triu(a)
        return a**2 + (a**2).T
    v = domain.astype(np.float64)
    if level == "interval":
        return (v[:, None] - v[None, :]) ** 2
    if level == "ratio":
        s = v[:, None] + v[None, :]
        d = v[:, None] - v[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(s == 0, 0.0, d / np.where(s == 0, 1.0, s))
        return r**2
    raise ValueError(f"unknown level of measurement {level!r}")


def krippendorff_alpha(data: object, level: Level = "nominal") -> float:
    """Krippendorff's alpha for an *evaluators x units* array with ``nan`` for missing values.

    ``level`` is ``"nominal"``, ``"ordinal"``, ``"interval"`` or ``"ratio"``. Units with fewer than two
    values are not pairable and are ignored. Returns ``nan`` when there is no pairable unit or when
    the pairable values show no variation (expected disagreement zero). Object arrays (strings,
    ``None`` = missing) are accepted for nominal and ordinal data (ordered by sorting).
    """
    if level not in ("nominal", "ordinal", "interval", "ratio"):
        raise ValueError(f"unknown level of measurement {level!r}")
    rows, cols, codes, domain = _codes_2d(data)
    if level in ("interval", "ratio") and domain.dtype == object:
        raise ValueError(f"{level} alpha needs numeric data")
    n_units = np.asarray(data).shape[1]
    numeric = domain.dtype != object
    return alpha_from_codes(
        cols, codes, n_units, domain if numeric else np.arange(domain.size, dtype=float), level
    )


def alpha_from_codes(
    unit: np.ndarray, code: np.ndarray, n_units: int, domain: np.ndarray, level: Level = "nominal"
) -> float:
    """Krippendorff's alpha from (unit, value code) pairs; ``domain[code]`` is the (sorted) value of a code.

    Lets callers with long data (task, value) avoid a dense evaluators x units array.
    """
    V = int(np.asarray(domain).size)
    if V == 0:
        return float("nan")
    unit = np.asarray(unit, np.int64)
    code = np.asarray(code, np.int64)
    n_units = int(n_units)
    # coincidences o_ck = sum_u n_uc n_uk / (m_u - 1) - [c == k] sum_u n_uc / (m_u - 1), computed as Y.T @ Y
    # with Y_uc = n_uc / sqrt(m_u - 1) (one weighted bincount; numpy uses a symmetric rank-k product)
    m_u = np.bincount(unit, minlength=n_units)
    inv = np.zeros(n_units)
    pairable = m_u >= 2
    if not pairable.any():
        return float("nan")
    inv[pairable] = 1.0 / (m_u[pairable] - 1.0)
    w = inv[unit]
    if n_units * V <= 50_000_000:
        Y = np.bincount(unit * V + code, weights=np.sqrt(w), minlength=n_units * V).reshape(n_units, V)
        o = Y.T @ Y
    else:  # very many units x values: sparse product
        import scipy.sparse as sp

        Ys = sp.csr_matrix((np.sqrt(w), (unit, code)), shape=(n_units, V))
        Ys.sum_duplicates()
        o = (Ys.T @ Ys).toarray()
    o[np.diag_indices(V)] -= np.bincount(code, weights=w, minlength=V)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    d2 = _delta2(level, np.asarray(domain, dtype=np.float64), n_c)
    observed = float((o * d2).sum())
    expected = float(n_c @ d2 @ n_c)
    if expected <= 0.0:
        return float("nan")
    return 1.0 - (n - 1.0) * observed / expected


# --------------------------------------------------------------------------------------------------
# Cohen's kappa


def _weight_matrix(K: int, weights: Weights) -> np.ndarray:
    i = np.arange(K, dtype=np.float64)
    if weights is None:
        return 1.0 - np.eye(K)
    if weights == "linear":
        return np.abs(i[:, None] - i[None, :])
    if weights == "quadratic":
        return (i[:, None] - i[None, :]) ** 2
    raise ValueError(f"weights must be None, 'linear' or 'quadratic', not {weights!r}")


def kappa_from_confusion(confusion: np.ndarray, weights: Weights = None) -> np.ndarray | float:
    """Cohen's kappa of one ``K x K`` confusion table or of a stack ``(..., K, K)`` of them.

    Weights are disagreement weights on category *positions* (as scikit-learn): none (0/1), linear
    ``|i - j|`` or quadratic ``(i - j)**2``. Undefined values (no data, no expected disagreement)
    are ``nan``.
    """
    C = np.asarray(confusion, dtype=np.float64)
    K = C.shape[-1]
    W = _weight_matrix(K, weights)
    n = C.sum(axis=(-2, -1))
    rows = C.sum(axis=-1)
    cols = C.sum(axis=-2)
    observed = np.einsum("...kl,kl->...", C, W)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.einsum("...k,kl,...l->...", rows, W, cols) / n
        kappa = 1.0 - observed / expected
    kappa = np.where((n > 0) & (expected > 0), kappa, np.nan)
    return float(kappa) if kappa.ndim == 0 else kappa


def _as_object_1d(x: object) -> pd.Series:
    s = pd.Series(np.asarray(x, dtype=object).ravel(), dtype=object)
    return s


def cohen_kappa(a: object, b: object, weights: Weights = None, labels: object = None) -> float:
    """Cohen's kappa between two raters' labels ``a`` and ``b`` (same length; ``nan``/``None`` = missing).

    Pairs with a missing side are dropped. ``labels`` fixes the category order (default: sorted union of
    the observed labels), which matters for the ``"linear"`` and ``"quadratic"`` weights.
    """
    sa, sb = _as_object_1d(a), _as_object_1d(b)
    if len(sa) != len(sb):
        raise ValueError("a and b must have the same length")
    keep = (sa.notna() & sb.notna()).to_numpy()
    sa, sb = sa[keep], sb[keep]
    if labels is None:
        cats = pd.Index(pd.unique(pd.concat([sa, sb], ignore_index=True)))
        with contextlib.suppress(TypeError):
            cats = cats.sort_values()
    else:
        cats = pd.Index(list(labels))
    ca = cats.get_indexer(sa)
    cb = cats.get_indexer(sb)
    ok = (ca >= 0) & (cb >= 0)
    K = len(cats)
    if K == 0:
        return float("nan")
    C = np.bincount(ca[ok] * K + cb[ok], minlength=K * K).reshape(K, K)
    return float(kappa_from_confusion(C, weights))


def pairwise_confusion(
    task: np.ndarray,
    evaluator: np.ndarray,
    label: np.ndarray,
    n_evaluators: int | None = None,
    n_labels: int | None = None,
) -> np.ndarray:
    """``C[i, j, c, d]``: tasks where evaluator i answered c and j answered d (integer codes in, int64 out)."""
    evaluator = np.asarray(evaluator)
    label = np.asarray(label)
    E = int(n_evaluators if n_evaluators is not None else (evaluator.max() + 1 if evaluator.size else 0))
    K = int(n_labels if n_labels is not None else (label.max() + 1 if label.size else 0))
    return pair_confusion(np.asarray(task), evaluator, label, E, K)


def cohen_kappa_matrix(
    task: np.ndarray | None = None,
    evaluator: np.ndarray | None = None,
    label: np.ndarray | None = None,
    weights: Weights = None,
    *,
    n_evaluators: int | None = None,
    n_labels: int | None = None,
    confusion: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cohen's kappa for every evaluator pair from integer codes: returns ``(kappa, counts)``, both E x E.

    Cell ``(i, j)`` uses the tasks shared by i and j; ``kappa`` is ``nan`` on the diagonal and where
    kappa is undefined. Pass ``confusion`` (from :func:`pairwise_confusion`) to reuse a tensor.
    """
    C = (
        confusion
        if confusion is not None
        else pairwise_confusion(task, evaluator, label, n_evaluators, n_labels)
    )
    counts = C.sum(axis=(2, 3))
    kappa = np.asarray(kappa_from_confusion(C, weights), dtype=np.float64)
    np.fill_diagonal(kappa, np.nan)
    return kappa, counts


def pairwise_agreement_matrix(
    task: np.ndarray | None = None,
    evaluator: np.ndarray | None = None,
    label: np.ndarray | None = None,
    *,
    scores: np.ndarray | None = None,
    n_evaluators: int | None = None,
    n_labels: int | None = None,
    confusion: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean agreement of every evaluator pair from integer codes: returns ``(agreement, counts)``.

    ``scores[c, d]`` is the score of answer c against reference answer d (default: identity, i.e. percent
    agreement). Cell ``(i, j)`` = mean over shared tasks of ``scores[label_i, label_j]`` (row scored with
    the column as reference).
    """
    C = (
        confusion
        if confusion is not None
        else pairwise_confusion(task, evaluator, label, n_evaluators, n_labels)
    )
    K = C.shape[-1]
    S = np.eye(K) if scores is None else np.asarray(scores, dtype=np.float64)
    counts = C.sum(axis=(2, 3))
    sums = np.einsum("ijkl,kl->ij", C, S)
    with np.errstate(divide="ignore", invalid="ignore"):
        agreement = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    np.fill_diagonal(agreement, np.nan)
    return agreement, counts


# --------------------------------------------------------------------------------------------------
# Fleiss' kappa, percent agreement, majority vote


def fleiss_kappa(counts: object) -> float:
    """Fleiss' kappa of a *units x categories* table of rating counts.

    With the same number of ratings per unit this is Fleiss (1971) exactly; with varying numbers the
    per-unit agreement uses each unit's own count, and units with fewer than two ratings are dropped.
    """
    t = np.asarray(counts, dtype=np.float64)
    if t.ndim != 2:
        raise ValueError("counts must be a units x categories table")
    n_i = t.sum(axis=1)
    t = t[n_i >= 2]
    n_i = n_i[n_i >= 2]
    if t.shape[0] == 0:
        return float("nan")
    p_i = ((t * t).sum(axis=1) - n_i) / (n_i * (n_i - 1.0))
    p_bar = p_i.mean()
    p_j = t.sum(axis=0) / t.sum()
    p_e = float((p_j * p_j).sum())
    if p_e >= 1.0:
        return float("nan")
    return float((p_bar - p_e) / (1.0 - p_e))


def percent_agreement(a: object, b: object = None) -> float:
    """Percent agreement (a fraction in [0, 1]).

    * ``percent_agreement(a, b)``: share of positions where two raters' labels are equal, over the positions
      where both are present.
    * ``percent_agreement(data)``: ``data`` is evaluators x units (``nan`` = missing); mean over units with
      at least two values of the share of agreeing ordered pairs of values in the unit.
    """
    if b is not None:
        sa, sb = _as_object_1d(a), _as_object_1d(b)
        keep = (sa.notna() & sb.notna()).to_numpy()
        if not keep.any():
            return float("nan")
        return float(np.mean(sa[keep].to_numpy() == sb[keep].to_numpy()))
    rows, cols, codes, domain = _codes_2d(a)
    n_units = np.asarray(a).shape[1]
    N = _value_counts_by_unit(cols, codes, n_units, max(domain.size, 1))
    if N.shape[0] == 0:
        return float("nan")
    m = N.sum(axis=1)
    return float(np.mean(((N * (N - 1)).sum(axis=1)) / (m * (m - 1))))


def majority_vote(data: object) -> pd.DataFrame | np.ndarray:
    """Majority (plurality) answer per task.

    * DataFrame with columns ``task``, ``label`` (and ``worker`` or ``evaluator``): returns a DataFrame indexed
      by task with ``label`` (ties broken by the smallest label in sort order), ``votes`` (for it), ``n``
      (answers), ``support`` (= votes / n) and ``tie`` (whether another label had as many votes).
    * evaluators x units array (``nan`` = missing): returns the modal value per unit (``nan`` if none).
    """
    if isinstance(data, pd.DataFrame):
        frame = data
        if frame.empty:
            return pd.DataFrame(
                {"label": [], "votes": [], "n": [], "support": [], "tie": []},
                index=pd.Index([], name="task"),
            )
        counts = frame.groupby(["task", "label"], sort=True).size().rename("votes").reset_index()
        n = counts.groupby("task", sort=False)["votes"].transform("sum")
        mx = counts.groupby("task", sort=False)["votes"].transform("max")
        n_max = (counts["votes"] == mx).groupby(counts["task"], sort=False).transform("sum")
        counts = counts.assign(n=n, tie=n_max > 1)
        # groupby sorted by (task, label): the first row reaching the max is the smallest such label
        best = counts[counts["votes"] == mx].drop_duplicates("task", keep="first").set_index("task")
        best["support"] = best["votes"] / best["n"]
        return best[["label", "votes", "n", "support", "tie"]]
    rows, cols, codes, domain = _codes_2d(data)
    n_units = np.asarray(data).shape[1]
    V = max(domain.size, 1)
    N = np.bincount(cols * V + codes, minlength=n_units * V).reshape(n_units, V)
    out = np.full(n_units, np.nan, dtype=object if domain.dtype == object else np.float64)
    has = N.sum(axis=1) > 0
    if domain.size:
        out[has] = domain[N[has].argmax(axis=1)]
    return out
