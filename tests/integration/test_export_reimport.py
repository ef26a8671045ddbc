"""The ground-truth export in Label Studio JSON imports back into a real Label Studio (issue 16, point 3).

A project pulled from the server is reviewed here (an accept, a fix, an accept undone); ``reviewdesk export
--what ground-truth --format ls-json`` is imported into a NEW Label Studio project through its import API, and
the tasks read back carry exactly the exported references, flagged ``ground_truth``, and nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app import api
from app.services.decisions import DecisionService
from tests.integration.conftest import DIMENSIONS
from tests.integration.helpers import decide, fixed, local_project

pytestmark = pytest.mark.integration


def _items(result: list[dict[str, Any]]) -> list[tuple[str, str, str, Any]]:
    """What a result says (Label Studio re-ids nothing here, but compare on content, not on item ids)."""
    return [(r["from_name"], r["to_name"], r["type"], r["value"]) for r in result]


def test_ground_truth_export_imports_into_label_studio(ls, sync_service, rd_store, make_project,
                                                       tmp_path: Path) -> None:
    ls_pid = make_project(6)
    sync_service.pull(ls.url, ls_pid)
    t = [x["id"] for x in ls.tasks(ls_pid)]
    decide(rd_store, ls_pid, t[0], "accept", 0)
    decide(rd_store, ls_pid, t[1], "fix", 1, result=fixed("Shipping"))
    undone = decide(rd_store, ls_pid, t[2], "accept", 1)
    DecisionService(rd_store).retract(undone, reviewer="rev@example.com")
    pid = local_project(rd_store, ls_pid)

    out = tmp_path / "gt.json"
    res = api.export(rd_store, pid, out, what="ground-truth", fmt="ls-json")
    exported = json.loads(out.read_text(encoding="utf-8"))
    refs = {r.server_id: r for r in api.export_table(rd_store, pid, "ground-truth").itertuples(index=False)}
    assert res.rows == len(exported) == len(refs) and {t[0], t[1]} <= set(refs) and t[2] not in refs

    new_pid = ls.create_project(f"GT re-import {ls_pid}", DIMENSIONS["category"])
    ls.import_tasks(new_pid, exported)
    back = ls.tasks(new_pid)
    assert len(back) == len(exported)
    by_text = {json.dumps(x["data"], sort_keys=True): x for x in back}
    for task in exported:
        got = by_text[json.dumps(task["data"], sort_keys=True)]
        anns = [a for a in got["annotations"] if not a.get("was_cancelled")]
        assert len(anns) == 1 and anns[0]["ground_truth"] is True
        assert _items(anns[0]["result"]) == _items(task["annotations"][0]["result"])
        assert _items(anns[0]["result"]) == _items(json.loads(refs[task["id"]].result))
    fixed_task = by_text[json.dumps(next(x for x in exported if x["id"] == t[1])["data"], sort_keys=True)]
    assert fixed_task["annotations"][0]["result"][0]["value"]["choices"] == ["Shipping"]
