"""The push webhook against a real Label Studio: one signed summary listing exactly the pushed decisions, and a
push whose receiver never answers still returns (docs/adr/0016)."""

from __future__ import annotations

import json
import threading

import pytest

from app.services import webhook
from tests.integration.helpers import decide, server_uuid_counts, states
from tests.webhookrecv import receiver

pytestmark = pytest.mark.integration
SECRET = "integration-webhook-secret"


def test_a_push_sends_one_signed_summary_of_exactly_the_pushed_decisions(ls, sync_service, rd_store,
                                                                          make_project):
    ls_pid = make_project(5)
    sync_service.pull(ls.url, ls_pid)
    t = [x["id"] for x in ls.tasks(ls_pid)]
    with receiver() as rx:
        webhook.configure(rd_store.data_dir, rx.url, SECRET)
        u_accept = decide(rd_store, ls_pid, t[0], "accept", 0)
        u_reject = decide(rd_store, ls_pid, t[1], "reject", 1, reason="Wrong label")
        u_esc = decide(rd_store, ls_pid, t[2], "escalate", 0, comment="ask an expert")
        u_skip = decide(rd_store, ls_pid, t[3], "skip", 0)  # local only: never pushed, never in a summary
        out = sync_service.push()
        assert out.synced == 3 and out.failed == 0
        got = rx.wait_for(1)
        assert webhook.settle(rd_store.data_dir, 30)
        # pushing again pushes nothing: no second summary
        assert sync_service.push().synced == 0
        assert webhook.settle(rd_store.data_dir, 30)
    assert len(rx.got) == 1
    req = got[0]
    assert webhook.verify(SECRET, req.body, req.headers[webhook.SIGNATURE_HEADER])
    body = json.loads(req.body)
    assert req.headers["Idempotency-Key"] == body["id"]
    assert body["server"] == ls.url.rstrip("/") and body["count"] == 3
    pushed = {d["uuid"]: d for d in body["decisions"]}
    assert set(pushed) == {u_accept, u_reject, u_esc} and u_skip not in pushed
    assert set(server_uuid_counts(ls, ls_pid)) == set(pushed)  # the summary = what is on the server
    assert {u: d["verdict"] for u, d in pushed.items()} == {u_accept: "accept", u_reject: "reject",
                                                            u_esc: "escalate"}
    assert [pushed[u]["task"] for u in (u_accept, u_reject, u_esc)] == t[:3]
    assert {d["project"] for d in body["decisions"]} == {ls_pid}
    assert {d["reviewer"] for d in body["decisions"]} == {"rev@example.com"}
    assert states(rd_store)[u_skip] == "local"
    assert webhook.status(rd_store.data_dir).delivered == 1


def test_a_push_returns_while_the_receiver_never_answers(ls, sync_service, rd_store, make_project):
    ls_pid = make_project(2)
    sync_service.pull(ls.url, ls_pid)
    t = [x["id"] for x in ls.tasks(ls_pid)]
    hold = threading.Event()
    with receiver(hold=hold) as rx:
        webhook.configure(rd_store.data_dir, rx.url, SECRET)
        u = decide(rd_store, ls_pid, t[0], "accept", 0)
        out = sync_service.push()  # returns although the receiver holds its request open
        assert out.synced == 1 and states(rd_store)[u] == "synced"
        assert rx.arrived.wait(30) and not hold.is_set()
        assert webhook.items(rd_store.data_dir)[0].state == "pending"
        hold.set()
        assert webhook.settle(rd_store.data_dir, 30)
