"""Team review, reviewer side: other reviewers' decisions (pulled, ``origin`` = server) in the queues,
the expert queue, the task history and undo. Pulled rows are inserted through the ORM, as a pull writes them."""

from __future__ import annotations

import uuid as uuidlib
from datetime import UTC, datetime, timedelta

import pytest

from app.models.schema import Decision, DecisionSync, Member
from app.models.store import Store, now_iso
from app.services.decisions import DecisionError, DecisionService
from app.services.demo import ensure_demo
from app.services.describe import ago, describe_decision, parse_stamp
from app.services.projects import ProjectService
from app.services.review import QueueFilter, ReviewSession, open_escalations, task_decisions

PRIYA = "priya.shah@example.com"
OMAR = "omar@example.com"  # not a member: known by e-mail only
ME = "me@example.com"


@pytest.fixture
def demo(store: Store) -> tuple[ProjectService, int]:
    pid = ensure_demo(store)
    with store.transaction() as s:
        s.add(Member(project_id=pid, user_id=9001, email=PRIYA, first_name="Priya", last_name="Shah"))
    return ProjectService(store), pid


def stamp(hours_ago: float = 0.0) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def pulled(store: Store, pid: int, task_id: int, annotation_id: int | None, verdict: str, *,
           reviewer: str = PRIYA, role: str = "reviewer", reason: str | None = None, comment: str | None = None,
           at: str | None = None, retracts: str | None = None) -> str:
    """Another reviewer's decision as a pull materialises it: origin server, state synced."""
    uid = str(uuidlib.uuid4())
    with store.transaction() as s:
        d = Decision(uuid=uid, project_id=pid, task_id=task_id, annotation_id=annotation_id, verdict=verdict,
                     reason=reason, comment=comment, reviewer=reviewer, role=role, created_at=at or now_iso(),
                     retracts=retracts, origin="server")
        s.add(d)
        s.flush()
        s.add(DecisionSync(decision_id=d.id, state="synced", updated_at=now_iso()))
    return uid


def session(demo, **kw) -> ReviewSession:
    projects, pid = demo
    return ReviewSession(projects, pid, reviewer=kw.pop("reviewer", ME), **kw)


def decide_all_pulled(store: Store, pid: int, task, verdict: str = "accept", **kw) -> list[str]:
    return [pulled(store, pid, task.id, a.id, verdict, **kw) for a in task.annotations]


# -- reviewer queue ---------------------------------------------------------------------------------------
def test_task_another_reviewer_decided_is_out_of_my_queue_unless_the_setting_brings_it_back(demo, store):
    projects, pid = demo
    s = session(demo)
    total = len(s.task_ids)
    t0 = s.current
    t1 = projects.task_detail(s.task_ids[1])
    decide_all_pulled(store, pid, t0)
    pulled(store, pid, t1.id, t1.annotations[0].id, "reject", reason="Wrong label")  # one of several: still theirs

    mine = session(demo)
    assert t0.id not in mine.task_ids and t1.id not in mine.task_ids
    assert len(mine.task_ids) == total - 2
    c = mine.counters()
    assert (c.decided_by_others, c.hidden_by_others, c.total) == (2, 2, total - 2)

    shown = session(demo, show_decided_by_others=True)
    assert shown.task_ids[:2] == [t0.id, t1.id]
    # others' verdicts count as decided: t0 is fully decided (not open), t1 only partly
    assert not shown.task_is_open(t0.id) and shown.task_is_open(t1.id)
    assert shown.counters().remaining == total - 1
    assert shown.counters().hidden_by_others == 0 and shown.counters().decided_by_others == 2
    assert shown.current.id == t0.id and shown.view().verdicts == {a.id: "accept" for a in t0.annotations}


def test_retracted_or_non_judgement_server_decisions_keep_the_task_in_my_queue(demo, store):
    _projects, pid = demo
    s = session(demo)
    t = s.current
    uid = pulled(store, pid, t.id, t.annotations[0].id, "accept")
    assert t.id not in session(demo).task_ids
    pulled(store, pid, t.id, t.annotations[0].id, "retract", retracts=uid)  # they undid it
    assert t.id in session(demo).task_ids
    t2 = s.task_ids[2]
    pulled(store, pid, t2, None, "skip")
    assert t2 in session(demo).task_ids


