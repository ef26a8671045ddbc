"""Real Label Studio exports written by other people (``tests/data/real_exports``, sources in its README).

Every file: import, ``reviewdesk metrics`` (table and ``--json``), the dashboard frames and computation, and the
export round trip -- the exported file has the same values of the same JSON types in the same key order, and
importing the export and exporting again changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.main import main
from app.models.store import Store
from app.services.dashboard import compute_dashboard, load_frames
from app.services.projects import ProjectService

CORPUS = Path(__file__).resolve().parents[1] / "data" / "real_exports"
FILES = sorted(CORPUS.glob("*.json"))


def test_the_corpus_is_there_and_documented() -> None:
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    assert len(FILES) >= 5
    for f in FILES:
        assert f.with_suffix(".xml").exists(), f"{f.name} has no labeling config"
        assert f"`{f.name}`" in readme, f"{f.name} is not cited in the README"


def _same(a: Any, b: Any, where: str = "$") -> None:
    """Equal JSON values of equal JSON types (3 is not 3.0, True is not 1), objects in the same key order."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} {a!r} vs {type(b).__name__} {b!r}"
    if isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} vs {list(b)}"
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), f"{where}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


def _annotations(task: dict[str, Any]) -> list[dict[str, Any]]:
    anns = task.get("annotations", task.get("completions"))
    return anns or []


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_real_export(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    original = json.loads(path.read_text(encoding="utf-8"))
    config = path.with_suffix(".xml").read_text(encoding="utf-8")
    data_dir = tmp_path / "data"
    store = Store.open(data_dir)
    try:
        svc = ProjectService(store)
        summary = svc.import_file(path, config, path.stem).summary
        assert summary.tasks == len(original)
        assert summary.annotations == sum(len(_annotations(t)) for t in original)
        assert summary.legacy_tasks == sum("annotations" not in t and "completions" in t for t in original)
        pid = summary.project_id

        # the export round trip: the file back, then stable
        out = tmp_path / "out.json"
        assert svc.export_file(pid, out) == len(original)
        _same(json.loads(out.read_text(encoding="utf-8")), original)
        again = svc.import_file(out, config, "again").summary
        out2 = tmp_path / "out2.json"
        svc.export_file(again.project_id, out2)
        assert out2.read_bytes() == out.read_bytes()

        # dashboard frames and computation
        frames = load_frames(store, pid)
        submitted = [a for t in original for a in _annotations(t) if not a.get("was_cancelled")]
        humans = frames.annotations[~frames.annotations["evaluator"].str.startswith("model:")]
        assert humans.groupby(["task", "evaluator"]).ngroups <= len(submitted)
        assert (humans["task"].nunique() if len(humans) else 0) == sum(
            any(not a.get("was_cancelled") for a in _annotations(t)) for t in original)
        dash = compute_dashboard(store, pid, save=False)
        if submitted:
            assert None in dash.matrices and not dash.quality.empty
            assert int(dash.quality.loc[~dash.quality["evaluator"].str.startswith("model:"), "volume"].sum()) >= 1
    finally:
        store.close()

    # reviewdesk metrics, as a person and as a pipeline
    code = main(["--data-dir", str(data_dir), "metrics", str(pid), "--json"])
    out_text, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out_text)
    assert "Traceback" not in err
    if submitted:
        assert report["per_annotator"] and all(r["volume"] >= 1 for r in report["per_annotator"])
    code = main(["--data-dir", str(data_dir), "metrics", str(pid)])
    out_text, err = capsys.readouterr()
    assert code == 0 and out_text.strip() and "Traceback" not in err


def test_what_each_file_is_there_for(tmp_path: Path) -> None:
    """The shapes the corpus was collected for are read as such (not merely without error)."""
    store = Store.open(tmp_path / "d")
    try:
        svc = ProjectService(store)

        def imp(name: str) -> int:
            p = CORPUS / f"{name}.json"
            return svc.import_file(p, p.with_suffix(".xml").read_text(encoding="utf-8"), name).summary.project_id

        legacy = imp("legacy_completions_qanta")
        anns = [a for i in (0, 1, 2) for a in svc.task_detail(svc.find_task(legacy, i)).annotations]
        assert [a.server_id for a in anns] == [1, 1001, 2001]
        assert anns[0].created_at == "2021-02-19T01:49:21Z" and anns[0].evaluator == "unknown"
        assert anns[1].was_cancelled and anns[2].result == () and not anns[2].was_cancelled

        nerine = imp("community_prediction_ids_drafts_nerine")
        preds = svc.task_detail(svc.find_task(nerine, 1)).predictions
        assert [(p.server_id, p.model_version, len(p.result or ())) for p in preds] == [
            (11, "llm-preannotation-v1-cleaned", 10)]
        evaluators = set(load_frames(store, nerine).annotations["evaluator"])
        assert evaluators == {"user #2", "model:llm-preannotation-v1-cleaned"}

        desafio = imp("community_object_completed_by_desafio5")
        assert [m.email for m in svc.members(desafio)] == ["desafio5@example.com"]

        ent = imp("enterprise_history_converter")
        assert [a.evaluator for a in svc.task_detail(svc.find_task(ent, 6141)).annotations] == ["sergei@heartex.e2e"]
    finally:
        store.close()
