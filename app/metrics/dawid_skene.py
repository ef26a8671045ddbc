"""Dawid-Skene EM: class priors, one confusion matrix per worker, task posteriors.

Vectorised with a sparse ``tasks x (worker, label)`` count matrix ``B`` built once: the M-step is
``B.T @ T`` (expected confusion counts for every worker at once) and the E-step is
``B @ log(pi)`` (log-likelihood of every task and class), so one iteration costs two sparse-dense
products over the answers, with no Python loop per task, worker or answer.

Reference: A. P. Dawid and A. M. Skene (1979), "Maximum likelihood estimation of observer error-rates
using the EM algorithm", Applied Statistics 28(1), 20-28. The defaults are that method: soft
majority-vote start (their eq. 3.1), maximum-likelihood M-step (eqs. 2.3, 2.4), no smoothing; on the
paper's 45 patients x 5 clinicians data they reproduce its error-rate and class-probability tables and
its log-likelihood (-192.89), see ``tests/unit/metrics/test_dawid_skene_published.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from app.metrics.stats import check_label_types

__all__ = ["DawidSkeneResult", "dawid_skene"]


@dataclass(frozen=True, eq=False)
class DawidSkeneResult:
    """Result of :func:`dawid_skene`.

    * ``labels``: most probable true label per task (``pd.Series`` indexed by task; ties go to the first
      label in sort order).
    * ``priors``: estimated class priors (``pd.Series`` indexed by label).
    * ``confusion``: per worker confusion matrices, a DataFrame with a ``(worker, true)`` MultiIndex and the
      observed labels as columns; ``confusion.loc[worker]`` is that worker's ``true x observed`` matrix
      (rows sum to 1).
    * ``posteriors``: ``tasks x labels`` DataFrame of posterior class probabilities (rows sum to 1, never
      ``nan``).
    * ``log_likelihood``: log-likelihood of the data under the returned ``priors`` and ``confusion``
      (Dawid & Skene's eq. 2.7; tasks with a gold label count with that label).
    """

    labels: pd.Series
    priors: pd.Series
    confusion: pd.DataFrame
    posteriors: pd.DataFrame
    log_likelihood: float
    n_iter: int
    converged: bool

    def worker_accuracy(self) -> pd.Series:
        """Prior-weighted probability that each worker answers the true label."""
        K = len(self.priors)
        arr = self.confusion.to_numpy().reshape(-1, K, K)
        diag = np.einsum("wkk->wk", arr) @ self.priors.to_numpy()
        return pd.Series(diag, index=self.confusion.index.get_level_values(0).unique(), name="accuracy")


def _factorize(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Codes and uniques, sorted when the values are orderable (ids may mix ints and strings)."""
    try:
        codes, uniques = pd.factorize(values, sort=True)
    except TypeError:
        codes, uniques = pd.factorize(values, sort=False)
    return np.asarray(codes, dtype=np.int64), pd.Index(uniques)


def _m_step(
    BT: sp.csr_matrix, post: np.ndarray, W: int, K: int, smoothing: float
) -> tuple[np.ndarray, np.ndarray]:
    """Priors and confusion ``pi[w, true, observed]`` from the posteriors (maximum likelihood + smoothing).

    A worker without posterior mass on a true class (it never answered a task that may be of that class)
    has no estimate for that row: it gets the uniform row ``1/K`` (no information, as crowd-kit's
    floored-and-normalised rows), never ``0/0 = nan``.
    """
    T = post.shape[0]
    priors = (post.sum(axis=0) + smoothing) / (T + K * smoothing)
    counts = np.asarray(BT @ post).reshape(W, K, K).transpose(0, 2, 1) + smoothing  # [w, true, observed]
    totals = counts.sum(axis=2, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        pi = np.where(totals > 0, counts / np.where(totals > 0, totals, 1.0), 1.0 / K)
    return priors, pi


def _log_joint(B: sp.csr_matrix, priors: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """``log P(task answers, true class)`` for every task and class (``-inf`` where impossible)."""
    W, K = pi.shape[0], pi.shape[1]
    with np.errstate(divide="ignore"):
        log_pi = np.log(pi)
        log_priors = np.log(priors)
    ll = np.asarray(B @ log_pi.transpose(0, 2, 1).reshape(W * K, K))  # only answered (w, l) cells are read
    return np.asarray(ll + log_priors)


def _normalise(ll: np.ndarray, previous: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posteriors from log-joints and the per-task log-likelihood. A task for which every class is
    impossible under the current parameters (only by floating-point underflow) keeps its previous
    posterior, so no posterior is ever ``nan``."""
    mx = ll.max(axis=1, keepdims=True)
    ok = np.isfinite(mx[:, 0])
    shift = np.where(np.isfinite(mx), mx, 0.0)
    with np.errstate(invalid="ignore"):
        p = np.exp(ll - shift)
    z = p.sum(axis=1, keepdims=True)
    post = np.where(ok[:, None], p / np.where(z > 0, z, 1.0), previous)
    with np.errstate(divide="ignore"):
        task_ll = np.where(ok, np.log(np.where(z[:, 0] > 0, z[:, 0], 1.0)) + shift[:, 0], -np.inf)
    return post, task_ll


def dawid_skene(
    frame: pd.DataFrame,
    n_iter: int = 100,
    tol: float = 1e-5,
    gold: Mapping[object, object] | pd.Series | None = None,
    *,
    smoothing: float = 0.0,
) -> DawidSkeneResult:
    """Fit Dawid-Skene by EM on a frame with columns ``task``, ``worker`` (or ``evaluator``), ``label``.

    The defaults are the published method (Dawid & Skene 1979): the start is the soft majority vote (each
    task's share of answers per label), the M-step the maximum-likelihood estimate, without smoothing.
    Rows with a missing task, worker or label are not answers and are dropped.

    * ``gold`` (task -> known true label) clamps those tasks' posteriors to the known label in every E-step.
      A gold label must be one of the answers' labels (``ValueError`` naming it otherwise: a class no
      worker ever answers cannot be estimated); gold for a task without answers is ignored.
    * ``smoothing`` (opt-in, ``>= 0``, default ``0``) is a pseudo-count added to every confusion cell and
      class prior (the posterior mode under a symmetric Dirichlet(1 + smoothing) prior), so that unseen
      (true, observed) pairs keep a small probability. It moves the estimates away from the published
      maximum-likelihood values (e.g. ``0.01`` changes the 1979 log-likelihood from -192.89 to -193.27).
    * Iteration stops when the largest change of a posterior falls below ``tol`` or after ``n_iter`` EM
      rounds (``n_iter=0``: the M-step on the majority-vote start only).

    Posteriors are never ``nan``: without smoothing, a worker with no posterior mass on some true class
    gets a uniform confusion row for it (see :func:`_m_step`). Labels must be of one type: ``1`` and
    ``"1"`` together raise a ``ValueError`` naming both types.
    """
    if not (isinstance(n_iter, int | np.integer) and n_iter >= 0):
        raise ValueError(f"n_iter must be a non-negative integer, got {n_iter!r}")
    if not np.isfinite(tol) or tol < 0:
        raise ValueError(f"tol must be a non-negative number, got {tol!r}")
    if not np.isfinite(smoothing) or smoothing < 0:
        raise ValueError(f"smoothing must be a non-negative pseudo-count, got {smoothing!r}")
    worker_col = "worker" if "worker" in frame.columns else "evaluator"
    missing = {"task", worker_col, "label"} - set(frame.columns)
    if missing:
        raise ValueError(f"frame lacks columns {sorted(missing)}")
    df = frame[["task", worker_col, "label"]].dropna()
    t_codes, tasks = _factorize(df["task"])
    w_codes, workers = _factorize(df[worker_col])
    try:
        answer_labels = pd.unique(df["label"])
    except TypeError as exc:
        raise ValueError(f"labels must be hashable values (numbers or strings): {exc}") from exc
    check_label_types(answer_labels, "labels")
    classes = pd.Index(answer_labels)
    with contextlib.suppress(TypeError):
        classes = classes.sort_values()
    classes = classes.rename("label")
    T, W, K = len(tasks), len(workers), len(classes)
    if T == 0:
        empty = pd.DataFrame(columns=classes)
        return DawidSkeneResult(
            pd.Series(dtype=object, name="label"), pd.Series(dtype=float), empty, empty, 0.0, 0, True
        )
    l_codes = classes.get_indexer(df["label"]).astype(np.int64)

    gold_idx = gold_lab = None
    if gold is not None:
        gold_s = gold if isinstance(gold, pd.Series) else pd.Series(dict(gold), dtype=object)
        gold_s = gold_s[gold_s.notna()]
        if len(gold_s):
            gold_values = np.asarray(gold_s.to_numpy(), dtype=object)
            lab = classes.get_indexer(gold_values)
            if (lab < 0).any():
                outside = pd.unique(pd.Series(gold_values[lab < 0], dtype=object))
                shown = ", ".join(f"{v!r} ({type(v).__name__})" for v in outside[:5])
                known = ", ".join(repr(v) for v in classes[:10])
                raise ValueError(
                    f"gold labels outside the answers' labels: {shown}; the answers use {known}"
                    f"{', ...' if K > 10 else ''} (a class no worker ever answers cannot be estimated)"
                )
            gi = tasks.get_indexer(gold_s.index)
            ok = gi >= 0
            gold_idx, gold_lab = gi[ok], lab[ok]

    # B[t, w*K + l] = number of times worker w gave label l on task t
    B = sp.csr_matrix((np.ones(len(df)), (t_codes, w_codes * K + l_codes)), shape=(T, W * K))
    B.sum_duplicates()
    BT = B.T.tocsr()

    # soft majority vote start (Dawid & Skene 1979, eq. 3.1): share of each label among a task's answers
    votes = np.bincount(t_codes * K + l_codes, minlength=T * K).reshape(T, K).astype(float)
    post = votes / votes.sum(axis=1, keepdims=True)
    if gold_idx is not None:
        post[gold_idx] = 0.0
        post[gold_idx, gold_lab] = 1.0

    converged = False
    it = 0
    for it in range(1, n_iter + 1):  # noqa: B007 - it is reported
        priors, pi = _m_step(BT, post, W, K, smoothing)
        new, _ = _normalise(_log_joint(B, priors, pi), post)
        if gold_idx is not None:
            new[gold_idx] = 0.0
            new[gold_idx, gold_lab] = 1.0
        delta = float(np.abs(new - post).max())
        post = new
        if delta < tol:
            converged = True
            break

    priors, pi = _m_step(BT, post, W, K, smoothing)
    ll = _log_joint(B, priors, pi)
    _, task_ll = _normalise(ll, post)
    if gold_idx is not None:  # a task with a known class contributes log P(answers, that class)
        task_ll[gold_idx] = ll[gold_idx, gold_lab]
    loglik = float(task_ll.sum())

    index = pd.Index(tasks, name="task")
    labels = pd.Series(classes[post.argmax(axis=1)], index=index, name="label")
    posteriors = pd.DataFrame(post, index=index, columns=classes.copy())
    conf_index = pd.MultiIndex.from_product([workers, classes], names=["worker", "true"])
    confusion = pd.DataFrame(pi.reshape(W * K, K), index=conf_index, columns=classes.rename("observed"))
    return DawidSkeneResult(
        labels=labels,
        priors=pd.Series(priors, index=classes.copy(), name="prior"),
        confusion=confusion,
        posteriors=posteriors,
        log_likelihood=loglik,
        n_iter=it,
        converged=converged,
    )
