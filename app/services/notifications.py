"""Notifications (Qt-free; issue 15 point 7): what a sync brought that needs this reviewer.

* ``expert`` -- an open escalation from another reviewer (pulled, ``origin = server``) now in the expert queue
  (only for a reviewer working in the ``expert`` role);
* ``conflict`` -- one of my decisions another reviewer judged differently (``decision_sync.state = conflict``);
* ``calibration`` -- a project that requires a calibration round this reviewer has not passed.

Each has a stable key; the keys already shown are kept in ``notifications.json`` beside the settings (the data
folder, never a secret), so a notification is new once. :meth:`NotificationService.new` lists the current
ones not seen yet, newest first; :meth:`NotificationService.mark_seen` records them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.models.schema import Decision, DecisionSync, Project, Task
from app.models.store import Store
from app.services.calibration import CalibrationService
from app.services.decisions import DecisionService

NOTIFICATIONS_FILE = "notifications.json"
MAX_SEEN = 5000  # oldest keys are forgotten past this (their decisions are long settled)
KINDS = ("expert", "conflict", "calibration")


@dataclass(frozen=True)
class Notification:
    kind: str  # expert | conflict | calibration
    project_id: int
    task_id: int | None  # local task id to open (None: the project's review tab, e.g. a calibration round)
    text: str
    key: str  # stable identity: shown once
    role: str = "reviewer"  # the queue the task is in
    at: str = ""  # when it happened (ISO 8601), for ordering


def load_seen(data_dir: Path) -> list[str]:
    try:
        raw = json.loads((Path(data_dir) / NOTIFICATIONS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    seen = raw.get("seen") if isinstance(raw, dict) else None
    return [k for k in seen if isinstance(k, str)] if isinstance(seen, list) else []


def save_seen(data_dir: Path, keys: list[str]) -> None:
    path = Path(data_dir) / NOTIFICATIONS_FILE
    tmp = path.with_suffix(".json.part")
    tmp.write_text(json.dumps({"seen": keys[-MAX_SEEN:]}, indent=1), encoding="utf-8")
    os.replace(tmp, path)


class NotificationService:
    def __init__(self, store: Store, data_dir: Path | None = None) -> None:
        self.store = store
        self.data_dir = Path(data_dir) if data_dir is not None else Path(store.data_dir)

    def current(self, reviewer: str, role: str = "reviewer") -> tuple[Notification, ...]:
        """Every notification that applies now (seen or not), newest first."""
        out: list[Notification] = []
        with self.store.session() as s:
            projects = dict(s.execute(select(Project.id, Project.title)).all())
            keys = dict(s.execute(select(Task.id, Task.server_id)).all()) if projects else {}

            def shown(tid: int) -> Any:
                sid = keys.get(tid)
                return sid if sid is not None else tid

            for d, ds in s.execute(select(Decision, DecisionSync).join(DecisionSync, DecisionSync.decision_id
                                                                        == Decision.id)
                                   .where(DecisionSync.state == "conflict", Decision.origin == "local")):
                out.append(Notification("conflict", d.project_id, d.task_id,
                                        f"Conflict on task {shown(d.task_id)}: another reviewer judged it "
                                        f"differently from your {d.verdict}.", f"conflict:{d.uuid}", d.role,
                                        ds.updated_at or d.created_at))
        decisions = DecisionService(self.store)
        calibration = CalibrationService(self.store)
        for pid in projects:
            if role == "expert":
                for e in decisions.escalations(pid):
                    if e.origin != "server" or e.reviewer.lower() == reviewer.lower():
                        continue
                    out.append(Notification("expert", pid, e.task_id,
                                            f"{e.reviewer} escalated task {shown(e.task_id)} to the expert queue"
                                            + (f": {e.reason}" if e.reason else "."), f"expert:{e.uuid}", "expert",
                                            e.created_at))
            st = calibration.status(pid, reviewer)
            if st.locked:
                r = st.requirement
                out.append(Notification("calibration", pid, None,
                                        f"“{projects[pid]}” asks for a calibration round ({r.n_tasks} tasks, pass at "
                                        f"{r.threshold:.0%}) before production review.",
                                        f"calibration:{pid}:{reviewer.lower()}:{r.n_tasks}:{r.threshold}:"
                                        f"{r.updated_at}", "reviewer", r.updated_at or ""))
        out.sort(key=lambda n: n.at, reverse=True)
        return tuple(out)

    def new(self, reviewer: str, role: str = "reviewer") -> tuple[Notification, ...]:
        """The current notifications not seen yet, newest first."""
        seen = set(load_seen(self.data_dir))
        return tuple(n for n in self.current(reviewer, role) if n.key not in seen)

    def mark_seen(self, notes: Iterable[Notification | str]) -> None:
        keys = load_seen(self.data_dir)
        known = set(keys)
        for n in notes:
            k = n if isinstance(n, str) else n.key
            if k not in known:
                keys.append(k)
                known.add(k)
        save_seen(self.data_dir, keys)
