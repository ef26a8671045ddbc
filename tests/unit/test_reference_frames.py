"""Reference vs evaluator in the dashboard frames: the same decisions give the same numbers before a push
and after the pull that brings them back (DESIGN.md section 7, issue 11 "same numbers before and after a sync").

No server here: a push + pull is simulated on the store exactly as the sync engine leaves it (community
edition): an accept flags the annotation ``ground_truth``; a fix, and an accepted prediction, add a reviewer
annotation (``completed_by`` = the reviewer's member id, ``ground_truth``) named ``fix_annotation`` in the
decision's meta record and in its ``decision_sync.effect``; a retraction clears the flag it had set; every
decision leaves its record in ``tasks.meta["reviewdesk"]["decisions"]`` and the task's ``updated_at`` moves.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app.main import main
from app.metrics import GROUND_TRUTH
from app.models.schema import Annotation, Decision, DecisionSync, Member, Prediction, Project, Task
from app.models.store import Store
from app.services import dashboard
from app.services.dashboard import compute_dashboard, data_version, disagreeing_tasks, load_frames
from app.services.decisions import DecisionRequest, DecisionService
from app.services.projects import ProjectService

CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text" choice="single">
    <Choice value="pos"/><Choice value="neg"/><Choice value="neutral"/>
  </Choices>
  <Labels name="ner" toName="text"><Label value="ORG"/><Label value="PER"/></Labels>
  <Rating name="quality" toName="text" maxRating="5"/>
</View>"""

ONE_CONTROL = """<View>
  <Text name="text" value="$text"/>
  <Choices name="label" toName="text" choice="single">
    <Choice value="a"/><Choice value="b"/><Choice value="c"/>
  </Choices>
</View>"""

USERS = {2: "ann@example.com", 3: "bob@example.com", 4: "cat@example.com"}
REVIEWER, REVIEWER_ID = "rev@example.com", 9


def _choice(v: str, name: str = "sentiment") -> dict[str, Any]:
    return {"id": f"c-{name}-{v}", "from_name": name, "to_name": "text", "type": "choices",
            "value": {"choices": [v]}}


def _span(start: int, label: str) -> dict[str, Any]:
    return {"id": f"s-{start}-{label}", "from_name": "ner", "to_name": "text", "type": "labels",
            "value": {"start": start, "end": start + 4, "text": "Acme", "labels": [label]}}


def _rating(r: int) -> dict[str, Any]:
    return {"id": f"r-{r}", "from_name": "quality", "to_name": "text", "type": "rating", "value": {"rating": r}}


def _ann(sid: int, uid: int, result: list[dict[str, Any]], *, lead: float, day: int,
         ground_truth: bool = False) -> dict[str, Any]:
    return {"id": sid, "completed_by": {"id": uid, "email": USERS[uid]}, "result": result,
            "ground_truth": ground_truth, "lead_time": lead, "created_at": f"2026-03-{day:02d}T10:00:00Z",
            "updated_at": f"2026-03-{day:02d}T10:00:00Z"}


def _export() -> list[dict[str, Any]]:
    """Eight tasks, three annotators with partly differing answers, a model on half of them."""
    sent = ["pos", "neg", "neutral"]
    tasks = []
    for k in range(8):
        anns = []
        for j, uid in enumerate((2, 3, 4)):
            if (k + j) % 5 == 4:
                continue  # not everyone annotates everything
            s = sent[(k + (j if k % 3 == 0 else 0)) % 3]
            res = [_choice(s), _span(5 * ((k + j) % 2), "ORG" if (k * j) % 4 else "PER"), _rating(1 + (k + j) % 5)]
            anns.append(_ann(100 + 10 * k + j, uid, res, lead=10.0 + 3 * j + k, day=1 + k))
        preds = [{"id": 500 + k, "model_version": "v1", "score": 0.5,
                  "result": [_choice(sent[(k + 1) % 3]), _rating(3)]}] if k % 2 == 0 else []
        tasks.append({"id": 10 + k, "data": {"text": f"Acme ticket {k}"}, "meta": {"source": "mail"},
                      "created_at": "2026-03-01T00:00:00Z", "updated_at": f"2026-03-{1 + k:02d}T10:00:00Z",
                      "annotations": anns, "predictions": preds})
    return tasks


