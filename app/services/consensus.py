"""Dawid-Skene consensus label and posterior confidence per task and control (Qt-free), for queues and exports.

The consensus is fitted on the human annotators' answers of each categorical control (single choices,
pairwise, taxonomy, ratings) with the published Dawid-Skene defaults (:func:`app.metrics.dawid_skene_consensus`);
a task needs two human answers. The same frames feed the dashboard's ``Consensus (Dawid-Skene)`` column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from app.models.store import Store
from app.services.dashboard import consensus_reference, load_frames

__all__ = ["ConsensusLabel", "consensus_labels", "consensus_records"]

COLUMNS = ["task", "control", "label", "confidence", "n_answers", "result"]


@dataclass(frozen=True)
class ConsensusLabel:
    task: int  # local task id
    control: str
    label: str  # readable answer ("Billing", "Billing, Other" for a taxonomy path, "4" for a rating)
    confidence: float  # posterior probability of that answer, in (0, 1]
    n_answers: int  # human answers the task has on that control
    result: tuple[Any, ...]  # the LS result items of the consensus answer (as one annotator gave them)


def consensus_labels(store: Store, project_id: int) -> pd.DataFrame:
    """One row per (task, categorical control) with a consensus: ``task, control, label, confidence,
    n_answers, result``, sorted by task then control. Empty (same columns) when there is none.

    ``LookupError`` for an unknown project (as :func:`app.services.dashboard.load_frames`)."""
    frames = load_frames(store, project_id)
    ref = consensus_reference(frames)
    if ref.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    out = ref[COLUMNS].sort_values(["task", "control"], kind="stable").reset_index(drop=True)
    out["task"] = out["task"].astype("int64")
    return out


def consensus_records(store: Store, project_id: int) -> list[ConsensusLabel]:
    """:func:`consensus_labels` as frozen records (lowest confidence first: the tasks to look at)."""
    df = consensus_labels(store, project_id)
    recs = [ConsensusLabel(int(r.task), str(r.control), str(r.label), float(r.confidence), int(r.n_answers),
                           tuple(r.result)) for r in df.itertuples(index=False)]
    return sorted(recs, key=lambda r: (r.confidence, r.task, r.control))