def test_task_i_decided_too_stays_in_my_queue(demo, store):
    _projects, pid = demo
    s = session(demo, auto_advance=False)
    t = s.current
    s.decide("accept")
    pulled(store, pid, t.id, t.annotations[1].id, "reject", reason="Wrong label")
    again = session(demo)
    assert t.id in again.task_ids
    assert again.counters().hidden_by_others == 0 and again.counters().decided_by_others == 1


def test_drill_down_queue_is_not_filtered(demo, store):
    projects, pid = demo
    ids = session(demo).task_ids[:3]
    decide_all_pulled(store, pid, projects.task_detail(ids[0]))
    s = ReviewSession(projects, pid, reviewer=ME, queue=QueueFilter(task_ids=tuple(ids), label="drill"))
    assert s.task_ids == ids


def test_pull_during_a_session_reload_keeps_the_task_on_screen(demo, store):
    projects, pid = demo
    s = session(demo)
    s.go(3)
    s.cycle_annotation()
    shown, focused = s.current.id, s.focused_annotation().id
    decide_all_pulled(store, pid, projects.task_detail(s.task_ids[1]))
    s.reload()
    assert s.current.id == shown and s.focused_annotation().id == focused
    assert s.index == 2 and s.counters().hidden_by_others == 1


def test_open_task_brings_a_hidden_task_back_and_keeps_it(demo, store):
    projects, pid = demo
    ids = session(demo).task_ids
    hidden = projects.task_detail(ids[4])
    decide_all_pulled(store, pid, hidden, "reject", reason="Wrong label")
    s = session(demo)
    assert hidden.id not in s.task_ids
    assert s.open_task(hidden.id)
    assert s.current.id == hidden.id and s.task_ids.index(hidden.id) == 4  # back in queue order
    s.reload()  # e.g. the Changes of the conflict resolution that asked for the re-review
    assert s.current.id == hidden.id
    assert not s.open_task(10**9)  # unknown task: nothing happens
    assert s.current.id == hidden.id
    # a task outside a drill-down filter opens the whole queue
    d = ReviewSession(projects, pid, reviewer=ME, queue=QueueFilter(task_ids=(ids[0],), label="drill"))
    d.open_task(ids[7])
    assert d.current.id == ids[7] and d.queue == QueueFilter()


# -- expert queue ---------------------------------------------------------------------------------------------
def test_expert_queue_lists_escalations_from_any_reviewer(demo, store):
    projects, pid = demo
    s = session(demo)
    local_t = s.current.id
    s.decide("escalate", reason="Edge case", comment="two topics")
    far = projects.task_detail(s.task_ids[5])
    pulled(store, pid, far.id, far.annotations[0].id, "escalate", reason="Guideline unclear",
           comment="is a refund a billing issue?", at=stamp(hours_ago=2))
    expert = session(demo, reviewer="sme@example.com", role="expert")
    assert expert.task_ids == sorted([local_t, far.id], key=s.task_ids.index)
    expert.go_to_task(far.id)
    e = expert.view().escalation
    assert e is not None and e.from_server and e.reviewer_name == "Priya Shah"
    assert e.note == "Guideline unclear — is a refund a billing issue?"
    assert [x.task_id for x in expert.escalations()] == [far.id, local_t]  # oldest first
    # the reviewer's queue: the escalated task is not open for a reviewer
    assert not session(demo).task_is_open(far.id)
    listed = open_escalations(projects, pid)
    assert {(x.task_id, x.origin, x.reviewer) for x in listed} == {(far.id, "server", PRIYA),
                                                                   (local_t, "local", ME)}


