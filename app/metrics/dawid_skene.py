"""Dawid-Skene EM: class priors, one confusion matrix per worker, task posteriors.

Vectorised with a sparse ``tasks x (worker, label)`` count matrix ``B`` built once: the M-step is
``B.T @ T`` (expected confusion counts for every worker at once) and the E-step is
``B @ log(pi)`` (log-likelihood of every task and class), so one iteration costs two sparse-dense
products over the answers, with no Python loop per task, worker or answer.

Reference: A. P. Dawid and A. M. Skene (1979), "Maximum likelihood estimation of observer error-rates
using the EM algorithm", Applied Statistics 28(1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["DawidSkeneResult", "dawid_skene"]


@dataclass(frozen=True, eq=False)
class DawidSkeneResult:
    """Result of :func:`dawid_skene`.

    * ``labels``: most probable true label per task (``pd.Series`` indexed by task).
    * ``priors``: estimated class priors (``pd.Series`` indexed by label).
    * ``confusion``: per worker confusion matrices, a DataFrame with a ``(worker, true)`` MultiIndex and the
      observed labels as columns; ``confusion.loc[worker]`` is that worker's ``true x observed`` matrix
      (rows sum to 1).
    * ``posteriors``: ``tasks x labels`` DataFrame of posterior class probabilities.
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


def dawid_skene(
    frame: pd.DataFrame,
    n_iter: int = 100,
    tol: float = 1e-5,
    gold: Mapping[object, object] | pd.Series | None = None,
    *,
    smoothing: float = 0.01,
) -> DawidSkeneResult:
    """Fit Dawid-Skene by EM on a frame with columns ``task``, ``worker`` (or ``evaluator``), ``label``.

    Initialisation is the soft majority vote. ``gold`` (task -> known true label) clamps those tasks'
    posteriors to the known label in every E-step. ``smoothing`` is a pseudo-count added to every
    confusion cell (and prior) so that unseen (true, observed) pairs keep a small probability.
    Iteration stops when the largest change of a posterior falls below ``tol`` or after ``n_iter``
    EM rounds.
    """
    worker_col = "worker" if "worker" in frame.columns else "evaluator"
    missing = {"task", worker_col, "label"} - set(frame.columns)
    if missing:
        raise ValueError(f"frame lacks columns {sorted(missing)}")
    df = frame[["task", worker_col, "label"]].dropna()
    t_codes, tasks = pd.factorize(df["task"], sort=True)
    w_codes, workers = pd.factorize(df[worker_col], sort=True)
    gold_s = pd.Series(gold, dtype=object) if gold is not None and not isinstance(gold, pd.Series) else gold
    label_values = df["label"]
    if gold_s is not None and len(gold_s):
        label_values = pd.concat([label_values, pd.Series(gold_s.to_numpy(), dtype=label_values.dtype)])
    classes = pd.Index(pd.unique(label_values)).sort_values()
    l_codes = classes.get_indexer(df["label"])
    T, W, K = len(tasks), len(workers), len(classes)
    if T == 0:
        empty = pd.DataFrame(columns=classes)
        return DawidSkeneResult(
            pd.Series(dtype=object, name="label"), pd.Series(dtype=float), empty, empty, 0.0, 0, True
        )

    # B[t, w*K + l] = number of times worker w gave label l on task t
    B = sp.csr_matrix((np.ones(len(df)), (t_codes, w_codes.astype(np.int64) * K + l_codes)), shape=(T, W * K))
    B.sum_duplicates()
    BT = B.T.tocsr()

    gold_idx = gold_lab = None
    if gold_s is not None and len(gold_s):
        gi = tasks.get_indexer(gold_s.index)
        ok = gi >= 0
        gold_idx = gi[ok]
        gold_lab = classes.get_indexer(gold_s.to_numpy()[ok])

    # soft majority vote init: vote counts per (task, label)
    votes = np.bincount(t_codes.astype(np.int64) * K + l_codes, minlength=T * K).reshape(T, K).astype(float)
    post = votes / votes.sum(axis=1, keepdims=True)
    if gold_idx is not None:
        post[gold_idx] = 0.0
        post[gold_idx, gold_lab] = 1.0

    converged = False
    it = 0
    loglik = float("nan")
    for it in range(1, n_iter + 1):  # noqa: B007 - it is reported
        # M-step
        priors = (post.sum(axis=0) + smoothing) / (T + K * smoothing)
        counts = (BT @ post).reshape(W, K, K).transpose(0, 2, 1)  # [w, true, observed]
        counts += smoothing
        pi = counts / counts.sum(axis=2, keepdims=True)
        log_pi = np.log(pi)
        # E-step
        ll = B @ log_pi.transpose(0, 2, 1).reshape(W * K, K)  # [t, true]
        ll += np.log(priors)
        mx = ll.max(axis=1, keepdims=True)
        p = np.exp(ll - mx)
        z = p.sum(axis=1, keepdims=True)
        new = p / z
        loglik = float((np.log(z) + mx).sum())
        if gold_idx is not None:
            new[gold_idx] = 0.0
            new[gold_idx, gold_lab] = 1.0
        delta = float(np.abs(new - post).max())
        post = new
        if delta < tol:
            converged = True
            break

    priors = (post.sum(axis=0) + smoothing) / (T + K * smoothing)
    counts = (BT @ post).reshape(W, K, K).transpose(0, 2, 1) + smoothing
    pi = counts / counts.sum(axis=2, keepdims=True)

    labels = pd.Series(classes[post.argmax(axis=1)], index=tasks, name="label")
    labels.index.name = "task"
    posteriors = pd.DataFrame(post, index=labels.index, columns=classes)
    conf_index = pd.MultiIndex.from_product([workers, classes], names=["worker", "true"])
    confusion = pd.DataFrame(pi.reshape(W * K, K), index=conf_index, columns=classes)
    confusion.columns.name = "observed"
    return DawidSkeneResult(
        labels=labels,
        priors=pd.Series(priors, index=classes, name="prior"),
        confusion=confusion,
        posteriors=posteriors,
        log_likelihood=loglik,
        n_iter=it,
        converged=converged,
    )
