"""The Tasks tab's filtering service (``app.services.taskfilter``) against independent computations.

Statuses are checked against the definitions the rest of the product already uses (live verdicts of
``DecisionService.effective_verdicts``, open escalations of ``DecisionService.open_escalations``, the conflicts
``SyncService.conflicts`` lists) combined in plain Python here; every filter and sort against a Python
computation over the raw rows.
"""

from __future__ import annotations

import json
import random
import uuid as uuidlib
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, update

from app.models.schema import Annotation, Decision, DecisionSync, Member, Prediction, Task
from app.models.store import Store, now_iso
from app.services import taskfilter as tf
from app.services.decisions import DecisionRequest, DecisionService
from app.services.projects import ProjectService
from app.services.sync import SyncService
from tests.conftest import SMALL_CONFIG, choice

WORDS = ["refund", "login", "parcel", "invoice", "café", "delayed", "Acme", "twice", "error"]
ME = "me@example.com"


def _export(n: int, seed: int = 5) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        anns = []
        for k, user in enumerate(rng.sample([2, 3, 4], rng.choice([0, 1, 2, 2, 3, 3]))):
            anns.append({"id": 1000 + i * 10 + k, "completed_by": user,
                         "result": [choice(rng.choice(["pos", "neg", "neutral"]))] if rng.random() < 0.9 else [],
                         "was_cancelled": rng.random() < 0.05, "ground_truth": rng.random() < 0.1})
        text = " ".join(rng.choice(WORDS) for _ in range(4))
        out.append({"id": 500 + i if i % 7 else None, "data": {"text": text, "meta_note": "sentiment"},
                    "annotations": anns, "predictions": [{"id": 9000 + i, "result": [choice("pos")]}] * (i % 3)})
    for t in out:
        if t["id"] is None:
            del t["id"]
    return out


def _import(store: Store, tmp: Path, tasks: list[dict]) -> int:
    src = tmp / f"export-{uuidlib.uuid4().hex[:6]}.json"
    src.write_text(json.dumps(tasks))
    return ProjectService(store).import_file(src, SMALL_CONFIG, "p").summary.project_id


def _pulled(store: Store, pid: int, task_id: int, ann_id: int | None, verdict: str, *, role: str = "reviewer",
            retracts: str | None = None) -> str:
    uid = str(uuidlib.uuid4())
    with store.transaction() as s:
        d = Decision(uuid=uid, project_id=pid, task_id=task_id, annotation_id=ann_id, verdict=verdict,
                     reviewer="priya@example.com", role=role, created_at=now_iso(), retracts=retracts,
                     origin="server", reason="r" if verdict in ("reject", "escalate") else None)
        s.add(d)
        s.flush()
        s.add(DecisionSync(decision_id=d.id, state="synced", updated_at=now_iso()))
    return uid


