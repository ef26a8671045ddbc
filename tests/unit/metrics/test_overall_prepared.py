"""The overall matrix's counts (distinct tasks shared in any control, and met by a consensus result) come
from the controls' prepared rows (issue 14) -- the same numbers as from the annotations frame, on store
frames with ground truth, models, several control types and the automatic Dawid-Skene column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.metrics import agreement_matrices
from app.metrics import matrix as matrix_mod
from app.models.store import Store
from app.services.dashboard import load_frames
from app.services.demo import ensure_demo
from app.services.projects import ProjectService

REAL = Path(__file__).resolve().parents[2] / "data" / "real_exports"


def _both(store: Store, pid: int, monkeypatch: pytest.MonkeyPatch) -> None:
    f = load_frames(store, pid)
    if f.annotations.empty:
        return
    gt = f.ground_truth if not f.ground_truth.empty else None
    real = matrix_mod._overall

    def from_frame(*args: Any, **kwargs: Any) -> Any:
        kwargs.pop("prepared", None)
        kwargs.pop("ds_tasks", None)
        return real(*args, **kwargs)

    for mode in ("pairwise", "consensus"):
        fast = agreement_matrices(f.annotations, gt, f.params, mode=mode)[None]
        with monkeypatch.context() as patch:
            patch.setattr(matrix_mod, "_overall", from_frame)
            slow = agreement_matrices(f.annotations, gt, f.params, mode=mode)[None]
        assert fast.columns == slow.columns and fast.rows == slow.rows
        np.testing.assert_array_equal(fast.counts, slow.counts)
        np.testing.assert_array_equal(fast.matrix, slow.matrix)


def test_demo_project(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    _both(store, ensure_demo(store), monkeypatch)


@pytest.mark.parametrize("path", sorted(REAL.glob("*.json")), ids=lambda p: p.stem)
def test_real_exports(path: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    config = path.with_suffix(".xml").read_text(encoding="utf-8")
    pid = ProjectService(store).import_file(path, config, path.stem).summary.project_id
    _both(store, pid, monkeypatch)