def _import(store: Store, tmp_path: Path, export: list[dict[str, Any]], config: str = CONFIG) -> int:
    src = tmp_path / "export.json"
    src.write_text(json.dumps(export))
    pid = ProjectService(store).import_file(src, config, "T").summary.project_id
    with store.transaction() as s:  # the reviewer is a project member (a pull brings members)
        s.add(Member(project_id=pid, user_id=REVIEWER_ID, email=REVIEWER))
    return pid


def _metrics_json(capsys: pytest.CaptureFixture[str], store: Store, pid: int, *extra: str) -> str:
    assert main(["--data-dir", str(store.data_dir), "metrics", str(pid), "--json", *extra]) == 0
    out, _ = capsys.readouterr()
    return out


def _dashboard_json(store: Store, pid: int) -> str:
    """The GUI dashboard's numbers (matrices per control, per-annotator table, drift, leaderboard)."""
    from app.metrics import to_jsonable

    d = compute_dashboard(store, pid, save=False)
    payload = {"matrices": {str(c): {"rows": list(m.rows), "columns": list(m.columns), "matrix": m.matrix,
                                     "counts": m.counts} for c, m in d.matrices.items()},
               "quality": d.quality.to_dict(orient="records"),
               "drift": d.drift.drop(columns=["time"], errors="ignore").to_dict(orient="records"),
               "leaderboard": d.leaderboard.reset_index().to_dict(orient="records"),
               "difficulty": d.difficulty.to_dict(orient="records")}
    return json.dumps(to_jsonable(payload), sort_keys=True)


def _both(capsys: pytest.CaptureFixture[str], store: Store, pid: int) -> tuple[str, str, str]:
    return (_metrics_json(capsys, store, pid), _metrics_json(capsys, store, pid, "--mode", "consensus"),
            _dashboard_json(store, pid))


def _cold(fn: Callable[[], Any]) -> Any:
    """``fn`` with the in-process frames cache emptied (a fresh ``reviewdesk`` process)."""
    with dashboard._CACHE_LOCK:
        dashboard._CACHE.clear()
    return fn()


# -- the simulated sync ------------------------------------------------------------------------------------
def _push_and_pull(store: Store, pid: int, *, at: str = "2026-04-01T12:00:00.000000Z") -> None:
    """Leave the store as push (community edition) followed by a pull leaves it, for every pending decision."""
    with store.transaction() as s:
        fold = bool(s.scalar(select(Project.fold_ground_truth).where(Project.id == pid)))
        next_sid = (s.scalar(select(func.max(Annotation.server_id))) or 0) + 1000
        for d, ds in s.execute(select(Decision, DecisionSync).join(DecisionSync, DecisionSync.decision_id == Decision.id)
                               .where(Decision.project_id == pid, DecisionSync.state.in_(("pending", "local")))
                               .order_by(Decision.id)).all():
            task = s.get(Task, d.task_id)
            assert task is not None
            ann = s.get(Annotation, d.annotation_id) if d.annotation_id else None
            eff: dict[str, Any] = {"meta": True}
            if d.verdict == "accept" and fold and ann is not None:
                ann.ground_truth = True
                ann.updated_at = at
                eff["ground_truth"] = ann.server_id
                eff["annotation_updated_at"] = [at]
            elif d.verdict == "fix" or (d.verdict == "accept" and fold and d.prediction_id is not None):
                result = d.result if d.verdict == "fix" else s.get(Prediction, d.prediction_id).result  # type: ignore[union-attr]
                pos = s.scalar(select(func.max(Annotation.position)).where(Annotation.task_id == task.id)) or 0
                s.add(Annotation(task_id=task.id, server_id=next_sid, completed_by=REVIEWER_ID,
                                 completed_by_raw=REVIEWER_ID, result=result, ground_truth=True,
                                 lead_time=(d.lead_time_ms or 0) / 1000.0, created_at=at, updated_at=at,
                                 position=pos + 1))
                eff["fix_annotation"] = next_sid
                next_sid += 1
            elif d.verdict == "retract":
                target = s.scalar(select(Decision).where(Decision.uuid == d.retracts))
                assert target is not None
                teff = s.scalar(select(DecisionSync.effect).where(DecisionSync.decision_id == target.id)) or {}
                flagged = teff.get("fix_annotation") or teff.get("ground_truth")
                if flagged:
                    a = s.scalar(select(Annotation).where(Annotation.task_id == task.id,
                                                          Annotation.server_id == flagged))
                    assert a is not None
                    a.ground_truth = False
                    a.updated_at = at
                    eff["cleared_ground_truth"] = flagged
            record: dict[str, Any] = {"uuid": d.uuid, "verdict": d.verdict}
            if ann is not None:
                record["annotation"] = ann.server_id
            if d.prediction_id is not None:
                record["prediction"] = s.get(Prediction, d.prediction_id).server_id  # type: ignore[union-attr]
            record.update({"reviewer": d.reviewer, "role": d.role, "at": d.created_at})
            for key, value in (("reason", d.reason), ("comment", d.comment), ("retracts", d.retracts),
                               ("fix_annotation", eff.get("fix_annotation"))):
                if value is not None:
                    record[key] = value
            meta = json.loads(json.dumps(task.meta or {}))
            rd = meta.setdefault("reviewdesk", {"v": 1})
            rd.setdefault("decisions", []).append(record)
            task.meta = meta
            task.updated_at = at
            ds.state = "synced"
            ds.effect = {**(ds.effect or {}), **eff, "synced_at": at}
            ds.updated_at = at