@pytest.fixture
def project(store: Store, tmp_path: Path) -> int:
    """60 tasks, 0-3 annotations each, and a review history with every kind of decision."""
    pid = _import(store, tmp_path, _export(60))
    with store.transaction() as s:
        s.execute(update(Member).where(Member.project_id == pid, Member.user_id == 2)
                  .values(email="ann@example.com", first_name="Ann", last_name="Lee"))
    ds = DecisionService(store)
    rng = random.Random(11)
    with store.session() as s:
        tasks = [(t, [a for a, in s.execute(select(Annotation.id).where(Annotation.task_id == t)
                                             .order_by(Annotation.id))])
                 for t, in s.execute(select(Task.id).where(Task.project_id == pid).order_by(Task.id))]
    conflicted: list[str] = []
    for tid, anns in tasks:
        if not anns or rng.random() < 0.25:
            continue
        kind = rng.randrange(8)
        if kind == 0:  # all judged
            ds.record(pid, [DecisionRequest(tid, rng.choice(["accept", "reject"]), annotation_id=a, reason="Other")
                            for a in anns], reviewer=ME)
        elif kind == 1:  # one judged
            ds.record(pid, [DecisionRequest(tid, "accept", annotation_id=anns[0])], reviewer=ME)
        elif kind == 2:  # judged then undone; maybe an earlier one comes back into force
            if rng.random() < 0.5:
                ds.record(pid, [DecisionRequest(tid, "accept", annotation_id=anns[0])], reviewer=ME)
            rec = ds.record(pid, [DecisionRequest(tid, "reject", annotation_id=anns[0], reason="x")], reviewer=ME)
            ds.retract(rec.decisions[0].uuid, reviewer=ME)
        elif kind == 3:  # open escalation
            ds.record(pid, [DecisionRequest(tid, "escalate", annotation_id=anns[0], reason="unsure")], reviewer=ME)
        elif kind == 4:  # escalation settled by an expert (pulled)
            ds.record(pid, [DecisionRequest(tid, "escalate", annotation_id=anns[-1], reason="?")], reviewer=ME)
            _pulled(store, pid, tid, anns[-1], "accept", role="expert")
        elif kind == 5:  # escalation retracted
            rec = ds.record(pid, [DecisionRequest(tid, "escalate", comment="hm")], reviewer=ME)
            ds.retract(rec.decisions[0].uuid, reviewer=ME)
        elif kind == 6:  # another reviewer's judgements (pulled), one of them retracted
            for a in anns:
                u = _pulled(store, pid, tid, a, "accept")
            if rng.random() < 0.5:
                _pulled(store, pid, tid, anns[-1], "retract", retracts=u)
        else:  # in conflict with the server
            rec = ds.record(pid, [DecisionRequest(tid, "accept", annotation_id=anns[0])], reviewer=ME)
            conflicted.append(rec.decisions[0].uuid)
        if rng.random() < 0.2:
            ds.record(pid, [DecisionRequest(tid, "skip")], reviewer=ME)  # a skip decides nothing
    with store.transaction() as s:
        ids = list(s.scalars(select(Decision.id).where(Decision.uuid.in_(conflicted))))
        s.execute(update(DecisionSync).where(DecisionSync.decision_id.in_(ids)).values(state="conflict"))
    return pid


def oracle_statuses(store: Store, pid: int) -> dict[int, str]:
    """Status per task from the product's existing definitions, combined in Python."""
    ds = DecisionService(store)
    verdicts = ds.effective_verdicts(pid)
    escalated = set(ds.open_escalations(pid))
    conflicts = {c.task_id for c in SyncService(store).conflicts(pid)}
    with store.session() as s:
        anns = s.execute(select(Annotation.id, Annotation.task_id, Annotation.was_cancelled, Annotation.deleted)
                         .join(Task, Task.id == Annotation.task_id).where(Task.project_id == pid)).all()
        tasks = list(s.scalars(select(Task.id).where(Task.project_id == pid, Task.deleted.is_(False))))
    live = {t: 0 for t in tasks}
    judged = {t: 0 for t in tasks}
    for a in anns:
        if not a.was_cancelled and not a.deleted:
            live[a.task_id] += 1
        if a.id in verdicts:
            judged[a.task_id] += 1
    out = {}
    for t in tasks:
        if t in conflicts:
            out[t] = "conflict"
        elif t in escalated:
            out[t] = "escalated"
        elif judged[t] == 0:
            out[t] = "undecided"
        elif judged[t] >= live[t]:
            out[t] = "decided"
        else:
            out[t] = "partly"
    return out


def all_rows(store: Store, pid: int, f: tf.TaskFilter) -> list[tf.TaskListRow]:
    n = tf.count(store, pid, f)
    rows: list[tf.TaskListRow] = []
    for off in range(0, n, 7):  # small pages: the page boundaries are exercised
        rows.extend(tf.page(store, pid, f, off, 7))
    assert len(rows) == n
    return rows


def test_status_of_every_task_matches_the_existing_definitions(store: Store, project: int) -> None:
    expected = oracle_statuses(store, project)
    assert set(expected.values()) == set(tf.STATUSES)  # the fixture has every status
    rows = all_rows(store, project, tf.TaskFilter())
    assert {r.id: r.status for r in rows} == expected
    assert tf.statuses(store, project, list(expected)) == expected
    for st in tf.STATUSES:
        f = tf.TaskFilter(statuses=frozenset({st}))
        want = sorted(t for t, v in expected.items() if v == st)
        assert tf.count(store, project, f) == len(want)
        assert sorted(r.id for r in all_rows(store, project, f)) == want
    two = tf.TaskFilter(statuses=frozenset({"undecided", "escalated"}))
    assert sorted(r.id for r in all_rows(store, project, two)) == sorted(
        t for t, v in expected.items() if v in ("undecided", "escalated"))


