"""Synthetic Label Studio annotation frames for the metrics tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

CONTROLS = {
    "sentiment": "choices",
    "topics": "choices",
    "stars": "rating",
    "amount": "number",
    "ner": "labels",
    "bbox": "rectanglelabels",
    "note": "textarea",
}
PARAMS = {
    "topics": {"choice": "multiple"},
    "stars": {"maxRating": 5},
    "amount": {"min": 0, "max": 20},
}


def _result(ctype: str, rng: np.random.Generator, truth: int) -> list[dict]:
    if rng.random() < 0.08:
        return []
    agree = rng.random() < 0.6
    v = truth if agree else int(rng.integers(0, 4))
    if ctype == "choices":
        return [{"type": "choices", "value": {"choices": [f"c{v}"]}}]
    if ctype == "rating":
        return [{"type": "rating", "value": {"rating": 1 + v}}]
    if ctype == "number":
        return [{"type": "number", "value": {"number": float(v * 3 + (0 if agree else rng.integers(0, 3)))}}]
    if ctype == "labels":
        out = []
        for k in range(int(rng.integers(1, 3))):
            s = 10 * k + v + int(rng.integers(0, 2))
            out.append(
                {"type": "labels", "value": {"start": s, "end": s + 5, "labels": [["ORG", "PER"][v % 2]]}}
            )
        return out
    if ctype == "rectanglelabels":
        return [
            {
                "type": "rectanglelabels",
                "original_width": 200,
                "original_height": 100,
                "value": {
                    "x": 10.0 + v + float(rng.integers(0, 3)),
                    "y": 20.0,
                    "width": 30.0,
                    "height": 20.0,
                    "rotation": float(rng.choice([0, 0, 15])),
                    "rectanglelabels": [["car", "bus"][int(rng.random() < 0.2)]],
                },
            }
        ]
    if ctype == "textarea":
        return [
            {
                "type": "textarea",
                "value": {"text": [["good", "goodish", "bad", "meh"][v] + "x" * int(rng.integers(0, 3))]},
            }
        ]
    raise AssertionError(ctype)


def make_frames(seed: int = 0, n_tasks: int = 30, humans: int = 5, models: int = 1, p_annot: float = 0.6):
    rng = np.random.default_rng(seed)
    evs = [f"ann{i}@x.org" for i in range(humans)] + [f"model:v{i}" for i in range(models)]
    rows, gt_rows = [], []
    for t in range(n_tasks):
        truth = {c: int(rng.integers(0, 4)) for c in CONTROLS}
        for e in evs:
            if rng.random() > p_annot:
                continue
            for c, ctype in CONTROLS.items():
                if rng.random() < 0.1:
                    continue  # control not annotated -> no row
                rows.append(
                    {
                        "task": 100 + t,
                        "evaluator": e,
                        "control": c,
                        "type": ctype,
                        "result": _result(ctype, rng, truth[c]),
                        "lead_time": float(rng.uniform(5, 60)),
                    }
                )
        if rng.random() < 0.5:
            for c, ctype in CONTROLS.items():
                gt_rows.append(
                    {"task": 100 + t, "control": c, "type": ctype, "result": _result(ctype, rng, truth[c])}
                )
    return pd.DataFrame(rows), pd.DataFrame(gt_rows)


@pytest.fixture(params=[0, 1, 2])
def frames(request):
    return make_frames(seed=request.param)