def test_escalation_is_settled_by_an_expert_verdict_from_any_machine(demo, store):
    projects, pid = demo
    ids = session(demo).task_ids
    a, b, c, d = (projects.task_detail(t) for t in ids[:4])
    for t in (a, b, c, d):
        pulled(store, pid, t.id, t.annotations[0].id, "escalate", reason="Edge case", at=stamp(hours_ago=3))
    # b: another expert decided (pulled); c: the escalation was withdrawn; d: an expert verdict on ANOTHER
    # annotation of the task (the escalated one still waits)
    pulled(store, pid, b.id, b.annotations[0].id, "accept", reviewer="lead@example.com", role="expert",
           at=stamp(hours_ago=1))
    esc_c = next(x.uuid for x in task_decisions(projects, c.id) if x.verdict == "escalate")
    pulled(store, pid, c.id, c.annotations[0].id, "retract", retracts=esc_c)
    pulled(store, pid, d.id, d.annotations[1].id, "accept", reviewer="lead@example.com", role="expert",
           at=stamp(hours_ago=1))
    expert = session(demo, reviewer="sme@example.com", role="expert")
    assert expert.task_ids == [a.id, d.id]
    # the GUI's expert queue and `reviewdesk escalations` list the same
    assert [e.uuid for e in expert.escalations()] == [e.uuid for e in DecisionService(store).escalations(pid)]
    # a: an expert verdict on another annotation leaves it open; on the escalated one settles it
    expert.cycle_annotation()
    expert.decide("accept")
    assert expert.current.id == a.id and expert.task_is_open(a.id) and expert.view().escalation is not None
    expert.focus_annotation(a.annotations[0].id)
    expert.decide("accept")
    assert expert.current.id == d.id and not expert.task_is_open(a.id)
    assert [x.task_id for x in open_escalations(projects, pid)] == [d.id]


# -- history, side-by-side, undo ----------------------------------------------------------------------------------
def test_task_history_shows_everyones_decisions_with_names(demo, store):
    projects, pid = demo
    s = session(demo, auto_advance=False)
    t = s.current
    pulled(store, pid, t.id, t.annotations[0].id, "reject", reason="Wrong label", at=stamp(hours_ago=2))
    pulled(store, pid, t.id, t.annotations[1].id, "accept", reviewer=OMAR, at=stamp(hours_ago=26))
    s.reload()
    s.decide("accept")
    hist = s.view().team
    assert [(h.verdict, h.origin) for h in hist] == [("accept", "local"), ("reject", "server"),
                                                     ("accept", "server")]
    assert hist[0].mine and not hist[1].mine and hist[1].from_server
    assert hist[0].sentence(me=ME) == "You accepted this annotation just now"
    assert hist[1].sentence(me=ME) == "Priya Shah rejected this annotation 2 h ago — Wrong label"
    assert hist[2].sentence("Ann's annotation") == "omar@example.com accepted Ann's annotation 1 d ago"
    assert hist[1].sync_state == "synced" and hist[1].reviewer == PRIYA


def test_undo_applies_only_to_my_own_local_decisions(demo, store):
    projects, pid = demo
    earlier = session(demo, auto_advance=False)
    t = earlier.current
    earlier.decide("accept")
    mine = earlier.history()[0].uuid
    theirs = pulled(store, pid, t.id, t.annotations[1].id, "reject", reason="Wrong label")
    s = session(demo, auto_advance=False)  # a later session: its own history is empty
    with pytest.raises(DecisionError, match="Priya Shah's reject came from the server: read-only here"):
        s.undo(theirs)
    assert not s.undo()  # nothing of this session to undo
    s.undo(mine)  # my decision from an earlier session, picked in the task history
    assert DecisionService(store).get(mine).retracted
    assert DecisionService(store).effective_verdicts(pid) == {t.annotations[1].id: "reject"}
    with pytest.raises(DecisionError, match="already undone"):
        s.undo(mine)
    hist = {h.uuid: h for h in s.task_history(t.id)}
    assert hist[mine].retracted and not hist[theirs].retracted


def test_relative_times_and_sentences() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert ago("2026-03-01T11:59:30Z", now) == "just now"
    assert ago("2026-03-01T12:05:00Z", now) == "just now"  # their clock is ahead
    assert ago("2026-03-01T11:14:59.123456Z", now) == "45 min ago"
    assert ago("2026-03-01T10:00:00+00:00", now) == "2 h ago"
    assert ago("2026-02-27T12:00:00", now) == "2 d ago"
    assert ago("2026-01-02T12:00:00Z", now) == "on 2026-01-02"
    assert ago("yesterday-ish", now) == "yesterday-ish" and ago(None, now) == "at an unknown time"
    assert parse_stamp("2026-03-01T11:59:30Z") == datetime(2026, 3, 1, 11, 59, 30, tzinfo=UTC)
    assert describe_decision(who="Priya", verdict="reject", created_at="2026-03-01T10:00:00Z", reason="Wrong label",
                             comment="see 2", now=now) == "Priya rejected this annotation 2 h ago — Wrong label — see 2"
    assert describe_decision(who="Omar", verdict="escalate", target="this task", created_at="2026-03-01T12:00:00Z",
                             now=now) == "Omar escalated this task just now"