def _annotation(store: Store, pid: int, task_sid: int, user: int) -> tuple[int, int]:
    with store.session() as s:
        row = s.execute(select(Task.id, Annotation.id).join(Annotation, Annotation.task_id == Task.id)
                        .where(Task.project_id == pid, Task.server_id == task_sid,
                               Annotation.completed_by == user)).one()
    return int(row[0]), int(row[1])


def _quality(report: str) -> dict[str, dict[str, Any]]:
    return {r["evaluator"]: r for r in json.loads(report)["per_annotator"]}


# -- before the push == after the pull -----------------------------------------------------------------------
def _decide_accept(store: Store, pid: int) -> None:
    tid, aid = _annotation(store, pid, 10, 2)
    DecisionService(store).record(pid, [DecisionRequest(tid, "accept", annotation_id=aid)], reviewer=REVIEWER)


def _decide_fix(store: Store, pid: int) -> None:
    tid, aid = _annotation(store, pid, 11, 3)
    fixed = [_choice("neutral"), _span(0, "ORG"), _rating(4)]
    DecisionService(store).record(pid, [DecisionRequest(tid, "fix", annotation_id=aid, result=fixed,
                                                        lead_time_ms=4200)], reviewer=REVIEWER)


def _decide_reject(store: Store, pid: int) -> None:
    tid, aid = _annotation(store, pid, 12, 3)
    DecisionService(store).record(pid, [DecisionRequest(tid, "reject", annotation_id=aid, reason="Wrong label")],
                                  reviewer=REVIEWER)


def _decide_prediction(store: Store, pid: int) -> None:
    with store.session() as s:
        tid, prid = s.execute(select(Task.id, Prediction.id).join(Prediction, Prediction.task_id == Task.id)
                              .where(Task.project_id == pid, Task.server_id == 14)).one()
    DecisionService(store).record(pid, [DecisionRequest(tid, "accept", prediction_id=prid)], reviewer=REVIEWER)


def _decide_all(store: Store, pid: int) -> None:
    for f in (_decide_accept, _decide_fix, _decide_reject, _decide_prediction):
        f(store, pid)
    # and a second reviewer's verdicts on other tasks: an accept of another annotator, a fix
    tid, aid = _annotation(store, pid, 16, 4)
    tid2, aid2 = _annotation(store, pid, 17, 2)
    DecisionService(store).record(pid, [DecisionRequest(tid, "accept", annotation_id=aid),
                                        DecisionRequest(tid2, "fix", annotation_id=aid2,
                                                        result=[_choice("pos"), _rating(2)])], reviewer=REVIEWER)


@pytest.mark.parametrize("decide", [_decide_accept, _decide_fix, _decide_reject, _decide_prediction, _decide_all],
                         ids=["accept", "fix", "reject", "accept-prediction", "all"])