def test_a_decision_moves_the_task_through_the_statuses(store: Store, project: int) -> None:
    ds = DecisionService(store)
    with store.session() as s:
        tid = s.scalar(select(Task.id).where(Task.project_id == project, ~Task.id.in_(
            select(Decision.task_id))).join(Annotation, Annotation.task_id == Task.id)
            .group_by(Task.id).having(select(Annotation.id).where(Annotation.task_id == Task.id,
                                                                  Annotation.was_cancelled.is_(False))
                                      .correlate(Task).exists()).order_by(Task.id))
        anns = list(s.scalars(select(Annotation.id).where(Annotation.task_id == tid,
                                                          Annotation.was_cancelled.is_(False))))
    assert tf.statuses(store, project, [tid])[tid] == "undecided"
    first = ds.record(project, [DecisionRequest(tid, "accept", annotation_id=anns[0])], reviewer=ME)
    assert tf.statuses(store, project, [tid])[tid] == ("decided" if len(anns) == 1 else "partly")
    ds.record(project, [DecisionRequest(tid, "accept", annotation_id=a) for a in anns[1:]] or
              [DecisionRequest(tid, "skip")], reviewer=ME)
    assert tf.statuses(store, project, [tid])[tid] == "decided"
    esc = ds.record(project, [DecisionRequest(tid, "escalate", annotation_id=anns[0], reason="?")], reviewer=ME)
    assert tf.statuses(store, project, [tid])[tid] == "escalated"
    ds.retract(esc.decisions[0].uuid, reviewer=ME)
    assert tf.statuses(store, project, [tid])[tid] == "decided"
    with store.transaction() as s:
        did = s.scalar(select(Decision.id).where(Decision.uuid == first.decisions[0].uuid))
        s.execute(update(DecisionSync).where(DecisionSync.decision_id == did).values(state="conflict"))
    assert tf.statuses(store, project, [tid])[tid] == "conflict"
    SyncService(store).keep_mine(first.decisions[0].uuid, actor=ME)  # resolved: pending again
    assert tf.statuses(store, project, [tid])[tid] == oracle_statuses(store, project)[tid] == "decided"


def test_annotator_filter(store: Store, project: int) -> None:
    with store.session() as s:
        pairs = s.execute(select(Annotation.task_id, Annotation.completed_by)).all()
    people = tf.annotators(store, project)
    assert {a.user_id for a in people} == {2, 3, 4}
    assert {a.user_id: a.name for a in people}[2] == "ann@example.com"  # the member's e-mail, as elsewhere
    for who in ({2}, {3, 4}):
        want = sorted({t for t, u in pairs if u in who})
        f = tf.TaskFilter(annotators=frozenset(who))
        assert sorted(r.id for r in all_rows(store, project, f)) == want


def test_search_matches_all_words_in_values_not_keys(store: Store, project: int) -> None:
    with store.session() as s:
        data = dict(s.execute(select(Task.id, Task.data).where(Task.project_id == project)).all())

    def want(*words: str) -> list[int]:
        return sorted(t for t, d in data.items()
                      if all(any(w.lower() in str(v).lower() for v in d.values()) for w in words))

    for q in ("refund", "REFUND login", "café", "caf", "ACME twice", "parcel_"):
        got = sorted(r.id for r in all_rows(store, project, tf.TaskFilter(search=q)))
        assert got == want(*q.split()), q
    assert want("refund") and want("café")
    # "text" is a key of every task, in no value: keys are not searched
    assert tf.count(store, project, tf.TaskFilter(search="text")) == 0
    assert tf.count(store, project, tf.TaskFilter(search="sentiment")) == len(data)  # a value of every task
    assert tf.count(store, project, tf.TaskFilter(search="100%")) == 0  # LIKE wildcards are literal


