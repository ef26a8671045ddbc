"""User settings: a small JSON file beside the store (never any secret)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from app.models.audit import append_event_file
from app.models.store import STORE_FILENAME

SETTINGS_FILE = "settings.json"


@dataclass(frozen=True)
class Settings:
    reviewer: str = "reviewer@localhost"
    role: str = "reviewer"
    auto_advance: bool = True
    show_predictions: bool = False
    keymap_overrides: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # team review: tasks another reviewer already decided stay out of my reviewer queue unless this is on
    show_decided_by_others: bool = False
    # media cache size cap in MiB (least recently used files are evicted past it)
    media_cache_cap_mb: int = 2048
    # text size in points for the whole window (Ctrl++ / Ctrl+− / Ctrl+0); 0 = the system's
    font_size: int = 0
    # colour theme: "system" follows the platform's light/dark scheme; "light" or "dark" fix it
    theme: str = "system"

    def with_(self, **kw: Any) -> Settings:
        return replace(self, **kw)


def load_settings(data_dir: Path) -> Settings:
    path = Path(data_dir) / SETTINGS_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Settings()
    known = {k: v for k, v in raw.items() if k in Settings.__dataclass_fields__}
    try:
        return Settings(**known)
    except TypeError:
        return Settings()


def save_settings(data_dir: Path, settings: Settings) -> None:
    """Write the settings; each changed field goes on the audit trail (one event, from -> to per field)."""
    path = Path(data_dir) / SETTINGS_FILE
    before = asdict(load_settings(data_dir)) if path.exists() else asdict(Settings())
    after = asdict(settings)
    changed = {k: {"from": before.get(k), "to": v} for k, v in after.items() if before.get(k) != v}
    tmp = path.with_suffix(".json.part")
    tmp.write_text(json.dumps(asdict(settings), indent=2), encoding="utf-8")
    os.replace(tmp, path)
    if changed:
        kind = "settings.keymap" if set(changed) == {"keymap_overrides"} else "settings.changed"
        append_event_file(Path(data_dir) / STORE_FILENAME, settings.reviewer, kind, {"changes": changed})


# -- the queue a reviewer works through, per project (survives a restart) -------------------------------------------
QUEUE_STATE_FILE = "queue_state.json"


@dataclass(frozen=True)
class QueueState:
    """Which queue of a project the review panel works through, and where it was.

    ``queue``: ``""`` (project order), ``order:NAME`` (every task, in that order: ``app.services.queues.ORDERS``)
    or ``preset:NAME`` (a saved queue preset). ``task_id``: the local id of the task last on screen.
    """

    role: str = ""  # "" = never chosen here: the settings' role
    queue: str = ""
    task_id: int | None = None


def load_queue_state(data_dir: Path, project_id: int) -> QueueState:
    try:
        raw = json.loads((Path(data_dir) / QUEUE_STATE_FILE).read_text(encoding="utf-8"))
        entry = raw.get(str(project_id)) or {}
        task = entry.get("task_id")
        return QueueState(role=str(entry.get("role") or ""), queue=str(entry.get("queue") or ""),
                          task_id=int(task) if isinstance(task, int) else None)
    except (OSError, ValueError, AttributeError, TypeError):
        return QueueState()


def save_queue_state(data_dir: Path, project_id: int, state: QueueState, *, actor: str) -> None:
    """Remember the project's queue. A change of role or queue goes on the audit trail (``settings.queue``);
    the reading position alone does not (it moves with every task, like a scroll offset)."""
    path = Path(data_dir) / QUEUE_STATE_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raw = {}
    except (OSError, ValueError):
        raw = {}
    before = raw.get(str(project_id)) or {}
    after = asdict(state)
    if before == after:
        return
    raw[str(project_id)] = after
    tmp = path.with_suffix(".json.part")
    tmp.write_text(json.dumps(raw, indent=2), encoding="utf-8")
    os.replace(tmp, path)
    # never saved: the role the session started with (the settings') is no change; the project order is the default
    was = {"role": before.get("role", after["role"]), "queue": before.get("queue", "")}
    changed = {k: {"from": was[k], "to": after[k]} for k in ("role", "queue") if was[k] != after[k]}
    if changed:
        append_event_file(Path(data_dir) / STORE_FILENAME, actor, "settings.queue",
                          {"project_id": project_id, "changes": changed})
