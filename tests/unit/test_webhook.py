"""Push webhook (docs/adr/0016): signature checked by a loopback receiver, retries, a durable outbox, never
blocking a push, and the secret only in the keyring."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest
from sqlalchemy import update

from app.models.audit import verify_full
from app.models.schema import AuditEvent, DecisionSync, Project, Server
from app.models.store import STORE_FILENAME, Store, now_iso
from app.services import webhook
from tests import memkeyring
from tests.webhookrecv import free_port, receiver

SECRET = "s3cr3t-webhook-value-42"


@pytest.fixture(autouse=True)
def mem_keyring(monkeypatch: pytest.MonkeyPatch) -> memkeyring.MemoryKeyring:
    monkeypatch.delenv(webhook.ENV_SECRET, raising=False)
    import keyring

    before = keyring.get_keyring()
    kr = memkeyring.install()
    yield kr
    keyring.set_keyring(before)


def _pushed_store(store: Store, n: int = 3) -> tuple[int, list[int], list[str]]:
    """The demo project attached to a server, with ``n`` pending decisions; returns (server id, ids, uuids)."""
    from app.services.decisions import DecisionRequest, DecisionService
    from app.services.demo import ensure_demo
    from app.services.projects import ProjectService

    pid = ensure_demo(store)
    with store.transaction() as s:
        srv = Server(url="http://ls.example:8080", created_at=now_iso())
        s.add(srv)
        s.flush()
        sid = srv.id
        s.execute(update(Project).where(Project.id == pid).values(server_ref=sid, server_id=77))
    ps = ProjectService(store)
    uuids = []
    for row in ps.task_page(pid, offset=0, limit=20):
        detail = ps.task_detail(row.id)
        if not detail.annotations:
            continue
        rec = DecisionService(store).record(pid, [DecisionRequest(task_id=detail.id, verdict="accept",
                                                                  annotation_id=detail.annotations[0].id)],
                                            reviewer="rev@example.com")
        uuids.append(rec.decisions[0].uuid)
        if len(uuids) == n:
            break
    return sid, webhook.pending_decision_ids(store, sid), uuids


def _mark_synced(store: Store, ids: list[int]) -> None:
    with store.transaction() as s:
        s.execute(update(DecisionSync).where(DecisionSync.decision_id.in_(ids)).values(state="synced"))


@pytest.mark.parametrize("url", ["ftp://example.com/x", "example.com/hook", "http://", "https://u:p@host/x",
                                 "http://host/a b", "javascript:alert(1)", "http://host:99999/"])
def test_only_plain_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(webhook.WebhookError):
        webhook.validate_url(url)
    assert webhook.validate_url(" https://hooks.example/x?y=1 ") == "https://hooks.example/x?y=1"


def test_signed_summary_lists_exactly_the_pushed_decisions(store: Store) -> None:
    with receiver() as rx:
        webhook.configure(store.data_dir, rx.url, SECRET)
        sid, before, uuids = _pushed_store(store, 3)
        assert len(before) == 3
        _mark_synced(store, before[:2])  # the third stays pending (e.g. a failed attempt): not in the summary
        key = webhook.notify_push(store, sid, before, "2026-12-05T08:00:00Z")
        assert key is not None
        got = rx.wait_for(1)[0]
        assert webhook.settle(store.data_dir, 30)
    assert webhook.verify(SECRET, got.body, got.headers[webhook.SIGNATURE_HEADER])
    assert not webhook.verify("other-secret", got.body, got.headers[webhook.SIGNATURE_HEADER])
    assert not webhook.verify(SECRET, got.body + b" ", got.headers[webhook.SIGNATURE_HEADER])
    body = json.loads(got.body)
    assert body["id"] == key == got.headers["Idempotency-Key"] == got.headers[webhook.DELIVERY_HEADER]
    assert body["server"] == "http://ls.example:8080" and body["pushed_at"] == "2026-12-05T08:00:00Z"
    assert [d["uuid"] for d in body["decisions"]] == uuids[:2] and body["count"] == 2
    assert {d["verdict"] for d in body["decisions"]} == {"accept"}
    assert {d["reviewer"] for d in body["decisions"]} == {"rev@example.com"}
    assert all(d["project"] == 77 and d["task"] is not None for d in body["decisions"])
    assert body["projects"][0]["id"] == 77
    st = webhook.status(store.data_dir)
    assert (st.pending, st.delivered, st.failed) == (0, 1, 0)


def test_retries_after_500_and_connection_refused_then_delivers_once(store: Store) -> None:
    port = free_port()  # nobody listens yet: connection refused
    url = f"http://127.0.0.1:{port}/hook"
    webhook.configure(store.data_dir, url, SECRET)
    key = webhook.enqueue(store.data_dir, {"decisions": [{"uuid": "u1"}]})
    res = webhook.deliver_due(store.data_dir)
    assert res.delivered == 0 and "could not connect" in res.errors[0]
    item = webhook.items(store.data_dir)[0]
    assert item.state == "pending" and item.attempts == 1 and item.next_at > 0
    # not due yet (backoff): a normal round does not send it
    assert webhook.deliver_due(store.data_dir).errors == ()
    with receiver(port=port, codes=[500, 503]) as rx:
        d = webhook.Deliverer(store.data_dir, backoff=(0.05,))
        d.kick()
        rx.wait_for(3)
        assert d.wait_idle(30)
        for _ in range(100):
            if webhook.items(store.data_dir)[0].state == "delivered":
                break
            threading.Event().wait(0.05)
    item = webhook.items(store.data_dir)[0]
    assert item.state == "delivered" and item.attempts == 4  # refused, 500, 503, 200
    assert len(rx.got) == 3 and {r.headers["Idempotency-Key"] for r in rx.got} == {key}
    assert len({r.body for r in rx.got}) == 1  # every retry sends the same signed bytes


def test_a_summary_that_keeps_failing_is_marked_failed_and_flush_retries_it(store: Store) -> None:
    with receiver(codes=[500, 500]) as rx:
        webhook.configure(store.data_dir, rx.url, SECRET)
        webhook.enqueue(store.data_dir, {"decisions": []})
        webhook.deliver_due(store.data_dir, force=True, max_attempts=2)
        webhook.deliver_due(store.data_dir, force=True, max_attempts=2)
        assert webhook.items(store.data_dir)[0].state == "failed"
        assert webhook.deliver_due(store.data_dir).errors == ()  # failed ones wait for a flush
        res = webhook.deliver_due(store.data_dir, force=True)
    assert res.delivered == 1 and webhook.items(store.data_dir)[0].state == "delivered"


def test_the_outbox_survives_a_restart_and_is_delivered_once(store: Store) -> None:
    port = free_port()
    webhook.configure(store.data_dir, f"http://127.0.0.1:{port}/hook", SECRET)
    key = webhook.enqueue(store.data_dir, {"decisions": [{"uuid": "u1"}]})
    body = webhook.body_of(store.data_dir, key)
    # "crash": nothing delivered; a new process finds the file and resumes (only the file is shared)
    reopened = Path(store.data_dir)
    with receiver(port=port) as rx:
        d = webhook.Deliverer(reopened)
        assert webhook._next_due(reopened) is not None
        d.kick()
        got = rx.wait_for(1)
        assert d.wait_idle(30)
        webhook.deliver_due(reopened, force=True)  # a flush afterwards sends nothing again
    assert len(rx.got) == 1 and got[0].body == body and got[0].headers["Idempotency-Key"] == key
    assert webhook.items(reopened)[0].state == "delivered"


def test_a_push_never_waits_for_the_receiver(store: Store) -> None:
    hold = threading.Event()
    with receiver(hold=hold) as rx:  # accepts the request and does not answer until released
        webhook.configure(store.data_dir, rx.url, SECRET)
        sid, before, _ = _pushed_store(store, 1)
        _mark_synced(store, before)
        key = webhook.notify_push(store, sid, before, now_iso())
        assert key is not None  # returned while the receiver holds the request open
        assert rx.arrived.wait(30)
        assert not hold.is_set() and webhook.items(store.data_dir)[0].state == "pending"
        hold.set()
        assert webhook.settle(store.data_dir, 30)


def test_nothing_is_queued_without_a_webhook_and_an_outbox_failure_does_not_fail_the_push(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    sid, before, _ = _pushed_store(store, 1)
    assert before == []  # no webhook: no snapshot, no summary
    with receiver() as rx:
        webhook.configure(store.data_dir, rx.url, SECRET)
        before = webhook.pending_decision_ids(store, sid)
        _mark_synced(store, before)
        monkeypatch.setattr(webhook, "enqueue", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
        assert webhook.notify_push(store, sid, before, now_iso()) is None


def test_the_secret_is_only_in_the_keyring(store: Store, mem_keyring: memkeyring.MemoryKeyring,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook/path-token-xyz"
    cfg = webhook.configure(store.data_dir, url, SECRET)
    assert cfg.has_secret and cfg.secret_source == "keyring" and cfg.url == url
    assert SECRET in mem_keyring.store.values()
    webhook.enqueue(store.data_dir, {"decisions": [{"uuid": "u1"}]})
    webhook.deliver_due(store.data_dir)  # fails (nobody listens) and logs it
    webhook.configure(store.data_dir, url, SECRET + "-rotated")
    store.close()
    for f in Path(store.data_dir).rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert SECRET.encode() not in data, f
    assert SECRET not in caplog.text and "path-token-xyz" not in caplog.text
    # the audit trail has the setting changes, without the secret or the URL's path
    s2 = Store.open(store.data_dir)
    try:
        with s2.session() as s:
            events = [e for e in s.query(AuditEvent).order_by(AuditEvent.id) if e.kind == "settings.webhook"]
            assert verify_full(s).ok
    finally:
        s2.close()
    assert len(events) == 2
    assert events[0].payload["changes"]["secret"] == "changed" and events[0].payload["changes"]["url"]["to"]
    assert "path-token-xyz" not in json.dumps(events[0].payload)
    assert set(events[1].payload["changes"]) == {"secret"}  # same URL, new secret
    assert (Path(store.data_dir) / STORE_FILENAME).exists()


def test_without_a_secret_nothing_is_sent_unsigned(store: Store, mem_keyring: memkeyring.MemoryKeyring) -> None:
    with receiver() as rx:
        webhook.configure(store.data_dir, rx.url, SECRET)
        mem_keyring.store.clear()
        webhook.enqueue(store.data_dir, {"decisions": []})
        res = webhook.deliver_due(store.data_dir, force=True)
    assert rx.got == [] and res.delivered == 0 and "not sent unsigned" in res.errors[0]


def test_clear_forgets_url_and_secret(store: Store, mem_keyring: memkeyring.MemoryKeyring) -> None:
    webhook.configure(store.data_dir, "https://hooks.example/x", SECRET)
    webhook.enqueue(store.data_dir, {"decisions": []})
    assert webhook.clear(store.data_dir) == 1
    assert webhook.get_config(store.data_dir) == webhook.WebhookConfig(None, False, None)
    assert mem_keyring.store == {}
    assert webhook.enqueue(store.data_dir, {"decisions": []}) is None


def test_cli_set_status_test_flush_clear(store: Store, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from app.main import main

    data = str(store.data_dir)
    monkeypatch.setenv("RD_HOOK_SECRET", SECRET)
    with receiver() as rx:
        assert main(["--data-dir", data, "webhook", "set", rx.url, "--secret-env", "RD_HOOK_SECRET", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == {"url": rx.url, "secret": True, "secret_source": "keyring"}
        assert main(["--data-dir", data, "webhook", "test", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == {"status": 200}
        assert webhook.verify(SECRET, rx.got[0].body, rx.got[0].headers[webhook.SIGNATURE_HEADER])
        webhook.enqueue(store.data_dir, {"decisions": []})
        assert main(["--data-dir", data, "webhook", "flush", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["delivered"] == 1
        assert main(["--data-dir", data, "webhook", "status", "--json"]) == 0
        st = json.loads(capsys.readouterr().out)
        assert (st["delivered"], st["pending"], st["secret"]) == (1, 0, True)
    assert main(["--data-dir", data, "webhook", "clear", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["cleared"] is True and SECRET not in out + err


def test_cli_set_on_a_new_data_folder_creates_the_store_so_the_change_is_audited(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from app.main import main

    data = tmp_path / "fresh"
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(SECRET + "\n"))
    assert main(["--data-dir", str(data), "webhook", "set", "https://hooks.example/x", "--secret-stdin"]) == 0
    capsys.readouterr()
    s = Store.open(data)
    try:
        with s.session() as ses:
            kinds = [e.kind for e in ses.query(AuditEvent)]
    finally:
        s.close()
    assert kinds.count("settings.webhook") == 1


def test_a_redirect_is_a_failed_delivery_not_followed(store: Store) -> None:
    with receiver(codes=[302]) as rx:
        webhook.configure(store.data_dir, rx.url, SECRET)
        webhook.enqueue(store.data_dir, {"decisions": []})
        res = webhook.deliver_due(store.data_dir)
    assert res.delivered == 0 and res.errors == ("the receiver answered HTTP 302",) and len(rx.got) == 1
    assert webhook.items(store.data_dir)[0].state == "pending"


def test_a_damaged_outbox_file_never_fails_a_push(store: Store) -> None:
    webhook.outbox_path(store.data_dir).write_bytes(b"this is not a database" * 100)
    sid, before, _ = _pushed_store(store, 1)
    assert before == []  # logged, no summary; the push goes on
    assert webhook.notify_push(store, sid, [1], now_iso()) is None
