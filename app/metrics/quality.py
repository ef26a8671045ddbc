"""Per-annotator quality: agreement, accuracy, decisions, speed, drift and low-effort signals.

Inputs follow the contract of :mod:`app.metrics.matrix` (``annotations``, ``ground_truth``, ``params``);
``lead_time`` (seconds) and ``created_at`` columns are used when present. ``decisions`` is a frame with
columns ``evaluator`` (whose annotation was judged) and ``verdict`` (``accept``, ``fix``, ``reject``,
``escalate``, ``skip``) holding the *effective* decisions (retracted ones removed).

An evaluator is never scored against a reference that is its own result (``source_evaluator`` of the
ground-truth frame, see :mod:`app.metrics.matrix`): that task is out of its accuracy and drift, and still in
its volume, agreement, speed and entropy.

Scores are pooled over controls: every (task, control) a pair shares is one comparison, so agreement
is overlap-weighted (evaluators who share more work weigh more).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from app.metrics.matrix import MODEL_PREFIX, _gt_scores, _pair_sums, _prepare, _setup

__all__ = ["AnnotatorQuality", "annotator_quality", "cusum_lower", "wilson_interval"]


@dataclass(frozen=True, eq=False)
class AnnotatorQuality:
    """``table``: one row per evaluator (see :func:`annotator_quality`); ``model_agreement``: evaluators x
    model versions (mean score of the row scored with the model as reference); ``drift``: one row per
    (evaluator, ground-truth task) in time order with ``score``, ``rolling_accuracy``, ``cusum`` and
    ``alarm``."""

    table: pd.DataFrame
    model_agreement: pd.DataFrame
    drift: pd.DataFrame


def wilson_interval(
    successes: object, n: object, z: float = 1.959963984540054
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a proportion (vectorised; ``nan`` where ``n == 0``).

    ``successes`` may be fractional (sums of [0, 1] scores)."""
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        z2 = z * z
        den = 1.0 + z2 / n
        center = (p + z2 / (2 * n)) / den
        half = z * np.sqrt(np.clip(p * (1 - p), 0, None) / n + z2 / (4 * n * n)) / den
        lo = np.where(n > 0, np.clip(center - half, 0.0, 1.0), np.nan)
        hi = np.where(n > 0, np.clip(center + half, 0.0, 1.0), np.nan)
    return lo, hi


def cusum_lower(x: pd.Series, groups: pd.Series, baseline: pd.Series, k: float) -> pd.Series:
    """One-sided lower CUSUM per group: ``S_t = max(0, S_{t-1} + (baseline - x_t - k))``, ``S_0 = 0``.

    Vectorised by the closed form ``S_t = C_t - min(0, min_{s<=t} C_s)`` with ``C`` the cumulative sum.
    """
    z = baseline - x - k
    c = z.groupby(groups, sort=False).cumsum()
    low = c.groupby(groups, sort=False).cummin().clip(upper=0.0)
    return c - low


