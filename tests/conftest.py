from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "app" / "resources" / "demo"

SMALL_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text" choice="single">
    <Choice value="pos" hotkey="1"/><Choice value="neg" hotkey="2"/><Choice value="neutral" hotkey="3"/>
  </Choices>
  <Labels name="ner" toName="text"><Label value="ORG"/><Label value="PER"/></Labels>
  <Rating name="quality" toName="text" maxRating="5"/>
</View>"""


def choice(label: str, name: str = "sentiment") -> dict:
    return {"id": f"r-{label}", "from_name": name, "to_name": "text", "type": "choices",
            "value": {"choices": [label]}}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def store(data_dir: Path):
    from app.models.store import Store

    s = Store.open(data_dir)
    yield s
    s.close()


@pytest.fixture
def small_export() -> list[dict]:
    return [
        {"id": 11, "data": {"text": "Acme charged me twice"}, "meta": {"source": "mail"}, "inner_id": 1,
         "annotations": [
             {"id": 101, "completed_by": {"id": 2, "email": "ann@example.com", "first_name": "Ann"},
              "result": [choice("neg"), {"id": "s1", "from_name": "ner", "to_name": "text", "type": "labels",
                                         "value": {"start": 0, "end": 4, "text": "Acme", "labels": ["ORG"]}}],
              "ground_truth": False, "lead_time": 12.5, "created_at": "2026-10-01T10:00:00Z",
              "unknown_annotation_key": {"nested": [1, 2]}},
             {"id": 102, "completed_by": 3, "result": [choice("neutral")], "ground_truth": True},
         ],
         "predictions": [{"id": 501, "model_version": "v1", "score": 0.8, "result": [choice("neg")],
                          "extra_pred": "x"}],
         "custom_task_key": [1, {"a": None}]},
        {"id": 12, "data": {"text": "Great service"}, "annotations": [
            {"id": 103, "completed_by": 2, "result": [choice("pos")]}], "predictions": [502, 503]},
    ]