def test_control_and_disagreement_filters(store: Store, project: int) -> None:
    with store.session() as s:
        rows = s.execute(select(Annotation.task_id, Annotation.completed_by, Annotation.result)
                         .join(Task, Task.id == Annotation.task_id)
                         .where(Task.project_id == project, Annotation.was_cancelled.is_(False))).all()
    labels: dict[int, dict[int, str]] = {}
    answered: set[int] = set()
    for t, u, result in rows:
        lab = [i["value"]["choices"][0] for i in result if i.get("from_name") == "sentiment"]
        if lab:
            answered.add(t)
        labels.setdefault(t, {})[u] = lab[0] if lab else ""
    # two annotators (not cancelled) disagree on sentiment: different answers (no answer is an answer, as for
    # the metrics engine: an annotation that leaves the control empty disagrees with one that chose)
    disagree = sorted(t for t, by in labels.items() if len(by) >= 2 and len(set(by.values())) > 1)
    idx = tf.agreement_index(store, project)
    f = tf.TaskFilter(control="sentiment", agreement_below=1.0)
    got = sorted(r.id for r in all_rows(store, project, f))
    assert got == disagree and disagree
    assert sorted(r.id for r in all_rows(store, project, tf.TaskFilter(control="sentiment"))) == sorted(answered)
    # any control: with one control answered, the same tasks
    assert sorted(r.id for r in all_rows(store, project, tf.TaskFilter(agreement_below=1.0))) == disagree
    assert tf.count(store, project, tf.TaskFilter(control="quality", agreement_below=1.0), index=idx) == 0
    # cached per data version: the same object until the data changes
    assert tf.agreement_index(store, project) is idx
    combined = tf.TaskFilter(control="sentiment", agreement_below=1.0, statuses=frozenset({"undecided"}))
    st = oracle_statuses(store, project)
    assert sorted(r.id for r in all_rows(store, project, combined)) == [t for t in disagree if st[t] == "undecided"]


def _key(store: Store, pid: int, sort: str) -> dict[int, object]:
    st = oracle_statuses(store, pid)
    with store.session() as s:
        tasks = s.execute(select(Task.id, Task.server_id, Task.position, Task.data)
                          .where(Task.project_id == pid)).all()
        n_ann: dict[int, int] = {}
        gt: set[int] = set()
        for t, g in s.execute(select(Annotation.task_id, Annotation.ground_truth)):
            n_ann[t] = n_ann.get(t, 0) + 1
            if g:
                gt.add(t)
        n_pred: dict[int, int] = {}
        for (t,) in s.execute(select(Prediction.task_id)):
            n_pred[t] = n_pred.get(t, 0) + 1
    return {t.id: {"position": t.position, "task": (t.server_id is not None, t.server_id or 0),
                   "status": tf.STATUSES.index(st[t.id]), "text": t.data["text"].lower(),
                   "annotations": n_ann.get(t.id, 0), "predictions": n_pred.get(t.id, 0),
                   "ground_truth": int(t.id in gt)}[sort] for t in tasks}


@pytest.mark.parametrize("sort", tf.SORT_KEYS)
def test_sort_both_directions(store: Store, project: int, sort: str) -> None:
    key = _key(store, project, sort)
    for desc in (False, True):
        got = [r.id for r in all_rows(store, project, tf.TaskFilter(sort=sort, descending=desc))]
        prim = [key[t] for t in got]
        assert prim == sorted(prim, reverse=desc), (sort, desc)  # type: ignore[type-var]
        assert len(set(got)) == len(got) == len(key)
    if sort in ("position", "task"):
        asc = [r.id for r in all_rows(store, project, tf.TaskFilter(sort=sort))]
        assert [r.id for r in all_rows(store, project, tf.TaskFilter(sort=sort, descending=True))] == asc[::-1]


