"""Agreement statistics on arrays: Krippendorff's alpha, Cohen's and Fleiss' kappa, percent agreement,
majority vote, and evaluator x evaluator matrices computed from integer codes.

Conventions
-----------
* ``data`` for :func:`krippendorff_alpha` and :func:`percent_agreement` is an *evaluators x units*
  table (the layout of Krippendorff's reliability data): a 2-D array, nested lists or a DataFrame.
  ``nan``, ``None`` and ``pd.NA`` mark a missing value; so does the string ``"nan"`` in a numpy string
  array (``np.asarray`` turns ``np.nan`` into ``"nan"`` there, as the ``krippendorff`` package assumes).
  Nested lists are read as objects, so ``[["a", np.nan]]`` has one missing cell, never a category
  ``"nan"``. Values that are all numbers (including nullable ``Int64``/``Float64`` frames) are numeric.
* Labels of one statistic are all numbers or all strings: ``1`` and ``"1"`` together raise a
  ``ValueError`` naming both types instead of silently counting as two categories (scikit-learn's
  ``cohen_kappa_score`` refuses the same mix).
* A scalar statistic that is undefined for its input (no pairable values, no variation, ...) raises
  :class:`UndefinedStatisticError` (a ``ValueError``) naming the reason; it never returns a silent ``nan``.
  Malformed input (mixed types, out-of-domain values, negative counts, ...) raises a plain ``ValueError``.
  The low-level, vectorised helpers (:func:`alpha_from_codes`, :func:`kappa_from_confusion` and the
  matrix functions) keep ``nan`` for undefined cells, as documented on each.
* Matrix functions take three aligned 1-D integer arrays ``task, evaluator, label`` with one row per
  (task, evaluator); codes are ``0..E-1`` and ``0..K-1``. Rows already sorted by task are the fast
  path (no sort). Diagonal cells are ``nan``; cells of pairs that share no task are ``nan``.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from app.metrics._pairs import pair_confusion

Level = Literal["nominal", "ordinal", "interval", "ratio"]
Weights = Literal["linear", "quadratic"] | None
_LEVELS = ("nominal", "ordinal", "interval", "ratio")

__all__ = [
    "UndefinedStatisticError",
    "alpha_from_codes",
    "check_label_types",
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


class UndefinedStatisticError(ValueError):
    """The statistic is undefined for this input; the message names why (no pairable values, a single
    coder, no variation, ...).

    A subclass of ``ValueError``: callers that show "n/a" for an undefined statistic catch this class,
    while malformed input (mixed label types, out-of-domain values, negative counts) stays a plain
    ``ValueError``.
    """


# --------------------------------------------------------------------------------------------------
# helpers


def _value_kind(v: object) -> str:
    """``"number"`` (bool, int, float, numpy scalars, Decimal, ...), ``"str"`` or the type name."""
    if isinstance(v, str):
        return "str"
    if isinstance(v, bool | np.bool_ | numbers.Number):
        return "number"
    return type(v).__name__


def check_label_types(values: Iterable[object], what: str = "labels") -> str | None:
    """Raise ``ValueError`` when ``values`` (distinct, non-missing) mix numbers, strings or other types.

    Returns the common kind (``"number"``, ``"str"``, a type name) or ``None`` when there is no value.
    ``1`` and ``"1"`` would otherwise be two categories that never agree (or, sorted, a ``TypeError``).
    """
    examples: dict[str, object] = {}
    for v in values:
        examples.setdefault(_value_kind(v), v)
    if len(examples) > 1:
        desc = " and ".join(f"{type(v).__name__} (e.g. {v!r})" for v in examples.values())
        raise ValueError(
            f"{what} mix value types: {desc}; the number 1 and the text '1' would be different "
            f"categories, so convert the {what} to one type first"
        )
    return next(iter(examples), None)


def _examples(values: Iterable[object], n: int = 5) -> str:
    out = []
    for v in values:
        out.append(repr(v))
        if len(out) == n:
            out.append("...")
            break
    return ", ".join(out)


def _as_2d(data: object) -> np.ndarray:
    """An evaluators x units table as an ndarray: floats for numeric frames (``pd.NA`` -> ``nan``),
    objects for lists and other frames (so ``np.nan`` among strings stays a missing value)."""
    if isinstance(data, pd.DataFrame):
        if all(pd.api.types.is_numeric_dtype(t) for t in data.dtypes):
            return np.asarray(data.to_numpy(dtype=np.float64, na_value=np.nan))
        return np.asarray(data.to_numpy(dtype=object))
    if isinstance(data, np.ndarray):
        return data
    return np.asarray(data, dtype=object)


def _observed(data: object, what: str) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """``(col, value, shape)`` of the present cells of an evaluators x units table, row-major.

    ``value`` is float64 when every present value is a number, else an object array of one type.
    """
    arr = _as_2d(data)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D evaluators x units table, got shape {arr.shape}")
    shape = (int(arr.shape[0]), int(arr.shape[1]))
    kind = arr.dtype.kind
    if kind in "biuf":
        a = arr.astype(np.float64, copy=False)
        mask = ~np.isnan(a)
        values = a[mask]
    else:
        if kind == "U":
            mask = arr != "nan"  # np.asarray([["a", np.nan]]) stores the missing value as 'nan'
        elif kind == "S":
            mask = arr != b"nan"
        else:
            mask = pd.Series(arr.ravel(), dtype=object).notna().to_numpy().reshape(arr.shape)
        raw = arr[mask].astype(object)
        try:
            codes, uniques = pd.factorize(raw)
        except TypeError as exc:
            raise ValueError(f"{what} must be hashable values (numbers or strings): {exc}") from exc
        if check_label_types(uniques, what) == "number":
            values = np.asarray(uniques, dtype=np.float64)[codes]
        else:
            values = raw
    if values.dtype != object and np.isinf(values).any():
        raise ValueError(f"{what} contain infinite values")
    cols = np.broadcast_to(np.arange(shape[1]), shape)[mask]  # row-major, as values
    return cols, values, shape


def _encode_domain(values: np.ndarray, value_domain: object, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Codes of ``values`` as positions in ``value_domain`` (the given order) and the domain array."""
    dom = list(np.asarray(value_domain, dtype=object).ravel()) if not isinstance(value_domain, str) else []
    if not dom:
        raise ValueError("value_domain must be a non-empty sequence of values, lowest first")
    if any(pd.isna(v) for v in dom):
        raise ValueError("value_domain contains a missing value")
    dom_kind = check_label_types(dom, "value_domain")
    numeric = values.dtype != object
    if values.size:
        data_kind = "number" if numeric else _value_kind(values[0])
        if data_kind != dom_kind:
            raise ValueError(f"value_domain holds {dom_kind} values but the {what} are {data_kind} values")
    if dom_kind == "number":
        domain = np.asarray(dom, dtype=np.float64)
        index = pd.Index(domain)
    else:
        domain = np.asarray(dom, dtype=object)
        index = pd.Index(domain, dtype=object)
    if not index.is_unique:
        raise ValueError(f"value_domain repeats {_examples(index[index.duplicated()].unique())}")
    codes = index.get_indexer(values) if values.size else np.zeros(0, np.intp)
    if (codes < 0).any():
        outside = pd.unique(values[codes < 0])
        raise ValueError(f"the {what} hold values outside value_domain: {_examples(outside)}")
    return codes.astype(np.int64), domain