def annotator_quality(
    annotations: pd.DataFrame,
    ground_truth: pd.DataFrame | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    decisions: pd.DataFrame | None = None,
    *,
    controls: Sequence[str] | None = None,
    evaluators: Sequence[str] | None = None,
    window: int = 20,
    cusum_k: float = 0.05,
    cusum_h: float = 3.0,
    fast_ratio: float = 0.5,
    entropy_threshold: float = 0.3,
    min_volume: int = 10,
) -> AnnotatorQuality:
    """Quality indicators per evaluator.

    ``table`` columns: ``evaluator``, ``is_model``, ``volume`` (tasks annotated), ``agreement`` and
    ``agreement_n`` (mean score against the other *human* evaluators on shared (task, control) pairs),
    ``accuracy``, ``accuracy_n``, ``accuracy_low``, ``accuracy_high`` (mean score against ground truth,
    95 % Wilson interval), ``n_decisions``, ``accept_rate``, ``fix_rate``, ``reject_rate`` (shares of all
    decisions on the evaluator's work), ``median_lead_time`` (seconds per task), ``speed_ratio`` (own
    median / median of the human peers' medians), ``answer_entropy`` (entropy of the evaluator's answers
    normalised by log of the control's number of distinct answers, averaged over controls weighted by
    volume), ``drift_alarm`` (lower CUSUM of ground-truth scores against the evaluator's first ``window``
    scores exceeded ``cusum_h``), ``fast_flag`` (``speed_ratio < fast_ratio``), ``low_entropy_flag``
    (``answer_entropy < entropy_threshold``), ``low_effort`` (either flag). Flags need ``min_volume``
    tasks.
    """
    ev_index, task_index, all_controls = _setup(annotations, ground_truth, evaluators)
    ctl_names = list(controls) if controls is not None else all_controls
    E = len(ev_index)
    names = [str(e) for e in ev_index]
    is_model = np.array([n.startswith(MODEL_PREFIX) for n in names])
    sums = np.zeros((E, E))
    counts = np.zeros((E, E))
    gt_parts: list[pd.DataFrame] = []
    ent_parts: list[pd.DataFrame] = []
    for c in ctl_names:
        ctl = _prepare(annotations, ground_truth, params, c, ev_index, task_index)
        s, n = _pair_sums(ctl, E)
        sums += s
        counts += n
        g = _gt_scores(ctl)
        ok = ~np.isnan(g)
        gt_parts.append(
            pd.DataFrame(
                {
                    "ev": ctl.ev[ok],
                    "task": task_index.to_numpy()[ctl.task[ok]],
                    "row": ctl.frame_index[ok],
                    "score": g[ok],
                }
            )
        )
        if ctl.n_codes >= 2 and ctl.code.size:
            vc = pd.DataFrame({"ev": ctl.ev, "code": ctl.code}).value_counts().rename("n").reset_index()
            tot = vc.groupby("ev")["n"].transform("sum")
            p = vc["n"] / tot
            h = (-(p * np.log(p))).groupby(vc["ev"]).sum() / np.log(ctl.n_codes)
            vol = vc.groupby("ev")["n"].sum()
            ent_parts.append(
                pd.DataFrame({"ev": h.index, "h": h.to_numpy(), "w": vol.reindex(h.index).to_numpy()})
            )

    human = ~is_model
    with np.errstate(invalid="ignore", divide="ignore"):
        hs = (sums * human[None, :]).sum(axis=1) - np.where(human, np.diag(sums), 0.0)
        hn = (counts * human[None, :]).sum(axis=1) - np.where(human, np.diag(counts), 0.0)
        agreement = np.where(hn > 0, hs / np.where(hn > 0, hn, 1), np.nan)
        model_cols = np.flatnonzero(is_model)
        model_agreement = pd.DataFrame(
            np.where(
                counts[:, model_cols] > 0, sums[:, model_cols] / np.maximum(counts[:, model_cols], 1), np.nan
            ),
            index=pd.Index(names, name="evaluator"),
            columns=[names[j] for j in model_cols],
        )
        for j, col in zip(model_cols, model_agreement.columns, strict=True):
            model_agreement.loc[names[j], col] = np.nan

    gt = (
        pd.concat(gt_parts, ignore_index=True)
        if gt_parts
        else pd.DataFrame(columns=["ev", "task", "row", "score"])
    )
    acc_s = np.bincount(gt["ev"].astype(np.int64), weights=gt["score"].astype(float), minlength=E)
    acc_n = np.bincount(gt["ev"].astype(np.int64), minlength=E)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(acc_n > 0, acc_s / np.maximum(acc_n, 1), np.nan)
    lo, hi = wilson_interval(acc_s, acc_n)

    sub = annotations[annotations["evaluator"].isin(ev_index)]
    per_task = sub.drop_duplicates(["task", "evaluator"], keep="last")
    volume = per_task.groupby("evaluator").size().reindex(names).fillna(0).astype(int).to_numpy()

    table = pd.DataFrame(
        {
            "evaluator": names,
            "is_model": is_model,
            "volume": volume,
            "agreement": agreement,
            "agreement_n": hn.astype(np.int64),
            "accuracy": accuracy,
            "accuracy_n": acc_n.astype(np.int64),
            "accuracy_low": lo,
            "accuracy_high": hi,
        }
    )

    # decisions
    verdicts = ("accept", "fix", "reject")
    if decisions is not None and len(decisions):
        d = decisions[decisions["evaluator"].isin(ev_index)]
        ct = pd.crosstab(d["evaluator"], d["verdict"].astype(str).str.lower()).reindex(names).fillna(0)
        n_dec = ct.sum(axis=1).to_numpy()
        table["n_decisions"] = n_dec.astype(np.int64)
        for v in verdicts:
            col = ct[v].to_numpy() if v in ct.columns else np.zeros(E)
            with np.errstate(invalid="ignore", divide="ignore"):
                table[f"{v}_rate"] = np.where(n_dec > 0, col / np.maximum(n_dec, 1), np.nan)
    else:
        table["n_decisions"] = 0
        for v in verdicts:
            table[f"{v}_rate"] = np.nan

    # speed
    if "lead_time" in per_task.columns:
        med = per_task.groupby("evaluator")["lead_time"].median().reindex(names).to_numpy(dtype=float)
    else:
        med = np.full(E, np.nan)
    peers = np.nanmedian(med[human]) if np.isfinite(med[human]).any() else np.nan
    table["median_lead_time"] = med
    with np.errstate(invalid="ignore", divide="ignore"):
        table["speed_ratio"] = med / peers if peers and np.isfinite(peers) and peers > 0 else np.nan

    # entropy
    if ent_parts:
        ent = pd.concat(ent_parts, ignore_index=True)
        ent["hw"] = ent["h"] * ent["w"]
        g = ent.groupby("ev")
        h = (g["hw"].sum() / g["w"].sum()).reindex(range(E))
        table["answer_entropy"] = h.to_numpy()
    else:
        table["answer_entropy"] = np.nan

    # drift on ground-truth tasks
    drift = _drift(gt, annotations, names, window, cusum_k, cusum_h)
    alarms = drift.groupby("evaluator")["alarm"].any() if len(drift) else pd.Series(dtype=bool)
    table["drift_alarm"] = alarms.reindex(names).fillna(False).astype(bool).to_numpy()

    enough = table["volume"].to_numpy() >= min_volume
    table["fast_flag"] = enough & (table["speed_ratio"].to_numpy() < fast_ratio)
    table["low_entropy_flag"] = enough & (table["answer_entropy"].to_numpy() < entropy_threshold)
    table["low_effort"] = table["fast_flag"] | table["low_entropy_flag"]
    return AnnotatorQuality(table=table, model_agreement=model_agreement, drift=drift)