def test_locate_under_filters_and_sorts(store: Store, project: int) -> None:
    st = oracle_statuses(store, project)
    for f in (tf.TaskFilter(), tf.TaskFilter(sort="status", descending=True), tf.TaskFilter(sort="text"),
              tf.TaskFilter(statuses=frozenset({"partly", "decided"}), sort="annotations"),
              tf.TaskFilter(search="refund")):
        rows = all_rows(store, project, f)
        for i, r in enumerate(rows):
            shown = r.server_id if r.server_id is not None else r.id
            assert tf.locate(store, project, f, shown) == i
    undecided = tf.TaskFilter(statuses=frozenset({"undecided"}))
    other = next(t for t, v in st.items() if v != "undecided")
    rows = tf.page(store, project, tf.TaskFilter(), 0, 100)
    shown = {r.id: (r.server_id if r.server_id is not None else r.id) for r in rows}
    assert tf.locate(store, project, undecided, shown[other]) is None  # in the project, not under the filter
    assert tf.locate(store, project, tf.TaskFilter(), 999_999) is None  # not in the project
    local_only = next(r for r in rows if r.server_id is None)  # a task without a server id: its local id
    assert tf.locate(store, project, tf.TaskFilter(), local_only.id) == rows.index(local_only)


def test_filter_validates_its_fields() -> None:
    with pytest.raises(ValueError):
        tf.TaskFilter(statuses=frozenset({"done"}))
    with pytest.raises(ValueError):
        tf.TaskFilter(sort="colour")
    f = tf.TaskFilter(search="x", sort="text", descending=True, statuses=frozenset({"partly"}))
    assert f.active and not f.cleared().active and f.cleared().sort == "text" and f.cleared().descending


def test_10k_tasks_only_pages_are_loaded(store: Store, tmp_path: Path, monkeypatch) -> None:
    tasks = [{"id": i + 1, "data": {"text": f"task {i} " + ("refund" if i % 10 == 0 else "login")},
              "annotations": [{"id": 10 * i + k, "completed_by": 2 + k, "result": [choice("pos")]}
                              for k in range(2)]} for i in range(10_000)]
    pid = _import(store, tmp_path, tasks)
    with store.session() as s:
        first = list(s.scalars(select(Annotation.id).join(Task).where(Task.project_id == pid)
                               .order_by(Annotation.id).limit(600)))
    DecisionService(store).record(pid, [DecisionRequest(store_task, "accept", annotation_id=a)
                                        for a, store_task in _ann_tasks(store, first)], reviewer=ME)
    loaded: list[int] = []
    real = ProjectService.task_rows

    def spy(self: ProjectService, ids):  # type: ignore[no-untyped-def]
        loaded.append(len(list(ids)))
        return real(self, ids)

    monkeypatch.setattr(ProjectService, "task_rows", spy)
    assert tf.count(store, pid, tf.TaskFilter()) == 10_000
    assert tf.count(store, pid, tf.TaskFilter(statuses=frozenset({"decided"}))) == 300
    assert tf.count(store, pid, tf.TaskFilter(search="refund")) == 1_000
    assert loaded == []  # counting builds no rows
    page = tf.page(store, pid, tf.TaskFilter(sort="status", descending=True), 0, 200)
    assert len(page) == 200 and {r.status for r in page} == {"decided"}
    last = tf.page(store, pid, tf.TaskFilter(), 9_900, 200)
    assert len(last) == 100 and last[-1].server_id == 10_000
    assert loaded == [200, 100]  # only the asked pages became rows
    assert tf.locate(store, pid, tf.TaskFilter(), 7_777) == 7_776
    assert loaded == [200, 100]


def _ann_tasks(store: Store, ann_ids: list[int]) -> list[tuple[int, int]]:
    with store.session() as s:
        return [(a, t) for a, t in s.execute(select(Annotation.id, Annotation.task_id)
                                              .where(Annotation.id.in_(ann_ids)).order_by(Annotation.id))]


def test_agreement_index_disagreeing_threshold() -> None:
    idx = tf.AgreementIndex(1, (), np.array([1, 2, 3, 4]), np.array([1.0, 0.5, np.nan, 0.9]),
                            {"c": np.array([1.0, 0.2, np.nan, 1.0])}, {"c": np.array([1, 2, 4])})
    assert idx.disagreeing(None).tolist() == [2, 4]
    assert idx.disagreeing(None, 0.6).tolist() == [2]
    assert idx.disagreeing("c").tolist() == [2]
    assert idx.disagreeing("missing").tolist() == []
    assert idx.task_ids(tf.TaskFilter(control="c")).tolist() == [1, 2, 4]
    assert idx.task_ids(tf.TaskFilter()) is None