def test_metrics_json_identical_before_push_and_after_pull(store: Store, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str], decide: Any) -> None:
    pid = _import(store, tmp_path, _export())
    decide(store, pid)
    before = _both(capsys, store, pid)
    v_before = data_version(store, pid)
    _push_and_pull(store, pid)
    assert data_version(store, pid) != v_before  # the pull is seen: no stale frames from the cache
    after = _both(capsys, store, pid)
    cold = _cold(lambda: _both(capsys, store, pid))
    assert after[0] == before[0]  # metrics --json (pairwise)
    assert after[1] == before[1]  # metrics --json --mode consensus
    assert after[2] == before[2]  # the dashboard's tables
    assert cold == before
    # the reviewer who fixed is never an evaluator, before or after
    assert REVIEWER not in _quality(after[0])


def test_accepted_annotation_is_the_reference_not_scored_against_itself(
        store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pid = _import(store, tmp_path, _export())
    base = _quality(_metrics_json(capsys, store, pid))
    assert all(r["accuracy_n"] == 0 for r in base.values())  # no ground truth yet
    _decide_accept(store, pid)  # ann's annotation on task 10
    q = _quality(_metrics_json(capsys, store, pid))
    assert q["ann@example.com"]["accuracy_n"] == 0 and q["ann@example.com"]["accuracy"] is None  # no self-score
    assert q["bob@example.com"]["accuracy_n"] == 3  # 3 controls on task 10, scored against ann's result
    for ev in ("ann@example.com", "bob@example.com", "cat@example.com"):  # nothing else moved
        for col in ("volume", "agreement", "agreement_n", "median_lead_time"):
            assert q[ev][col] == base[ev][col], (ev, col)
    _push_and_pull(store, pid)
    q2 = _quality(_metrics_json(capsys, store, pid))
    assert q2 == q


def test_fix_annotation_is_not_an_evaluator_even_after_its_flag_is_cleared(
        store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Fix, push, pull; undo, push, pull: the reviewer's server annotation never becomes an evaluator."""
    pid = _import(store, tmp_path, _export())
    base = _both(capsys, store, pid)
    _decide_fix(store, pid)
    fixed = _both(capsys, store, pid)
    assert fixed != base  # the fix is ground truth now
    q = _quality(fixed[0])
    assert q["bob@example.com"]["accuracy_n"] == 3 and q["bob@example.com"]["accuracy"] < 1.0  # scored vs the fix
    _push_and_pull(store, pid)
    assert _both(capsys, store, pid) == fixed
    (fix_uuid,) = [d.uuid for d in DecisionService(store).list_decisions(pid) if d.verdict == "fix"]
    DecisionService(store).retract(fix_uuid, reviewer=REVIEWER)
    undone = _both(capsys, store, pid)
    assert undone == base
    _push_and_pull(store, pid)  # the flag on the reviewer's annotation is cleared; the annotation stays
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Annotation)
                        .where(Annotation.completed_by == REVIEWER_ID, Annotation.ground_truth.is_(False))) == 1
    assert _both(capsys, store, pid) == base
    assert _cold(lambda: _both(capsys, store, pid)) == base


