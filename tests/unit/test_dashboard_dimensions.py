"""The dashboard's per-dimension annotator tables equal ``annotator_quality(..., controls=[c])``; with a single
dimension the pooled table is reused instead of computed twice (issue 14) and still equals it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from app.metrics import annotator_quality
from app.models.store import Store
from app.services import dashboard
from app.services.dashboard import compute_dashboard, drift_series
from app.services.decisions import DecisionRequest, DecisionService
from tests.unit.test_reference_frames import CONFIG, REVIEWER, _annotation, _decide_all, _export, _import

SENTIMENT_ONLY = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text" choice="single">
    <Choice value="pos"/><Choice value="neg"/><Choice value="neutral"/>
  </Choices>
</View>"""


@pytest.mark.parametrize("config", [SENTIMENT_ONLY, CONFIG], ids=["one dimension", "three dimensions"])
def test_each_dimension_view_equals_its_own_quality_table(store: Store, tmp_path: Path, config: str) -> None:
    export = _export()
    if config == SENTIMENT_ONLY:  # the export's items of the one dimension only
        for t in export:
            for a in [*t["annotations"], *t["predictions"]]:
                a["result"] = [i for i in a["result"] if i["from_name"] == "sentiment"]
    pid = _import(store, tmp_path, export, config)
    if config == CONFIG:
        _decide_all(store, pid)  # ground truth and decisions: accuracy, rates and drift are not empty
    else:
        for sid, user in ((10, 2), (11, 3), (12, 2), (13, 4)):
            tid, aid = _annotation(store, pid, sid, user)
            DecisionService(store).record(pid, [DecisionRequest(tid, "accept", annotation_id=aid)], reviewer=REVIEWER)
        tid, aid = _annotation(store, pid, 15, 3)
        DecisionService(store).record(pid, [DecisionRequest(tid, "reject", annotation_id=aid, reason="no")],
                                      reviewer=REVIEWER)
    with dashboard._CACHE_LOCK:
        dashboard._CACHE.clear()
    d = compute_dashboard(store, pid, save=False)
    f = dashboard.load_frames(store, pid)
    gt = f.ground_truth if not f.ground_truth.empty else None
    dec = f.decisions if not f.decisions.empty else None
    assert set(d.quality_by_control) == set(f.controls)
    for c in f.controls:
        ref = annotator_quality(f.annotations, gt, f.params, dec, controls=[c])
        view = d.quality_view(c)
        pd.testing.assert_frame_equal(view.table, ref.table)
        pd.testing.assert_frame_equal(view.model_agreement, ref.model_agreement)
        assert view.drift_series == drift_series(ref.drift)
        assert view.table is not d.quality  # its own copy: the pooled table is not shared
    pooled = annotator_quality(f.annotations, gt, f.params, dec)
    pd.testing.assert_frame_equal(d.quality, pooled.table)
    assert d.drift_series == drift_series(pooled.drift)
