"""Accepting a prediction the export listed by id only (no result in the store) records the decision but folds
no ground truth: there is no result to take as the reference (issue 12: mypy found the None result)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from app.models.schema import GroundTruth, Prediction, Task
from app.models.store import Store
from app.services.decisions import DecisionRequest, DecisionService
from app.services.projects import ProjectService

CONFIG = ('<View><Text name="t" value="$text"/><Choices name="c" toName="t">'
          '<Choice value="a"/><Choice value="b"/></Choices></View>')


def test_accepting_an_ids_only_prediction_folds_no_ground_truth(tmp_path: Path) -> None:
    export = tmp_path / "export.json"
    export.write_text(json.dumps([{"id": 1, "data": {"text": "x"}, "annotations": [], "predictions": [7]}]))
    store = Store.open(str(tmp_path / "store"))
    pid = ProjectService(store).import_file(export, CONFIG, "P").summary.project_id
    with store.session() as s:
        tid, prid, result = s.execute(select(Task.id, Prediction.id, Prediction.result)
                                      .join(Prediction, Prediction.task_id == Task.id)).one()
    assert result is None
    svc = DecisionService(store)
    recorded = svc.record(pid, [DecisionRequest(tid, "accept", prediction_id=prid)], reviewer="rita")
    assert [d.verdict for d in recorded.decisions] == ["accept"]
    with store.session() as s:
        assert s.scalars(select(GroundTruth)).all() == []
    assert svc.ground_truth(tid) is None  # no reference (it raised TypeError on a None result before)
