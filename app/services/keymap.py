"""Key bindings as data: defaults from ``app/resources/keymap.toml``, user overrides, conflict checks."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from app.resources import resource

ACTION_LABELS = {
    "accept": "Accept the focused annotation",
    "fix": "Fix the focused annotation in place",
    "reject": "Reject (pick a reason with 1-9)",
    "escalate": "Escalate to an expert",
    "skip": "Skip this task",
    "undo": "Undo the last decision",
    "redo": "Redo",
    "next": "Next task",
    "previous": "Previous task",
    "next_annotation": "Next annotation of the task",
    "previous_annotation": "Previous annotation of the task",
    "accept_focused_reject_others": "Accept the focused annotation, reject the others",
    "instructions": "Show the labeling instructions",
    "help": "Show the keys",
    "toggle_history": "Hide or show the history pane (more room for the task on small screens)",
    "reviewer_queue": "Work the reviewer queue",
    "expert_queue": "Work the expert queue (escalations, low agreement)",
    "open_notification": "Open the newest notification (an escalation for experts, a conflict, a calibration request)",
    "save": "Save the fix",
    "cancel": "Cancel the fix",
}


class KeymapError(ValueError):
    """A keymap that cannot be used (conflicting or unknown bindings)."""


def normalise(seq: str) -> str:
    """Canonical form for comparing key sequences: modifiers sorted, case-folded key names."""
    parts = [p.strip() for p in seq.replace(" ", "").split("+") if p.strip()] if seq != "+" else ["+"]
    if not parts:
        raise KeymapError("empty key sequence")
    *mods, key = parts
    aliases = {"return": "enter", "esc": "escape", "del": "delete", "control": "ctrl"}
    mods_n = sorted(aliases.get(m.lower(), m.lower()) for m in mods)
    return "+".join([*mods_n, aliases.get(key.lower(), key.lower())])


@dataclass(frozen=True)
class Keymap:
    """``section -> action -> key sequences``; sections (review, fix) are checked separately."""

    bindings: Mapping[str, Mapping[str, tuple[str, ...]]]

    def keys(self, action: str, section: str = "review") -> tuple[str, ...]:
        return tuple(self.bindings.get(section, {}).get(action, ()))

    def action_for(self, seq: str, section: str = "review") -> str | None:
        n = normalise(seq)
        for action, seqs in self.bindings.get(section, {}).items():
            if any(normalise(s) == n for s in seqs):
                return action
        return None

    def with_override(self, section: str, action: str, seqs: tuple[str, ...]) -> Keymap:
        merged = {s: dict(a) for s, a in self.bindings.items()}
        if action not in merged.get(section, {}):
            raise KeymapError(f"unknown action {section}.{action}")
        merged[section][action] = tuple(seqs)
        km = Keymap(_freeze(merged))
        km.check()
        return km

    def check(self) -> None:
        for section, actions in self.bindings.items():
            seen: dict[str, str] = {}
            for action, seqs in actions.items():
                for s in seqs:
                    n = normalise(s)
                    if n in seen and seen[n] != action:
                        raise KeymapError(f"{s!r} is bound to both {seen[n]!r} and {action!r} ({section} keys)")
                    seen[n] = action

    def overrides_against(self, base: Keymap) -> dict[str, dict[str, list[str]]]:
        out: dict[str, dict[str, list[str]]] = {}
        for section, actions in self.bindings.items():
            for action, seqs in actions.items():
                if tuple(base.bindings.get(section, {}).get(action, ())) != tuple(seqs):
                    out.setdefault(section, {})[action] = list(seqs)
        return out


def _freeze(d: Mapping[str, Mapping[str, tuple[str, ...] | list[str]]]) -> Mapping[str, Mapping[str, tuple[str, ...]]]:
    return MappingProxyType({s: MappingProxyType({a: tuple(v) for a, v in acts.items()}) for s, acts in d.items()})


def default_keymap() -> Keymap:
    with resource("keymap.toml").open("rb") as fh:
        raw = tomllib.load(fh)
    km = Keymap(_freeze(raw))
    km.check()
    return km


def load_keymap(overrides: Mapping[str, Mapping[str, list[str]]] | None = None) -> Keymap:
    """Defaults plus user overrides; a conflicting override raises :class:`KeymapError`."""
    km = default_keymap()
    for section, actions in (overrides or {}).items():
        for action, seqs in actions.items():
            if isinstance(seqs, str):
                seqs = [seqs]
            km = km.with_override(section, action, tuple(seqs))
    return km