def _times(t: pd.Series) -> np.ndarray:
    """``t.to_numpy()``: for time-zone-aware times an object array of ``Timestamp``s, built from the few
    distinct times (one ``Timestamp`` per distinct value, shared) instead of one per row."""
    if not isinstance(t.dtype, pd.DatetimeTZDtype) or len(t) == 0:
        plain: np.ndarray = t.to_numpy()
        return plain
    codes, uniq = pd.factorize(t)
    objs = np.empty(len(uniq) + 1, dtype=object)
    objs[:-1] = uniq.to_numpy()
    objs[-1] = pd.NaT  # code -1: a missing time, as to_numpy() gives it
    out: np.ndarray = objs[codes]
    return out


def _drift(
    gt: pd.DataFrame,
    annotations: pd.DataFrame,
    names: list[str],
    window: int,
    k: float,
    h: float,
) -> pd.DataFrame:
    cols = ["evaluator", "task", "time", "score", "rolling_accuracy", "cusum", "alarm"]
    if gt.empty:
        return pd.DataFrame(columns=cols)
    if "created_at" in annotations.columns:
        gt = gt.assign(time=_times(pd.to_datetime(annotations.loc[gt["row"].to_numpy(), "created_at"])))
    else:
        gt = gt.assign(time=gt["task"].to_numpy())
    per = (
        gt.groupby(["ev", "task"], sort=False)
        .agg(score=("score", "mean"), time=("time", "min"))
        .reset_index()
    )
    per = per.sort_values(["ev", "time", "task"], kind="stable").reset_index(drop=True)
    g = per.groupby("ev", sort=False)["score"]
    per["rolling_accuracy"] = g.transform(lambda s: s.rolling(window, min_periods=1).mean())
    pos = per.groupby("ev", sort=False).cumcount()
    base = per["score"].where(pos < window).groupby(per["ev"], sort=False).transform("mean")
    n_ev = per.groupby("ev", sort=False)["score"].transform("size")
    per["cusum"] = cusum_lower(per["score"], per["ev"], base, k)
    per["alarm"] = (per["cusum"] > h) & (n_ev > window)
    per["evaluator"] = [names[i] for i in per["ev"]]
    return per[cols].reset_index(drop=True)