def test_undo_of_a_synced_accept_same_numbers_before_and_after_its_push(
        store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pid = _import(store, tmp_path, _export())
    base = _both(capsys, store, pid)
    _decide_accept(store, pid)
    _push_and_pull(store, pid)
    (uuid,) = [d.uuid for d in DecisionService(store).list_decisions(pid) if d.verdict == "accept"]
    DecisionService(store).retract(uuid, reviewer=REVIEWER)
    # the flag our push set is still on the annotation until the retraction is pushed: it is not the reference
    undone = _both(capsys, store, pid)
    assert undone == base
    _push_and_pull(store, pid)
    assert _both(capsys, store, pid) == base


def test_fold_off_fix_flag_from_our_push_is_not_a_reference(
        store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without folding a fix is no ground truth here; the flagged annotation its push creates is none either."""
    pid = _import(store, tmp_path, _export())
    with store.transaction() as s:
        p = s.get(Project, pid)
        assert p is not None
        p.fold_ground_truth = False
    base = _both(capsys, store, pid)
    _decide_fix(store, pid)
    before = _both(capsys, store, pid)
    _push_and_pull(store, pid)
    assert _both(capsys, store, pid) == before
    assert all(r["accuracy_n"] == 0 for r in json.loads(before[0])["per_annotator"])  # still no ground truth
    assert json.loads(before[0])["matrix"] == json.loads(base[0])["matrix"]


# -- a server ground-truth flag ---------------------------------------------------------------------------
def _flag_export() -> list[dict[str, Any]]:
    """t1: ann a, bob a, cat b (flagged on the server); t2: ann a, bob b; t3: all b; t4: ann c, cat c."""
    rows = {1: [(2, "a", False), (3, "a", False), (4, "b", True)], 2: [(2, "a", False), (3, "b", False)],
            3: [(2, "b", False), (3, "b", False), (4, "b", False)], 4: [(2, "c", False), (4, "c", False)]}
    lead = {2: 10.0, 3: 20.0, 4: 30.0}
    return [{"id": t, "data": {"text": f"t{t}"},
             "annotations": [_ann(100 * t + uid, uid, [_choice(v, "label")], lead=lead[uid] + t, day=t,
                                  ground_truth=gt) for uid, v, gt in anns]}
            for t, anns in rows.items()]


def test_server_flagged_annotation_is_the_reference_and_still_an_evaluator(
        store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pid = _import(store, tmp_path, _flag_export(), ONE_CONTROL)
    report = json.loads(_metrics_json(capsys, store, pid))
    q = {r["evaluator"]: r for r in report["per_annotator"]}
    ann, bob, cat = (q[f"{n}@example.com"] for n in ("ann", "bob", "cat"))
    # volume: cat's flagged annotation on t1 counts (t1, t3, t4)
    assert (ann["volume"], bob["volume"], cat["volume"]) == (4, 3, 3)
    # accuracy: only t1 has a reference (cat's "b"); ann and bob answered "a"; cat is not scored against itself
    assert (ann["accuracy"], ann["accuracy_n"]) == (0.0, 1)
    assert (bob["accuracy"], bob["accuracy_n"]) == (0.0, 1)
    assert (cat["accuracy"], cat["accuracy_n"]) == (None, 0)
    # pairwise agreement with the other humans over shared tasks, the flagged annotation included:
    # ann: vs bob t1 1, t2 0, t3 1; vs cat t1 0, t3 1, t4 1 -> 4/6
    # bob: vs ann t1 1, t2 0, t3 1; vs cat t1 0, t3 1 -> 3/5;  cat: vs ann 0, 1, 1; vs bob 0, 1 -> 3/5
    assert (ann["agreement_n"], bob["agreement_n"], cat["agreement_n"]) == (6, 5, 5)
    assert math.isclose(ann["agreement"], 4 / 6) and math.isclose(bob["agreement"], 3 / 5)
    assert math.isclose(cat["agreement"], 3 / 5)
    # time: cat's median lead time over t1, t3, t4 = 31, 33, 34
    assert cat["median_lead_time"] == 33.0
    # the matrix: Ground truth column and counts
    rows, cols = report["rows"], report["columns"]
    gt_col = cols.index(GROUND_TRUTH)
    cell = {r: (report["matrix"][i][gt_col], report["counts"][i][gt_col]) for i, r in enumerate(rows)}
    assert cell["ann@example.com"] == (0.0, 1) and cell["bob@example.com"] == (0.0, 1)
    assert cell["cat@example.com"] == (None, 0)
    i_ann, i_cat = rows.index("ann@example.com"), rows.index("cat@example.com")
    assert math.isclose(report["matrix"][i_ann][cols.index("cat@example.com")], 2 / 3)
    assert report["counts"][i_cat][cols.index("ann@example.com")] == 3
    # drill-down: cat has no disagreement with the ground truth it is; ann disagrees on t1
    t1 = _annotation(store, pid, 1, 2)[0]
    assert disagreeing_tasks(store, pid, "cat@example.com", GROUND_TRUTH, None) == []
    assert disagreeing_tasks(store, pid, "ann@example.com", GROUND_TRUTH, None) == [t1]


def test_adjudicated_reference_wins_over_server_flag_and_flagged_annotator_is_then_scored(
        store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pid = _import(store, tmp_path, _flag_export(), ONE_CONTROL)
    tid, aid = _annotation(store, pid, 1, 2)  # accept ann's "a" on t1: the adjudicated reference
    DecisionService(store).record(pid, [DecisionRequest(tid, "accept", annotation_id=aid)], reviewer=REVIEWER)
    q = _quality(_metrics_json(capsys, store, pid))
    assert (q["ann@example.com"]["accuracy"], q["ann@example.com"]["accuracy_n"]) == (None, 0)
    assert (q["bob@example.com"]["accuracy"], q["bob@example.com"]["accuracy_n"]) == (1.0, 1)
    assert (q["cat@example.com"]["accuracy"], q["cat@example.com"]["accuracy_n"]) == (0.0, 1)
    assert q["ann@example.com"]["accept_rate"] == 1.0 and q["ann@example.com"]["n_decisions"] == 1


# -- decisions from the server count like local ones ----------------------------------------------------------
def test_server_origin_decisions_count_in_rates_and_their_retractions_are_honoured(
        store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pid = _import(store, tmp_path, _flag_export(), ONE_CONTROL)
    ids = {(t, u): _annotation(store, pid, t, u) for t, u in ((2, 2), (2, 3), (3, 2), (3, 3))}
    DecisionService(store).record(pid, [DecisionRequest(ids[(2, 2)][0], "reject", annotation_id=ids[(2, 2)][1],
                                                        reason="Wrong label")], reviewer=REVIEWER)
    with store.transaction() as s:
        def server(uuid: str, key: tuple[int, int], verdict: str, *, retracts: str | None = None) -> None:
            s.add(Decision(uuid=uuid, project_id=pid, task_id=ids[key][0], annotation_id=ids[key][1],
                           verdict=verdict, reason="r" if verdict == "reject" else None, reviewer="priya@example.com",
                           role="reviewer", created_at="2026-04-02T09:00:00.000000Z", retracts=retracts,
                           origin="server"))
            s.flush()
        server("s-1", (3, 2), "accept")
        server("s-2", (2, 3), "reject")
        server("s-3", (3, 3), "reject")
        server("s-4", (3, 3), "retract", retracts="s-3")
    q = _quality(_metrics_json(capsys, store, pid))
    assert q["ann@example.com"]["n_decisions"] == 2  # local reject + server accept
    assert q["ann@example.com"]["accept_rate"] == 0.5 and q["ann@example.com"]["reject_rate"] == 0.5
    assert q["bob@example.com"]["n_decisions"] == 1 and q["bob@example.com"]["reject_rate"] == 1.0  # s-3 undone


# -- the dashboard's fingerprint -------------------------------------------------------------------------------
def test_data_version_moves_with_sync_effects_meta_flags_and_members(store: Store, tmp_path: Path) -> None:
    pid = _import(store, tmp_path, _export())
    _decide_fix(store, pid)
    seen = {data_version(store, pid)}

    def changed(mutate: Callable[[Any], None]) -> None:
        with store.transaction() as s:
            mutate(s)
        v = data_version(store, pid)
        assert v not in seen
        seen.add(v)

    def effect(s: Any) -> None:
        ds = s.scalars(select(DecisionSync)).one()
        ds.effect = {"fix_annotation": 99999}

    def meta(s: Any) -> None:  # a pull that rewrites the meta without moving updated_at
        t = s.scalar(select(Task).where(Task.project_id == pid, Task.server_id == 11))
        t.meta = {**(t.meta or {}), "reviewdesk": {"v": 1, "decisions": [{"uuid": "x", "verdict": "fix",
                                                                          "fix_annotation": 99999}]}}

    def flag(s: Any) -> None:  # the ground-truth flag alone
        a = s.scalar(select(Annotation).where(Annotation.server_id == 110))
        a.ground_truth = True

    def member(s: Any) -> None:
        m = s.scalar(select(Member).where(Member.project_id == pid, Member.user_id == 2))
        m.email = "ann.renamed@example.com"

    for mutate in (effect, meta, flag, member):
        changed(mutate)
    assert data_version(store, pid)[0] == load_frames(store, pid).version[0]  # [0] stays the annotation count


# -- pulled into another reviewer's store ------------------------------------------------------------------------
def _pull_into(src: Store, src_pid: int, dst: Store, dst_pid: int, *, fold: bool) -> None:
    """Bring ``src``'s server state into ``dst`` as a pull does: flags, the reviewer annotations, task meta, and the
    decision records materialised as read-only ``origin = server`` decisions (with their ground-truth rows when
    ``fold``; a pull that does not fold them leaves the server flags as the reference)."""
    from app.models.schema import GroundTruth

    with src.session() as s:
        tasks = {t.server_id: (t.meta, t.updated_at) for t in s.scalars(select(Task).where(Task.project_id == src_pid))}
        anns = [(tsid, a.server_id, a.completed_by, a.result, a.ground_truth, a.lead_time, a.created_at, a.updated_at)
                for tsid, a in s.execute(select(Task.server_id, Annotation).join(Annotation, Annotation.task_id == Task.id)
                                         .where(Task.project_id == src_pid))]
    with dst.transaction() as s:
        tid = {t.server_id: t.id for t in s.scalars(select(Task).where(Task.project_id == dst_pid))}
        for tsid, (meta, updated) in tasks.items():
            t = s.get(Task, tid[tsid])
            assert t is not None
            t.meta, t.updated_at = meta, updated
        local = {(a.task_id, a.server_id): a for a in s.scalars(select(Annotation).join(Task, Task.id == Annotation.task_id)
                                                                .where(Task.project_id == dst_pid))}
        for tsid, asid, by, result, gt, lead, created, updated in anns:
            a = local.get((tid[tsid], asid))
            if a is None:
                a = Annotation(task_id=tid[tsid], server_id=asid, completed_by=by, completed_by_raw=by, result=result,
                               lead_time=lead, created_at=created, position=9)
                s.add(a)
                local[(tid[tsid], asid)] = a
            a.ground_truth, a.updated_at = gt, updated
        s.flush()
        preds = {(p.task_id, p.server_id): p.id for p in s.scalars(select(Prediction).join(Task, Task.id == Prediction.task_id)
                                                                    .where(Task.project_id == dst_pid))}
        for tsid, (meta, _) in tasks.items():
            t_id = tid[tsid]
            records = (meta or {}).get("reviewdesk", {}).get("decisions", [])
            retracted = {r.get("retracts") for r in records}
            for r in records:
                ann = local.get((t_id, r.get("annotation")))
                fix = local.get((t_id, r.get("fix_annotation")))
                d = Decision(uuid=r["uuid"], project_id=dst_pid, task_id=t_id, annotation_id=ann.id if ann else None,
                             prediction_id=preds.get((t_id, r.get("prediction"))), verdict=r["verdict"],
                             result=fix.result if fix is not None and r["verdict"] == "fix" else None,
                             reason=r.get("reason"), comment=r.get("comment"), reviewer=r["reviewer"],
                             role=r["role"], created_at=r["at"], retracts=r.get("retracts"), origin="server")
                s.add(d)
                s.flush()
                s.add(DecisionSync(decision_id=d.id, state="synced", updated_at=r["at"],
                                   effect={"origin": "server", "record": r}))
                if fold and r["verdict"] in ("accept", "fix") and r["uuid"] not in retracted:
                    result = fix.result if fix is not None else ann.result  # type: ignore[union-attr]
                    s.add(GroundTruth(task_id=t_id, result=result, source="decision",
                                      annotation_id=ann.id if ann else None, decision_uuid=r["uuid"], created_at=r["at"]))


@pytest.mark.parametrize("fold", [True, False], ids=["pull-folds-decisions", "pull-keeps-flags-only"])
def test_same_numbers_in_another_reviewers_store_after_its_pull(
        store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str], fold: bool) -> None:
    pid = _import(store, tmp_path, _export())
    _decide_all(store, pid)
    mine = _both(capsys, store, pid)
    _push_and_pull(store, pid)
    other = Store.open(tmp_path / "other")
    try:
        (tmp_path / "o").mkdir()
        opid = _import(other, tmp_path / "o", _export())
        assert _both(capsys, other, opid) != mine
        _pull_into(store, pid, other, opid, fold=fold)
        theirs = _both(capsys, other, opid)
    finally:
        other.close()
    assert theirs == mine
