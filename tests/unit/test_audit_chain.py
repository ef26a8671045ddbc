"""The hash-chained audit trail: tampering is found (with the first bad event named), every kind of local
change appends exactly one event with from -> to values, the check on open is incremental, and the CLI."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

from sqlalchemy import select

import app.models.audit as audit
from app.cli import main
from app.models.importer import import_export
from app.models.schema import Annotation, AuditEvent, Server, Task
from app.models.store import STORE_FILENAME, Store
from app.services.decisions import DecisionRequest, DecisionService
from app.services.settings import load_settings, save_settings
from app.sync.pull import pull_project
from tests.conftest import SMALL_CONFIG
from tests.unit.sync.fakels import URL, FakeLS, client_for


def _project(store: Store, small_export: list[dict]) -> int:
    src = io.BytesIO(json.dumps(small_export).encode())
    return import_export(store, src, SMALL_CONFIG, "audit").project_id


def _ann(store: Store, pid: int, n: int = 0) -> tuple[int, int]:
    with store.session() as s:
        tid = s.scalar(select(Task.id).where(Task.project_id == pid).order_by(Task.id))
        aid = s.scalars(select(Annotation.id).where(Annotation.task_id == tid).order_by(Annotation.id)).all()[n]
    assert tid is not None
    return tid, aid


def _events(store: Store) -> list[AuditEvent]:
    with store.session() as s:
        return list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def _chain(store: Store, small_export: list[dict], n: int = 6) -> list[int]:
    """A project plus ``n`` decisions: a chain of n + 1 events; returns their ids."""
    pid = _project(store, small_export)
    tid, aid = _ann(store, pid)
    svc = DecisionService(store)
    for i in range(n):
        svc.record(pid, [DecisionRequest(task_id=tid, verdict="accept" if i % 2 else "skip",
                                         annotation_id=aid)], reviewer=f"r{i}@x")
    return [e.id for e in _events(store)]


def _raw(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
        conn.execute(f'DROP TRIGGER "{name}"')  # what someone editing the file by hand would do first
    return conn


def _verify(store: Store) -> audit.ChainReport:
    with store.transaction() as s:
        return audit.check_store(s, full=True)


# -- tampering ----------------------------------------------------------------------------------

def test_clean_chain_verifies(store, small_export) -> None:
    ids = _chain(store, small_export)
    rep = _verify(store)
    assert rep.ok and rep.events == len(ids) and rep.verified_through == ids[-1]


def test_edited_value_is_found(store, small_export) -> None:
    ids = _chain(store, small_export)
    with _raw(store.path) as conn:
        conn.execute("UPDATE audit_events SET payload = replace(payload, '\"accept\"', '\"reject\"') WHERE id = ?",
                     (ids[2],))
    rep = _verify(store)
    assert not rep.ok and rep.first_bad == ids[2] and "edited" in (rep.reason or "")


def test_edited_actor_is_found(store, small_export) -> None:
    ids = _chain(store, small_export)
    with _raw(store.path) as conn:
        conn.execute("UPDATE audit_events SET actor = 'someone-else' WHERE id = ?", (ids[4],))
    rep = _verify(store)
    assert not rep.ok and rep.first_bad == ids[4]


def test_deleted_row_is_found(store, small_export) -> None:
    ids = _chain(store, small_export)
    with _raw(store.path) as conn:
        conn.execute("DELETE FROM audit_events WHERE id = ?", (ids[3],))
    rep = _verify(store)
    assert not rep.ok and rep.first_bad == ids[4] and "removed" in (rep.reason or "")


def test_deleted_tail_is_found_against_the_checkpoint(store, small_export) -> None:
    ids = _chain(store, small_export)
    assert _verify(store).ok  # moves the checkpoint to the last event
    with _raw(store.path) as conn:
        conn.execute("DELETE FROM audit_events WHERE id >= ?", (ids[-2],))
    rep = _verify(store)
    assert not rep.ok and rep.first_bad == ids[-1]


def test_swapped_rows_are_found(store, small_export) -> None:
    ids = _chain(store, small_export)
    a, b = ids[2], ids[3]
    with _raw(store.path) as conn:
        conn.execute("UPDATE audit_events SET id = -1 WHERE id = ?", (a,))
        conn.execute("UPDATE audit_events SET id = ? WHERE id = ?", (a, b))
        conn.execute("UPDATE audit_events SET id = ? WHERE id = -1", (b,))
    rep = _verify(store)
    assert not rep.ok and rep.first_bad == a


def test_forged_row_is_found(store, small_export) -> None:
    ids = _chain(store, small_export)
    with _raw(store.path) as conn:
        prev = conn.execute("SELECT hash FROM audit_events WHERE id = ?", (ids[-1],)).fetchone()[0]
        conn.execute("INSERT INTO audit_events (id, at, actor, kind, payload, prev_hash, hash) VALUES (?,?,?,?,?,?,?)",
                     (ids[-1] + 1, "2026-01-01T00:00:00Z", "mallory", "decision.recorded", '{"verdict":"accept"}',
                      prev, "f" * 64))
    rep = _verify(store)
    assert not rep.ok and rep.first_bad == ids[-1] + 1


def test_forged_row_in_the_middle_is_found(store, small_export) -> None:
    ids = _chain(store, small_export)
    with _raw(store.path) as conn:  # a well-formed event slipped in before the others' links
        conn.execute("DELETE FROM audit_events WHERE id = ?", (ids[2],))
        prev = conn.execute("SELECT hash FROM audit_events WHERE id = ?", (ids[1],)).fetchone()[0]
        payload = {"verdict": "accept"}
        at = "2026-01-01T00:00:00Z"
        digest = audit._digest(prev, at, "mallory", "decision.recorded", payload)
        conn.execute("INSERT INTO audit_events (id, at, actor, kind, payload, prev_hash, hash) VALUES (?,?,?,?,?,?,?)",
                     (ids[2], at, "mallory", "decision.recorded", json.dumps(payload), prev, digest))
    rep = _verify(store)
    assert not rep.ok and rep.first_bad == ids[3]


# -- every change appends exactly one event with from -> to -----------------------------------

def _new_events(store: Store, before: int) -> list[AuditEvent]:
    return [e for e in _events(store) if e.id > before]


def _last_id(store: Store) -> int:
    evs = _events(store)
    return evs[-1].id if evs else 0


def test_decision_retraction_comment_and_ground_truth_each_append_one_event(store, small_export) -> None:
    pid = _project(store, small_export)
    tid, aid = _ann(store, pid)
    svc = DecisionService(store)

    n = _last_id(store)
    u = svc.record(pid, [DecisionRequest(task_id=tid, verdict="skip", annotation_id=aid)], reviewer="a@x")
    (ev,) = _new_events(store, n)
    assert ev.kind == "decision.recorded" and ev.actor == "a@x"
    assert ev.payload["from"] is None and ev.payload["to"] == "skip" and ev.payload["task"] == tid

    n = _last_id(store)  # a decision with a comment, that also sets the ground truth
    u = svc.record(pid, [DecisionRequest(task_id=tid, verdict="accept", annotation_id=aid, comment="looks right")],
                   reviewer="a@x")
    (ev,) = _new_events(store, n)
    assert ev.payload["from"] == "skip" and ev.payload["to"] == "accept"
    assert ev.payload["comment"] == {"from": None, "to": "looks right"}
    assert ev.payload["ground_truth"]["to"] is not None

    n = _last_id(store)  # a fix changes the ground truth from the accepted result to the fixed one
    fixed = [{"id": "f", "from_name": "sentiment", "to_name": "text", "type": "choices",
              "value": {"choices": ["pos"]}}]
    svc.record(pid, [DecisionRequest(task_id=tid, verdict="fix", annotation_id=aid, result=fixed)], reviewer="a@x")
    (ev,) = _new_events(store, n)
    assert ev.payload["from"] == "accept" and ev.payload["ground_truth"]["to"] == fixed
    assert ev.payload["ground_truth"]["from"] not in (None, fixed)

    n = _last_id(store)
    svc.retract(u.decisions[0].uuid, reviewer="a@x")
    (ev,) = _new_events(store, n)
    assert ev.kind == "decision.retracted" and ev.payload["from"] == "accept" and ev.payload["to"] is None
    assert _verify(store).ok


def test_setting_and_keymap_changes_append_one_event(store, data_dir) -> None:
    n = _last_id(store)
    save_settings(data_dir, load_settings(data_dir).with_(theme="dark"))
    (ev,) = _new_events(store, n)
    assert ev.kind == "settings.changed" and ev.payload["changes"] == {"theme": {"from": "system", "to": "dark"}}

    n = _last_id(store)
    save_settings(data_dir, load_settings(data_dir).with_(keymap_overrides={"review": {"accept": ["X"]}}))
    (ev,) = _new_events(store, n)
    assert ev.kind == "settings.keymap"
    assert ev.payload["changes"]["keymap_overrides"]["to"] == {"review": {"accept": ["X"]}}

    n = _last_id(store)
    save_settings(data_dir, load_settings(data_dir))  # nothing changed: nothing recorded
    assert _new_events(store, n) == []
    assert _verify(store).ok


def test_reject_reasons_change_records_from_and_to(store, small_export) -> None:
    pid = _project(store, small_export)
    n = _last_id(store)
    DecisionService(store).set_reject_reasons(pid, ["Wrong", "Missing"])
    (ev,) = _new_events(store, n)
    assert ev.payload["to"] == ["Wrong", "Missing"]


def test_pull_applying_a_server_change_appends_one_event_naming_it(store) -> None:
    fake = FakeLS()
    for i in range(3):
        fake.add_task(f"text {i}")
    with store.transaction() as s:
        srv = Server(url=URL, edition="community", created_at="2026-01-01T00:00:00Z")
        s.add(srv)
        s.flush()
        server = srv.id
    c = client_for(fake)
    pull_project(store, c, server, 7, media=False)
    t = list(fake.tasks.values())[1]
    fake.clock = fake.clock.replace(year=2027)
    ann = t["annotations"][0]
    before = ann["updated_at"]
    ann["result"] = []
    ann["updated_at"] = fake.tick()
    fake.touch(t["id"])
    n = _last_id(store)
    pull_project(store, c, server, 7, media=False)
    evs = _new_events(store, n)
    pulled = [e for e in evs if e.kind == "sync.pulled"]
    assert len(pulled) == 1 and pulled[0].payload["updated"] == 1
    (ch,) = pulled[0].payload["changes"]
    assert ch["annotation"] == ann["id"] and ch["from"] == before and ch["to"] == ann["updated_at"]
    assert _verify(store).ok


# -- verify on open ------------------------------------------------------------------------------

def test_verify_on_open_is_incremental(data_dir, small_export, monkeypatch) -> None:
    store = Store.open(data_dir)
    try:
        ids = _chain(store, small_export, n=5)
    finally:
        store.close()
    calls = []
    real = audit._digest

    def spy(*a):
        calls.append(a)
        return real(*a)

    monkeypatch.setattr(audit, "_digest", spy)
    store = Store.open(data_dir)  # the first open checks everything
    assert store.audit_warning is None and len(calls) == len(ids)
    pid = 1
    tid, aid = _ann(store, pid)
    DecisionService(store).record(pid, [DecisionRequest(task_id=tid, verdict="skip", annotation_id=aid)],
                                  reviewer="a@x")
    DecisionService(store).record(pid, [DecisionRequest(task_id=tid, verdict="skip", annotation_id=aid)],
                                  reviewer="a@x")
    store.close()
    calls.clear()
    store = Store.open(data_dir)  # only the two new events: 2 hashed (plus 2 when they were appended before)
    store.close()
    assert len(calls) == 2
    calls.clear()
    store = Store.open(data_dir)
    store.close()
    assert calls == []


def test_open_warns_but_opens_on_a_broken_chain(data_dir, small_export) -> None:
    store = Store.open(data_dir)
    try:
        ids = _chain(store, small_export, n=3)
        DecisionService(store)  # the checkpoint is at the end after a first check
    finally:
        store.close()
    with _raw(data_dir / STORE_FILENAME) as conn:
        conn.execute("UPDATE audit_events SET actor = 'x' WHERE id = ?", (ids[-1],))
    store = Store.open(data_dir)
    try:
        assert store.audit_warning is not None and f"event {ids[-1]}" in store.audit_warning
        assert store.revision() is not None  # still usable
    finally:
        store.close()


# -- CLI ----------------------------------------------------------------------------------------

def test_cli_verify_ok_and_broken(data_dir, small_export, capsys) -> None:
    store = Store.open(data_dir)
    try:
        ids = _chain(store, small_export, n=2)
    finally:
        store.close()
    capsys.readouterr()
    assert main(["--data-dir", str(data_dir), "audit", "verify", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True, "events": len(ids), "verified_through": ids[-1]}
    with _raw(data_dir / STORE_FILENAME) as conn:
        conn.execute("UPDATE audit_events SET at = '2020-01-01T00:00:00Z' WHERE id = ?", (ids[1],))
    assert main(["--data-dir", str(data_dir), "audit", "verify", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and out["first_bad"] == ids[1] and out["reason"]
    assert main(["--data-dir", str(data_dir), "audit", "verify"]) == 1
    assert f"broken at event {ids[1]}" in capsys.readouterr().out


def test_cli_log_plain_words_and_task_filter(data_dir, small_export, capsys) -> None:
    store = Store.open(data_dir)
    try:
        pid = _project(store, small_export)
        tid, aid = _ann(store, pid)
        DecisionService(store).record(pid, [DecisionRequest(task_id=tid, verdict="reject", annotation_id=aid,
                                                            reason="Wrong label")], reviewer="a@x")
    finally:
        store.close()
    capsys.readouterr()
    assert main(["--data-dir", str(data_dir), "audit", "log", str(pid), "--task", str(tid), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (ev,) = out["events"]
    assert ev["actor"] == "a@x" and ev["what"].startswith("reject on task") and "Wrong label" in ev["what"]
    assert main(["--data-dir", str(data_dir), "audit", "log", str(pid)]) == 0
    text = capsys.readouterr().out
    assert "project imported" in text and "reject on task" in text
    assert main(["--data-dir", str(data_dir), "audit", "log", "999", "--json"]) == 1
    err = json.loads(capsys.readouterr().out)
    assert err["kind"] == "CliError" and "999" in err["error"]


def test_conflict_resolution_records_from_and_to(store, small_export, capsys) -> None:
    """Keep mine / discard mine each append one event naming the task, the verdict and conflict -> pending or
    retracted; the audit log reads it in plain words."""
    from sqlalchemy import update

    from app.models.schema import Decision, DecisionSync
    from app.services.sync import SyncService

    pid = _project(store, small_export)
    tid, aid = _ann(store, pid)
    svc = DecisionService(store)
    uuids = [svc.record(pid, [DecisionRequest(task_id=tid, verdict=v, annotation_id=aid, reason=r)],
                        reviewer="a@x").decisions[0].uuid for v, r in (("accept", None), ("reject", "Wrong"))]
    with store.transaction() as s:
        for u in uuids:
            did = s.scalar(select(Decision.id).where(Decision.uuid == u))
            s.execute(update(DecisionSync).where(DecisionSync.decision_id == did).values(
                state="conflict", effect={"conflict": {"kind": "changed"}}, last_error="changed on the server"))
    sync = SyncService(store)

    n = _last_id(store)
    sync.keep_mine(uuids[0], actor="a@x")
    (ev,) = _new_events(store, n)
    assert ev.kind == "sync.conflict.keep_mine" and ev.payload["task"] == tid
    assert ev.payload["from"] == {"state": "conflict", "verdict": "accept", "kind": "changed",
                                  "message": "changed on the server"}
    assert ev.payload["to"] == {"state": "pending", "force": True, "verdict": "accept"}

    n = _last_id(store)
    sync.discard_mine(uuids[1], actor="a@x")
    kinds = [(e.kind, e.payload) for e in _new_events(store, n)]
    assert [k for k, _ in kinds] == ["sync.conflict.discard_mine", "decision.retracted"]
    assert kinds[0][1]["from"]["verdict"] == "reject" and kinds[0][1]["to"]["state"] == "retracted"
    assert _verify(store).ok

    from app.cli.audit import describe
    kept = next(e for e in _new_events(store, 0) if e.kind == "sync.conflict.keep_mine")
    words = describe(kept.kind, kept.payload)
    assert f"conflict on task {tid}" in words and "conflict -> pending" in words and "pushed anyway" in words
