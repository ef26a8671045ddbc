"""The server is killed in the middle of a push and restarted: after recovery every decision exists on
the server exactly once. (Runs last: it restarts the session's server.)"""

from __future__ import annotations

import threading
import time

import pytest

from app.services.sync import SyncService
from app.sync.client import LSClient
from tests.integration.helpers import decide, fixed, server_uuid_counts, states

pytestmark = pytest.mark.integration


def test_server_killed_and_restarted_mid_push(ls, rd_store, make_project):
    ls_pid = make_project(40)
    svc = SyncService(rd_store, client_factory=lambda u, t, c: LSClient(u, t, ca_bundle=c, timeout=(2.0, 5.0),
                                                                        retries=1, backoff=0.05))
    svc.login(ls.url, ls.token)
    svc.pull(ls.url, ls_pid)
    tasks = ls.tasks(ls_pid)
    uuids = []
    for i, t in enumerate(tasks):
        if i % 3 == 0:
            uuids.append(decide(rd_store, ls_pid, t["id"], "fix", 0, result=fixed("Shipping")))
        else:
            uuids.append(decide(rd_store, ls_pid, t["id"], "accept" if i % 3 == 1 else "reject", 1))
    result: dict = {}
    pusher = threading.Thread(target=lambda: result.update(out=svc.push(concurrency=2)))
    pusher.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = sum(1 for u in uuids if states(rd_store)[u] == "synced")
        if done >= 5:
            break
        time.sleep(0.05)
    ls.server.kill()
    pusher.join(timeout=300)
    first = result["out"]
    assert 5 <= first.synced < len(uuids) and first.failed > 0
    ls.server.start()
    second = svc.push()
    assert first.synced + second.synced == len(uuids)
    assert all(states(rd_store)[u] == "synced" for u in uuids)
    assert server_uuid_counts(ls, ls_pid) == dict.fromkeys(uuids, 1)
    for i, t in enumerate(ls.tasks(ls_pid)):
        reviewer_anns = [a for a in t["annotations"] if a["completed_by"] == ls.users["rev@example.com"]]
        assert len(reviewer_anns) == (1 if i % 3 == 0 else 0)
