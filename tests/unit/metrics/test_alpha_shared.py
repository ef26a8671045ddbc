"""``control_alpha(..., shared=True)`` takes the coders' rows from the pairwise preparation instead of keying
the results again (issue 14): the same alpha as the stand-alone call, on store frames with ground truth,
models (not coders) and several control types."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from app.metrics import agreement_matrices, control_alpha, shared_preparation
from app.models.store import Store
from app.services.dashboard import MODEL_PREFIX, load_frames
from app.services.demo import ensure_demo
from app.services.projects import ProjectService

REAL = Path(__file__).resolve().parents[2] / "data" / "real_exports"


def _same_alphas(store: Store, pid: int) -> int:
    f = load_frames(store, pid)
    ann, params = f.annotations, f.params
    gt = f.ground_truth if not f.ground_truth.empty else None
    humans = [e for e in dict.fromkeys(ann["evaluator"]) if not str(e).startswith(MODEL_PREFIX)]
    checked = 0
    for c in f.controls:
        alone = control_alpha(ann, params, c, humans)
        with shared_preparation():
            agreement_matrices(ann, gt, params)
            shared = control_alpha(ann, params, c, humans, shared=True, ground_truth=gt)
        if alone is None or shared is None:
            assert alone is shared, c
        else:
            assert math.isclose(alone, shared, rel_tol=0, abs_tol=1e-12), (c, alone, shared)
            checked += 1
    return checked


def test_demo_project(store: Store) -> None:
    assert _same_alphas(store, ensure_demo(store)) > 0


@pytest.mark.parametrize("path", sorted(REAL.glob("*.json")), ids=lambda p: p.stem)
def test_real_exports(path: Path, store: Store) -> None:
    config = path.with_suffix(".xml").read_text(encoding="utf-8")
    pid = ProjectService(store).import_file(path, config, path.stem).summary.project_id
    _same_alphas(store, pid)


def test_a_model_is_no_coder(store: Store) -> None:
    """The demo has model predictions: leaving the coders out of the shared call would count them."""
    f = load_frames(store, ensure_demo(store))
    ann, params = f.annotations, f.params
    gt = f.ground_truth if not f.ground_truth.empty else None
    assert ann["evaluator"].str.startswith(MODEL_PREFIX).any()
    humans = [e for e in dict.fromkeys(ann["evaluator"]) if not str(e).startswith(MODEL_PREFIX)]
    differs = False
    for c in f.controls:
        with shared_preparation():
            agreement_matrices(ann, gt, params)
            mine = control_alpha(ann, params, c, humans, shared=True, ground_truth=gt)
            everyone = control_alpha(ann, params, c, None, shared=True, ground_truth=gt)
        differs |= mine != everyone
    assert differs
