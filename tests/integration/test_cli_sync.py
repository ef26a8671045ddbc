"""The sync CLI against a real Label Studio: login --token-stdin, pull --json, push --json, sync, conflicts."""

from __future__ import annotations

import io
import json

import pytest

from app.cli import main
from tests.integration.helpers import decide

pytestmark = pytest.mark.integration


def run(capsys, *argv: str) -> tuple[int, dict | list | None, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    try:
        payload = json.loads(out.out.strip().splitlines()[-1]) if "--json" in argv else None
    except (ValueError, IndexError):
        payload = None
    return code, payload, out.out + out.err


def test_cli_login_pull_push_sync_conflicts(ls, tmp_path, capsys, monkeypatch, make_project):
    from app.models.store import Store

    data = str(tmp_path / "cli")
    ls_pid = make_project(4)
    monkeypatch.setattr("sys.stdin", io.StringIO(ls.token + "\n"))
    code, res, text = run(capsys, "login", ls.url, "--token-stdin", "--json", "--data-dir", data)
    assert code == 0 and res["email"] == "admin@example.com" and res["edition"] == "community"
    assert res["token_stored"] == "keyring" and ls.token not in text

    code, res, text = run(capsys, "pull", ls.url, "--project", str(ls_pid), "--json", "--data-dir", data)
    assert code == 0 and res["tasks_new"] == 4 and res["project_created"]

    store = Store.open(data)
    tasks = ls.tasks(ls_pid)
    u1 = decide(store, ls_pid, tasks[0]["id"], "accept", 0)
    u2 = decide(store, ls_pid, tasks[1]["id"], "reject", 0, reason="Wrong label")
    store.close()
    ls.call("PATCH", f"/api/annotations/{tasks[1]['annotations'][0]['id']}/", json={"result": []})

    code, res, text = run(capsys, "push", "--json", "--data-dir", data)
    assert code == 0 and res["synced"] == 1 and res["conflicts"] == 1

    code, res, text = run(capsys, "conflicts", "--json", "--data-dir", data)
    assert code == 0 and [c["uuid"] for c in res] == [u2] and res[0]["kind"] == "changed"
    code, _, text = run(capsys, "conflicts", "--keep-mine", u2, "--data-dir", data)
    assert code == 0

    code, res, text = run(capsys, "sync", "--json", "--data-dir", data)
    assert code == 0 and res["push"]["servers"][0]["synced"] == 1 and len(res["pulls"]) == 1
    assert {r["uuid"] for t in ls.tasks(ls_pid) for r in t["meta"].get("reviewdesk", {}).get("decisions", [])} \
        == {u1, u2}

    code, res, text = run(capsys, "pull", "http://127.0.0.1:9", "--project", "1", "--json", "--data-dir", data)
    assert code == 1 and "reviewdesk login" in text
