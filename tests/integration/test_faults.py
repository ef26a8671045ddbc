"""Faults injected for real between ReviewDesk and Label Studio (loopback proxy): after recovery every
decision exists on the server exactly once."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from app.services.sync import SyncService
from app.sync.client import LSClient
from app.sync.errors import NotJSONError, ServerError
from tests.integration.faultproxy import FaultProxy
from tests.integration.helpers import decide, fixed, server_uuid_counts, states

pytestmark = pytest.mark.integration
LS_BACKENDS = ("sqlite", "postgres")  # teams run Label Studio on PostgreSQL (issue 17)


@pytest.fixture
def proxy(ls):
    parts = urlsplit(ls.url)
    p = FaultProxy(parts.hostname, parts.port)
    yield p
    p.close()


def via(proxy: FaultProxy, store, token: str) -> SyncService:
    def factory(url, tok, ca):
        return LSClient(url, tok, ca_bundle=ca, timeout=(2.0, 2.0), retries=2, backoff=0.05)

    svc = SyncService(store, client_factory=factory)
    svc.login(proxy.url, token)
    return svc


def test_drops_delays_and_502_during_push_then_exactly_once(ls, rd_store, proxy, make_project):
    ls_pid = make_project(8)
    svc = via(proxy, rd_store, ls.token)
    svc.pull(proxy.url, ls_pid)
    tasks = ls.tasks(ls_pid)
    t = [x["id"] for x in tasks]
    plan = [("accept", t[0], {}), ("fix", t[1], {"result": fixed("Shipping")}),
            ("fix", t[2], {"result": fixed("Account")}), ("reject", t[3], {"reason": "Wrong label"}),
            ("escalate", t[4], {"comment": "expert please"}), ("accept", t[5], {}),
            ("fix", t[6], {"result": fixed("Other")}), ("reject", t[7], {"comment": "off-topic"})]
    uuids = [decide(rd_store, ls_pid, tid, verdict, 0, **kw) for verdict, tid, kw in plan]
    # the server processes these, but the client never hears back
    proxy.add("POST", r"^/api/tasks/\d+/annotations/", "drop_after", count=2)
    proxy.add("PATCH", r"^/api/tasks/\d+/", "drop_after", count=2)
    proxy.add("PATCH", r"^/api/annotations/\d+/", "drop_after", count=1)
    # these never reach the server
    proxy.add("PATCH", r"^/api/tasks/\d+/", "drop_before", count=1)
    proxy.add("GET", r"^/api/tasks/\d+/", "drop_before", count=2)
    proxy.add("PATCH", r"^/api/tasks/\d+/", "status502", count=2)
    # answered after the client gave up (the server still does the work)
    proxy.add("GET", r"^/api/tasks/\d+/", "delay", count=2, seconds=2.6)
    proxy.add("POST", r"^/api/tasks/\d+/annotations/", "delay", count=1, seconds=2.6)

    first = svc.push(concurrency=4)
    applied = proxy.faults_applied()
    assert {f.action for f in applied} >= {"drop_after", "drop_before", "status502", "delay"}
    assert len(applied) == sum(r.count for r in proxy.rules)
    # whatever the first push managed, a second one (faults over) completes the rest
    proxy.clear()
    second = svc.push()
    assert first.synced + second.synced == len(uuids)
    assert all(states(rd_store)[u] == "synced" for u in uuids)

    assert server_uuid_counts(ls, ls_pid) == dict.fromkeys(uuids, 1)
    for (verdict, tid, kw), _u in zip(plan, uuids, strict=True):
        task = ls.task(tid)
        mine = [a for a in task["annotations"] if a["completed_by"]["id"] == ls.users["rev@example.com"]]
        if verdict == "fix":
            assert len(mine) == 1, f"task {tid}: {len(mine)} reviewer annotations"
            assert mine[0]["result"][0]["value"]["choices"] == kw["result"][0]["value"]["choices"]
            assert mine[0]["ground_truth"] is True
        else:
            assert mine == []
        if verdict == "accept":
            assert task["annotations"][0]["ground_truth"] is True


def test_proxy_pages_and_502_become_plain_errors(ls, rd_store, proxy, make_project):
    ls_pid = make_project(2)
    svc = via(proxy, rd_store, ls.token)
    proxy.add("GET", r"^/api/projects/\d+/", "html200", count=1)
    with pytest.raises(NotJSONError, match="web page"):
        svc.pull(proxy.url, ls_pid)
    proxy.add("GET", r"^/api/projects/\d+/", "status502", count=10)
    with pytest.raises(ServerError, match=r"502"):
        svc.pull(proxy.url, ls_pid)
    proxy.clear()
    assert svc.pull(proxy.url, ls_pid).report.tasks_new == 2


def test_offline_push_keeps_everything_queued(ls, rd_store, proxy, make_project):
    ls_pid = make_project(3)
    svc = via(proxy, rd_store, ls.token)
    svc.pull(proxy.url, ls_pid)
    t = [x["id"] for x in ls.tasks(ls_pid)]
    uuids = [decide(rd_store, ls_pid, tid, "accept", 1) for tid in t]
    proxy.set_down(True)
    assert not svc.check_online()
    out = svc.push()
    assert out.synced == 0 and out.reports[0][1].errors
    assert "reach" in out.reports[0][1].errors[0] or "offline" in out.reports[0][1].errors[0].lower()
    assert all(states(rd_store)[u] == "pending" for u in uuids)
    assert svc.status().pending == 3
    proxy.set_down(False)
    assert svc.check_online()
    assert svc.push().synced == 3
    assert server_uuid_counts(ls, ls_pid) == dict.fromkeys(uuids, 1)