def _codes_2d(
    data: object, value_domain: object = None, what: str = "ratings"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """Return ``(col, code, domain, shape)`` of the present cells of an E x U table.

    ``domain[code]`` is the value of a code: float64 for numbers (sorted), an object array otherwise
    (sorted when the values are orderable); with ``value_domain`` it is that sequence, in its order.
    """
    cols, values, shape = _observed(data, what)
    if value_domain is not None:
        codes, domain = _encode_domain(values, value_domain, what)
        return cols, codes, domain, shape
    if values.dtype == object:
        try:
            obj_codes, uniques = pd.factorize(values, sort=True)
        except TypeError:  # unorderable values (e.g. tuples of mixed items): nominal use only
            obj_codes, uniques = pd.factorize(values, sort=False)
        return cols, obj_codes.astype(np.int64), np.asarray(uniques, dtype=object), shape
    if values.size == 0:
        return cols, np.zeros(0, np.int64), np.zeros(0), shape
    lo, hi = values.min(), values.max()
    off = (values - lo).astype(np.int64) if hi - lo <= (1 << 22) else None
    if off is not None and bool(np.array_equal(off + lo, values)):
        present = np.bincount(off) > 0
        remap = np.cumsum(present) - 1
        domain = lo + np.flatnonzero(present).astype(np.float64)
        return cols, remap[off], domain, shape
    domain, codes = np.unique(values, return_inverse=True)
    return cols, codes.ravel().astype(np.int64), domain, shape


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
        return np.asarray(a**2 + (a**2).T)
    v = domain.astype(np.float64)
    if level == "interval":
        return np.asarray((v[:, None] - v[None, :]) ** 2)
    if level == "ratio":
        s = v[:, None] + v[None, :]
        d = v[:, None] - v[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(s == 0, 0.0, d / np.where(s == 0, 1.0, s))
        return np.asarray(r**2)
    raise ValueError(f"unknown level of measurement {level!r}")


def krippendorff_alpha(
    data: object, level: Level = "nominal", *, value_domain: Sequence[Any] | None = None
) -> float:
    """Krippendorff's alpha for an *evaluators x units* table (``nan``/``None``/``pd.NA`` = missing).

    ``level`` is ``"nominal"``, ``"ordinal"``, ``"interval"`` or ``"ratio"``. Units with fewer than two
    values are not pairable and are ignored.

    ``value_domain`` (the name of the ``krippendorff`` package's parameter) lists the possible values
    from lowest to highest: it gives the order for ordinal alpha (required for text ratings, e.g.
    ``["low", "mid", "high"]``, which would otherwise sort alphabetically) and any value outside it
    raises a ``ValueError``. Without it numbers are ordered by value.

    Text ratings are accepted for nominal alpha and, with ``value_domain``, ordinal alpha; interval and
    ratio alpha need numbers. Mixed numbers and text raise a ``ValueError`` naming the types.

    Raises :class:`UndefinedStatisticError` (a ``ValueError``) where alpha is undefined: every value
    missing, a single coder, no unit rated by two coders, or all pairable values identical (no
    variation: 0/0). The ``krippendorff`` package raises ``ValueError`` for the same inputs (or returns
    ``nan`` when unpaired values vary but the pairable ones do not).
    """
    if level not in _LEVELS:
        raise ValueError(f"unknown level of measurement {level!r}; use one of {', '.join(_LEVELS)}")
    cols, codes, domain, (n_coders, n_units) = _codes_2d(data, value_domain, "ratings")
    numeric = domain.dtype != object
    if not numeric and level in ("interval", "ratio"):
        raise ValueError(
            f"{level} alpha needs numeric ratings, got text values ({_examples(domain)}); "
            "use level='nominal', or level='ordinal' with value_domain=[lowest, ..., highest]"
        )
    if not numeric and level == "ordinal" and value_domain is None:
        raise ValueError(
            f"ordinal alpha on text ratings needs value_domain=[lowest, ..., highest]: sorting "
            f"{_examples(domain)} alphabetically would invent an order"
        )
    if codes.size == 0:
        raise UndefinedStatisticError("Krippendorff's alpha is undefined: every rating is missing")
    if n_coders < 2:
        raise UndefinedStatisticError(
            "Krippendorff's alpha is undefined for a single coder: it needs two or more coders per unit"
        )
    pairable = np.bincount(cols, minlength=n_units) >= 2
    if not pairable.any():
        raise UndefinedStatisticError(
            "Krippendorff's alpha is undefined: no unit was rated by two or more coders (no pairable values)"
        )
    used = np.flatnonzero(np.bincount(codes[pairable[cols]], minlength=domain.size))
    if used.size == 1:
        value = domain[used[0]]
        raise UndefinedStatisticError(
            f"Krippendorff's alpha is undefined: every pairable rating is {_plain(value)!r} "
            "(no variation, expected disagreement 0)"
        )
    scale = domain if numeric else np.arange(domain.size, dtype=np.float64)
    alpha = alpha_from_codes(cols, codes, n_units, scale, level)
    if np.isnan(alpha):
        raise UndefinedStatisticError(
            f"Krippendorff's alpha is undefined: {level} expected disagreement is 0"
        )
    return alpha


def _plain(v: object) -> object:
    """A numpy scalar as a Python one (``3.0`` -> ``3`` for whole floats) for messages."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def alpha_from_codes(
    unit: np.ndarray, code: np.ndarray, n_units: int, domain: np.ndarray, level: Level = "nominal"
) -> float:
    """Krippendorff's alpha from (unit, value code) pairs; ``domain[code]`` is the (sorted) value of a code.

    Lets callers with long data (task, value) avoid a dense evaluators x units array. A low-level helper:
    it returns ``nan`` where alpha is undefined (no pairable unit, no expected disagreement) so that
    callers can show "n/a"; :func:`krippendorff_alpha` raises :class:`UndefinedStatisticError` instead.
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
    return float(1.0 - (n - 1.0) * observed / expected)


# --------------------------------------------------------------------------------------------------
# Cohen's kappa


def _weight_matrix(K: int, weights: Weights) -> np.ndarray:
    i = np.arange(K, dtype=np.float64)
    if weights is None:
        return np.asarray(1.0 - np.eye(K))
    if weights == "linear":
        return np.abs(i[:, None] - i[None, :])
    if weights == "quadratic":
        return np.asarray((i[:, None] - i[None, :]) ** 2)
    raise ValueError(f"weights must be None, 'linear' or 'quadratic', not {weights!r}")


def kappa_from_confusion(confusion: np.ndarray, weights: Weights = None) -> np.ndarray | float:
    """Cohen's kappa of one ``K x K`` confusion table or of a stack ``(..., K, K)`` of them.

    Weights are disagreement weights on category *positions* (as scikit-learn): none (0/1), linear
    ``|i - j|`` or quadratic ``(i - j)**2``. A vectorised low-level helper: undefined values (no data,
    no expected disagreement) are ``nan``; :func:`cohen_kappa` raises instead.
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
    return pd.Series(np.asarray(x, dtype=object).ravel(), dtype=object)


def _categories(values: np.ndarray, labels: object, what: str = "labels") -> pd.Index:
    """Category index for ``values`` (distinct, present): the sorted values, or ``labels`` in its order.

    Raises ``ValueError`` for mixed types, for ``labels`` of another type or with repeats, and for values
    missing from ``labels``.
    """
    kind = check_label_types(values, what)
    if labels is None:
        cats = pd.Index(values, dtype=object)
        with contextlib.suppress(TypeError):
            cats = cats.sort_values()
        return cats
    given = list(np.asarray(labels, dtype=object).ravel()) if not isinstance(labels, str) else [labels]
    lab_kind = check_label_types(given, "labels")
    if kind is not None and lab_kind is not None and kind != lab_kind:
        raise ValueError(f"labels holds {lab_kind} values but the rated values are {kind} values")
    cats = pd.Index(given, dtype=object)
    if not cats.is_unique:
        raise ValueError(f"labels repeats {_examples(cats[cats.duplicated()].unique())}")
    outside = values[cats.get_indexer(values) < 0] if len(values) else values
    if len(outside):
        raise ValueError(
            f"values not in labels: {_examples(outside)}; add them to labels or drop those items"
        )
    return cats


def cohen_kappa(a: object, b: object, weights: Weights = None, labels: object = None) -> float:
    """Cohen's kappa between two raters' labels ``a`` and ``b`` (same length; ``nan``/``None`` = missing).

    Pairs with a missing side are dropped. ``labels`` fixes the category order (default: sorted union of
    the observed labels), which matters for the ``"linear"`` and ``"quadratic"`` weights; a label
    outside ``labels`` raises a ``ValueError`` (scikit-learn silently ignores such items).

    Labels must be of one type: ``[1, 2, 1]`` against ``["1", "2", "1"]`` raises a ``ValueError`` naming
    ``int`` and ``str`` (as scikit-learn's ``cohen_kappa_score``), instead of two disjoint category sets
    and a kappa of 0. Raises :class:`UndefinedStatisticError` when kappa is undefined: no item rated by
    both, or both raters used one and the same category only (scikit-learn returns ``nan`` with a warning).
    """
    _weight_matrix(1, weights)  # validate early
    sa, sb = _as_object_1d(a), _as_object_1d(b)
    if len(sa) != len(sb):
        raise ValueError(f"a and b must have the same length, got {len(sa)} and {len(sb)}")
    present_a, present_b = sa.notna().to_numpy(), sb.notna().to_numpy()
    try:
        every = pd.unique(pd.concat([sa[present_a], sb[present_b]], ignore_index=True))
    except TypeError as exc:
        raise ValueError(f"labels must be hashable values (numbers or strings): {exc}") from exc
    check_label_types(every, "labels")
    keep = present_a & present_b
    va, vb = sa[keep].to_numpy(), sb[keep].to_numpy()
    used_values = np.asarray(pd.unique(pd.Series(np.concatenate([va, vb]), dtype=object)), dtype=object)
    cats = _categories(used_values, labels)
    if not keep.any():
        raise UndefinedStatisticError("Cohen's kappa is undefined: no item has a label from both raters")
    K = len(cats)
    ca = cats.get_indexer(va)
    cb = cats.get_indexer(vb)
    C = np.bincount(ca * K + cb, minlength=K * K).reshape(K, K)
    kappa = float(kappa_from_confusion(C, weights))
    if np.isnan(kappa):
        used = np.flatnonzero(C.sum(axis=0) + C.sum(axis=1))
        what = f"only {_plain(cats[used[0]])!r}" if used.size == 1 else "no expected disagreement"
        raise UndefinedStatisticError(
            f"Cohen's kappa is undefined: both raters gave {what} (no variation, 0/0)"
        )
    return kappa


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


def _confusion_from_codes(
    task: np.ndarray | None,
    evaluator: np.ndarray | None,
    label: np.ndarray | None,
    n_evaluators: int | None,
    n_labels: int | None,
) -> np.ndarray:
    if task is None or evaluator is None or label is None:
        raise ValueError("pass task, evaluator and label codes, or a confusion tensor")
    return pairwise_confusion(task, evaluator, label, n_evaluators, n_labels)


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
        else _confusion_from_codes(task, evaluator, label, n_evaluators, n_labels)
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
        else _confusion_from_codes(task, evaluator, label, n_evaluators, n_labels)
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


def _cells(mask: np.ndarray, n: int = 5) -> str:
    """First few ``(unit, category)`` positions of a 2-D mask, for messages."""
    rows, cols = np.nonzero(mask)
    return _examples(zip(rows.tolist(), cols.tolist(), strict=True), n)


def fleiss_kappa(counts: object) -> float:
    """Fleiss' kappa of a *units x categories* table of rating counts.

    With the same number of ratings per unit this is Fleiss (1971) exactly; with varying numbers the
    per-unit agreement uses each unit's own count, and units with fewer than two ratings are dropped.

    Every cell is a count: a missing (``nan``) cell, an infinite, negative or fractional count raises a
    ``ValueError`` naming the first offending ``(unit, category)`` cells (statsmodels fails with a bare
    ``AssertionError`` on ``nan`` and returns a number for negative or fractional counts). Write ``0``
    where no rater chose a category. Raises :class:`UndefinedStatisticError` when no unit has two
    ratings or all ratings fall in one category (no variation).
    """
    try:
        if isinstance(counts, pd.DataFrame):
            t = counts.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            t = np.asarray(counts, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"counts must be a units x categories table of numbers: {exc}") from exc
    if t.ndim != 2:
        raise ValueError(f"counts must be a units x categories table, got shape {t.shape}")
    if np.isnan(t).any():
        raise ValueError(
            f"counts has missing (nan) cells at (unit, category) {_cells(np.isnan(t))}; "
            "write 0 where no rater chose the category, or drop the unit"
        )
    if np.isinf(t).any():
        raise ValueError(f"counts has infinite cells at (unit, category) {_cells(np.isinf(t))}")
    if (t < 0).any():
        raise ValueError(f"counts must not be negative; negative at (unit, category) {_cells(t < 0)}")
    if (t != np.round(t)).any():
        raise ValueError(
            f"counts must be whole numbers of ratings; fractional at (unit, category) {_cells(t != np.round(t))}"
        )
    n_i = t.sum(axis=1)
    t = t[n_i >= 2]
    n_i = n_i[n_i >= 2]
    if t.shape[0] == 0:
        raise UndefinedStatisticError("Fleiss' kappa is undefined: no unit has two or more ratings")
    p_i = ((t * t).sum(axis=1) - n_i) / (n_i * (n_i - 1.0))
    p_bar = p_i.mean()
    p_j = t.sum(axis=0) / t.sum()
    p_e = float((p_j * p_j).sum())
    if p_e >= 1.0:
        raise UndefinedStatisticError(
            f"Fleiss' kappa is undefined: every rating is in category {int(np.argmax(p_j))} "
            "(no variation, expected agreement 1)"
        )
    return float((p_bar - p_e) / (1.0 - p_e))


def percent_agreement(a: object, b: object = None) -> float:
    """Percent agreement (a fraction in [0, 1]).

    * ``percent_agreement(a, b)``: share of positions where two raters' labels are equal, over the positions
      where both are present.
    * ``percent_agreement(data)``: ``data`` is evaluators x units (``nan`` = missing); mean over units with
      at least two values of the share of agreeing ordered pairs of values in the unit.

    Mixed label types raise a ``ValueError``; no pair of values raises :class:`UndefinedStatisticError`.
    """
    if b is not None:
        sa, sb = _as_object_1d(a), _as_object_1d(b)
        if len(sa) != len(sb):
            raise ValueError(f"a and b must have the same length, got {len(sa)} and {len(sb)}")
        pa, pb = sa.notna().to_numpy(), sb.notna().to_numpy()
        check_label_types(pd.unique(pd.concat([sa[pa], sb[pb]], ignore_index=True)), "labels")
        keep = pa & pb
        if not keep.any():
            raise UndefinedStatisticError(
                "percent agreement is undefined: no item has a label from both raters"
            )
        return float(np.mean(sa[keep].to_numpy() == sb[keep].to_numpy()))
    cols, codes, domain, (_, n_units) = _codes_2d(a, None, "ratings")
    N = _value_counts_by_unit(cols, codes, n_units, max(domain.size, 1))
    if N.shape[0] == 0:
        raise UndefinedStatisticError("percent agreement is undefined: no unit has two or more values")
    m = N.sum(axis=1)
    return float(np.mean(((N * (N - 1)).sum(axis=1)) / (m * (m - 1))))


def majority_vote(data: object) -> pd.DataFrame | np.ndarray:
    """Majority (plurality) answer per task.

    * DataFrame with columns ``task``, ``label`` (and ``worker`` or ``evaluator``): returns a DataFrame indexed
      by task with ``label`` (ties broken by the smallest label in sort order), ``votes`` (for it), ``n``
      (answers), ``support`` (= votes / n) and ``tie`` (whether another label had as many votes).
    * evaluators x units array (``nan`` = missing): returns the modal value per unit (``nan`` if none).

    Mixed label types (``1`` and ``"1"``) raise a ``ValueError``.
    """
    if isinstance(data, pd.DataFrame):
        frame = data
        if frame.empty:
            return pd.DataFrame(
                {"label": [], "votes": [], "n": [], "support": [], "tie": []},
                index=pd.Index([], name="task"),
            )
        check_label_types(frame["label"].dropna().unique(), "labels")
        counts = frame.groupby(["task", "label"], sort=True).size().rename("votes").reset_index()
        n = counts.groupby("task", sort=False)["votes"].transform("sum")
        mx = counts.groupby("task", sort=False)["votes"].transform("max")
        n_max = (counts["votes"] == mx).groupby(counts["task"], sort=False).transform("sum")
        counts = counts.assign(n=n, tie=n_max > 1)
        # groupby sorted by (task, label): the first row reaching the max is the smallest such label
        best = counts[counts["votes"] == mx].drop_duplicates("task", keep="first").set_index("task")
        best["support"] = best["votes"] / best["n"]
        return best[["label", "votes", "n", "support", "tie"]]
    cols, codes, domain, (_, n_units) = _codes_2d(data, None, "ratings")
    V = max(domain.size, 1)
    N = np.bincount(cols * V + codes, minlength=n_units * V).reshape(n_units, V)
    out: np.ndarray = np.full(n_units, np.nan, dtype=object if domain.dtype == object else np.float64)
    has = N.sum(axis=1) > 0
    if domain.size:
        out[has] = domain[N[has].argmax(axis=1)]
    return out
