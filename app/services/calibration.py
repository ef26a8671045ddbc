"""Calibration: a reviewer judges ground-truth tasks without seeing the reference and is scored per control
before touching production data (Qt-free; issue 15, docs/adr/0014).

A project may *require* calibration: a round of ``n_tasks`` ground-truth tasks and a pass threshold (0..1).
A round shows one annotation per task (not the reference's own, where the task has another) and the reviewer
judges it with the normal verdicts (accept, fix, reject). Each judgement is scored per control against the
task's current reference with the metric engine's matching function for the control type
(:func:`app.metrics.score_results`):

* accept -- the reviewer's answer is the annotation: ``score(annotation, reference)``;
* fix -- the reviewer's answer is the fixed result: ``score(fix, reference)``;
* reject -- the reviewer says the annotation is wrong: ``1 - score(annotation, reference)``.

A control with nothing in the reference, the annotation and the fix is not scored for that task (nothing was
there to judge). A control's score is the mean over the round's tasks where it was scored; the round passes
when every scored control reaches the threshold (``>=``). Judgements are stored in the calibration tables,
never as decisions: they do not touch the production record, the ground truth or the server. The production
queue is unlocked for a reviewer who passed a round at least as demanding as the current requirement
(as many tasks, a threshold as high). Every change appends an audit event.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from app.metrics import score_results
from app.models.audit import append_event
from app.models.config import parse_config, validate_result
from app.models.schema import (
    Annotation,
    CalibrationItem,
    CalibrationRound,
    CalibrationSetting,
    Project,
    Task,
)
from app.models.store import Store, now_iso
from app.services.changes import Changes
from app.services.groundtruth import GroundTruthService

CALIBRATION_VERDICTS = ("accept", "fix", "reject")
DEFAULT_TASKS = 10
DEFAULT_THRESHOLD = 0.8


class CalibrationError(ValueError):
    """A calibration request that cannot be done as asked; nothing was written."""


@dataclass(frozen=True)
class Requirement:
    project_id: int
    required: bool
    n_tasks: int
    threshold: float
    updated_at: str | None


@dataclass(frozen=True)
class ControlScore:
    control: str
    score: float  # mean over the round's tasks where the control was scored, 0..1
    n: int  # tasks where it was scored


@dataclass(frozen=True)
class RoundItem:
    position: int
    task_id: int
    task_server_id: int | None
    annotation_id: int | None
    verdict: str | None
    judged_at: str | None


@dataclass(frozen=True)
class RoundInfo:
    round_id: int
    project_id: int
    reviewer: str
    n_tasks: int
    threshold: float
    started_at: str
    items: tuple[RoundItem, ...]
    finished_at: str | None = None
    passed: bool | None = None
    scores: tuple[ControlScore, ...] = ()

    @property
    def judged(self) -> int:
        return sum(1 for i in self.items if i.verdict is not None)

    @property
    def next_position(self) -> int | None:
        """The first item not judged yet (None when all are)."""
        return next((i.position for i in self.items if i.verdict is None), None)

    @property
    def overall(self) -> float | None:
        return sum(c.score for c in self.scores) / len(self.scores) if self.scores else None


@dataclass(frozen=True)
class CalibrationStatus:
    requirement: Requirement
    reviewer: str
    passed: bool  # passed a round at least as demanding as the requirement
    open_round: int | None  # a started, unfinished round
    last: RoundInfo | None  # the reviewer's latest finished round

    @property
    def locked(self) -> bool:
        """True while the production queue is closed to this reviewer."""
        return self.requirement.required and not self.passed


@dataclass(frozen=True)
class Judged:
    item: RoundItem
    changes: Changes


def score_item(controls: Sequence[tuple[str, str, dict[str, Any]]], verdict: str, annotation: Sequence[Any],
               fix: Sequence[Any] | None, reference: Sequence[Any]) -> dict[str, float]:
    """Per-control score of one judgement against the reference (module doc); controls as (name, type, params).
    A control with nothing in the reference, the annotation and the fix is left out."""
    if verdict not in CALIBRATION_VERDICTS:
        raise CalibrationError(f"unknown verdict {verdict!r}; a calibration judgement is one of "
                               + ", ".join(CALIBRATION_VERDICTS))

    def of(result: Sequence[Any] | None, name: str) -> list[Any]:
        return [i for i in (result or ()) if isinstance(i, dict) and i.get("from_name") == name]

    out: dict[str, float] = {}
    for name, ctype, params in controls:
        ref, ann, fixed = of(reference, name), of(annotation, name), of(fix, name)
        if not ref and not ann and not fixed:
            continue
        if verdict == "accept":
            out[name] = score_results(ctype, ann, ref, params)
        elif verdict == "fix":
            out[name] = score_results(ctype, fixed, ref, params)
        else:
            out[name] = 1.0 - score_results(ctype, ann, ref, params)
    return out


def aggregate(per_item: Sequence[dict[str, float]], controls: Sequence[str], threshold: float
              ) -> tuple[tuple[ControlScore, ...], bool]:
    """Mean per control over the items that scored it; passed when every scored control reaches ``threshold``."""
    scores = []
    for c in controls:
        vals = [d[c] for d in per_item if c in d]
        if vals:
            scores.append(ControlScore(c, sum(vals) / len(vals), len(vals)))
    passed = bool(scores) and all(s.score >= threshold for s in scores)
    return tuple(scores), passed


class CalibrationService:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- the requirement ---------------------------------------------------------------------
    def requirement(self, project_id: int) -> Requirement:
        with self.store.session() as s:
            if s.get(Project, project_id) is None:
                raise LookupError(f"No project {project_id} in this store.")
            row = s.get(CalibrationSetting, project_id)
            if row is None:
                return Requirement(project_id, False, DEFAULT_TASKS, DEFAULT_THRESHOLD, None)
            return Requirement(project_id, bool(row.required), row.n_tasks, row.threshold, row.updated_at)

    def require(self, project_id: int, n_tasks: int, threshold: float, *, actor: str) -> Changes:
        """Require a calibration round of ``n_tasks`` ground-truth tasks passed at ``threshold`` (0..1)."""
        if n_tasks < 1:
            raise CalibrationError("A calibration round needs at least 1 task.")
        if not 0.0 <= threshold <= 1.0:
            raise CalibrationError(f"The pass threshold is a score between 0 and 1, not {threshold}.")
        available = GroundTruthService(self.store).count(project_id)
        if available < n_tasks:
            raise CalibrationError(f"Project {project_id} has {available} ground-truth task"
                                   f"{'s' if available != 1 else ''}; a round of {n_tasks} needs as many.")
        return self._set(project_id, True, n_tasks, float(threshold), actor)

    def turn_off(self, project_id: int, *, actor: str) -> Changes:
        req = self.requirement(project_id)
        return self._set(project_id, False, req.n_tasks, req.threshold, actor)

    def _set(self, project_id: int, required: bool, n_tasks: int, threshold: float, actor: str) -> Changes:
        with self.store.transaction() as s:
            if s.get(Project, project_id) is None:
                raise LookupError(f"No project {project_id} in this store.")
            row = s.get(CalibrationSetting, project_id)
            before = (None if row is None else
                      {"required": bool(row.required), "n_tasks": row.n_tasks, "threshold": row.threshold})
            after = {"required": required, "n_tasks": n_tasks, "threshold": threshold}
            if before == after:
                return Changes()
            if row is None:
                s.add(CalibrationSetting(project_id=project_id, required=required, n_tasks=n_tasks,
                                         threshold=threshold, updated_at=now_iso()))
            else:
                row.required, row.n_tasks, row.threshold, row.updated_at = required, n_tasks, threshold, now_iso()
            append_event(s, actor, "calibration.required" if required else "calibration.off",
                         {"project_id": project_id, "from": before, "to": after})
        return Changes(settings=True, calibration=True)

    # -- status ------------------------------------------------------------------------------
    def status(self, project_id: int, reviewer: str) -> CalibrationStatus:
        req = self.requirement(project_id)
        with self.store.session() as s:
            rounds = s.scalars(select(CalibrationRound).where(CalibrationRound.project_id == project_id,
                                                              func.lower(CalibrationRound.reviewer)
                                                              == reviewer.lower())
                               .order_by(CalibrationRound.id)).all()
            passed = any(r.passed and r.threshold >= req.threshold and r.n_tasks >= req.n_tasks for r in rounds)
            open_ = next((r.id for r in reversed(rounds) if r.finished_at is None), None)
            done = [r for r in rounds if r.finished_at is not None]
            last = self._info(s, done[-1]) if done else None
        return CalibrationStatus(req, reviewer, passed, open_, last)

    def production_unlocked(self, project_id: int, reviewer: str) -> bool:
        """The gate: may this reviewer work the production queue of the project?"""
        return not self.status(project_id, reviewer).locked

    # -- a round -----------------------------------------------------------------------------
    def start_round(self, project_id: int, reviewer: str) -> RoundInfo:
        """The reviewer's open round (resumed), else a new one: ``n_tasks`` ground-truth tasks drawn with a
        seed of the project, reviewer and round, preferring tasks whose reference the reviewer did not set."""
        st = self.status(project_id, reviewer)
        if st.open_round is not None:
            return self.round(st.open_round)
        req = st.requirement
        gt = GroundTruthService(self.store)
        order = list(gt.task_ids(project_id))
        with self.store.session() as s:
            n_rounds = s.scalar(select(func.count()).select_from(CalibrationRound)
                                .where(CalibrationRound.project_id == project_id)) or 0
        rng = random.Random(f"{project_id}:{reviewer.lower()}:{n_rounds}")  # noqa: S311 - a sample, not a secret
        rng.shuffle(order)
        picks: list[tuple[int, int]] = []
        mine: list[tuple[int, int]] = []
        step = max(4 * req.n_tasks, 50)
        for k in range(0, len(order), step):  # references and annotations of a few shuffled tasks at a time
            chunk = order[k:k + step]
            with self.store.session() as s:
                live: dict[int, list[int]] = {}
                for tid, aid in s.execute(select(Annotation.task_id, Annotation.id).where(
                        Annotation.task_id.in_(chunk), Annotation.was_cancelled.is_(False),
                        Annotation.deleted.is_(False)).order_by(Annotation.id)):
                    live.setdefault(tid, []).append(aid)
            for r in gt.references_of(project_id, chunk):
                if r.task_id not in live:
                    continue
                others = [a for a in live[r.task_id] if a != r.provenance.annotation_id]
                pair = (r.task_id, (others or live[r.task_id])[0])
                own = (r.provenance.reviewer or "").lower() == reviewer.lower()
                (mine if own else picks).append(pair)
            if len(picks) >= req.n_tasks:
                break
        chosen = (picks + mine)[:req.n_tasks]
        if not chosen:
            raise CalibrationError(f"Project {project_id} has no ground-truth task with an annotation to judge.")
        with self.store.transaction() as s:
            rnd = CalibrationRound(project_id=project_id, reviewer=reviewer, n_tasks=req.n_tasks,
                                   threshold=req.threshold, started_at=now_iso())
            s.add(rnd)
            s.flush()
            for pos, (tid, aid) in enumerate(chosen):
                s.add(CalibrationItem(round_id=rnd.id, position=pos, task_id=tid, annotation_id=aid))
            append_event(s, reviewer, "calibration.round_started",
                         {"project_id": project_id, "round": rnd.id, "tasks": [t for t, _ in chosen]})
            round_id = rnd.id
        return self.round(round_id)

    def round(self, round_id: int) -> RoundInfo:
        with self.store.session() as s:
            rnd = s.get(CalibrationRound, round_id)
            if rnd is None:
                raise LookupError(f"No calibration round {round_id}.")
            return self._info(s, rnd)

    def judge(self, round_id: int, position: int, verdict: str, *, reviewer: str,
              result: Sequence[Any] | None = None) -> Judged:
        """Record (or change) the judgement of one task of an open round."""
        if verdict not in CALIBRATION_VERDICTS:
            raise CalibrationError(f"unknown verdict {verdict!r}; a calibration judgement is one of "
                                   + ", ".join(CALIBRATION_VERDICTS))
        with self.store.transaction() as s:
            rnd = s.get(CalibrationRound, round_id)
            if rnd is None:
                raise LookupError(f"No calibration round {round_id}.")
            if rnd.reviewer.lower() != reviewer.lower():
                raise CalibrationError(f"Round {round_id} is {rnd.reviewer}'s.")
            if rnd.finished_at is not None:
                raise CalibrationError(f"Round {round_id} is finished; start a new one.")
            item = s.get(CalibrationItem, (round_id, position))
            if item is None:
                raise CalibrationError(f"Round {round_id} has no task at position {position}.")
            fixed = None
            if verdict == "fix":
                if result is None:
                    raise CalibrationError("A fix needs the fixed result.")
                xml = s.scalar(select(Project.label_config).where(Project.id == rnd.project_id)) or ""
                problems = validate_result(parse_config(xml), list(result), strict=True)
                if problems:
                    raise CalibrationError("The fixed result does not fit the labeling config: "
                                           + "; ".join(problems[:3]))
                fixed = list(result)
            before = item.verdict
            item.verdict, item.result, item.judged_at = verdict, fixed, now_iso()
            append_event(s, reviewer, "calibration.judged",
                         {"round": round_id, "position": position, "task": item.task_id,
                          "annotation": item.annotation_id, "from": before, "to": verdict,
                          **({"result": fixed} if fixed is not None else {})})
            sid = s.scalar(select(Task.server_id).where(Task.id == item.task_id))
            out = RoundItem(position, item.task_id, sid, item.annotation_id, verdict, item.judged_at)
        return Judged(out, Changes(calibration=True))

    def finish(self, round_id: int, *, reviewer: str) -> RoundInfo:
        """Score every judgement per control against the current references; pass or fail the round."""
        with self.store.session() as s:
            rnd = s.get(CalibrationRound, round_id)
            if rnd is None:
                raise LookupError(f"No calibration round {round_id}.")
            if rnd.reviewer.lower() != reviewer.lower():
                raise CalibrationError(f"Round {round_id} is {rnd.reviewer}'s.")
            if rnd.finished_at is not None:
                return self._info(s, rnd)
            items = s.scalars(select(CalibrationItem).where(CalibrationItem.round_id == round_id)
                              .order_by(CalibrationItem.position)).all()
            missing = [i.position + 1 for i in items if i.verdict is None]
            if missing:
                raise CalibrationError(f"{len(missing)} task{'s' if len(missing) != 1 else ''} of the round "
                                       f"{'are' if len(missing) != 1 else 'is'} not judged yet (#"
                                       + ", #".join(map(str, missing[:5])) + ").")
            project_id, threshold = rnd.project_id, rnd.threshold
            cfg = parse_config(s.scalar(select(Project.label_config).where(Project.id == project_id)) or "")
            anns: dict[int, Any] = dict(s.execute(select(Annotation.id, Annotation.result).where(
                Annotation.id.in_([i.annotation_id for i in items if i.annotation_id is not None]))).all())
            judged = [(i.task_id, i.verdict, (anns.get(i.annotation_id) if i.annotation_id is not None else None) or [], i.result) for i in items]
        controls = [(c.name, c.result_type or "", dict(c.attrs)) for c in cfg.controls]
        gt = GroundTruthService(self.store)
        per_item = []
        for tid, verdict, ann, fix in judged:
            ref = gt.reference(project_id, tid)
            assert verdict is not None
            per_item.append(score_item(controls, verdict, ann, fix, ref.result if ref is not None else ()))
        scores, passed = aggregate(per_item, [c[0] for c in controls], threshold)
        with self.store.transaction() as s:
            rnd = s.get(CalibrationRound, round_id)
            assert rnd is not None
            rnd.finished_at = now_iso()
            rnd.passed = passed
            rnd.scores = {c.control: {"score": c.score, "n": c.n} for c in scores}
            append_event(s, reviewer, "calibration.finished",
                         {"project_id": project_id, "round": round_id, "passed": passed,
                          "threshold": threshold, "scores": rnd.scores})
        return self.round(round_id)

    # -- results -----------------------------------------------------------------------------
    def results(self, project_id: int, reviewer: str | None = None) -> tuple[RoundInfo, ...]:
        """Finished rounds of the project (of one reviewer), oldest first."""
        with self.store.session() as s:
            if s.get(Project, project_id) is None:
                raise LookupError(f"No project {project_id} in this store.")
            stmt = select(CalibrationRound).where(CalibrationRound.project_id == project_id,
                                                  CalibrationRound.finished_at.is_not(None))
            if reviewer is not None:
                stmt = stmt.where(func.lower(CalibrationRound.reviewer) == reviewer.lower())
            return tuple(self._info(s, r) for r in s.scalars(stmt.order_by(CalibrationRound.id)))

    def latest_results(self, project_id: int) -> tuple[RoundInfo, ...]:
        """Each reviewer's latest finished round (the dashboard's table), by reviewer."""
        latest: dict[str, RoundInfo] = {}
        for r in self.results(project_id):
            latest[r.reviewer.lower()] = r
        return tuple(sorted(latest.values(), key=lambda r: r.reviewer.lower()))

    def _info(self, s: Any, rnd: CalibrationRound) -> RoundInfo:
        rows = s.execute(select(CalibrationItem, Task.server_id).join(Task, Task.id == CalibrationItem.task_id)
                         .where(CalibrationItem.round_id == rnd.id).order_by(CalibrationItem.position)).all()
        items = tuple(RoundItem(i.position, i.task_id, sid, i.annotation_id, i.verdict, i.judged_at)
                      for i, sid in rows)
        scores = tuple(ControlScore(c, float(v["score"]), int(v["n"])) for c, v in (rnd.scores or {}).items())
        return RoundInfo(rnd.id, rnd.project_id, rnd.reviewer, rnd.n_tasks, rnd.threshold, rnd.started_at, items,
                         rnd.finished_at, None if rnd.passed is None else bool(rnd.passed), scores)


def round_json(r: RoundInfo) -> dict[str, Any]:
    return {"round": r.round_id, "reviewer": r.reviewer, "n_tasks": r.n_tasks, "threshold": r.threshold,
            "started_at": r.started_at, "finished_at": r.finished_at, "passed": r.passed,
            "judged": r.judged, "overall": r.overall,
            "scores": {c.control: {"score": c.score, "n": c.n} for c in r.scores},
            "tasks": [i.task_server_id if i.task_server_id is not None else i.task_id for i in r.items]}
