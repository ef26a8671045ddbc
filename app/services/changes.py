"""``Changes``: which kinds of rows a service call changed. Views refresh only from these."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Changes:
    projects: bool = False
    tasks: bool = False
    annotations: bool = False
    predictions: bool = False
    members: bool = False
    decisions: bool = False
    ground_truth: bool = False
    queue: bool = False
    sync: bool = False
    settings: bool = False
    calibration: bool = False  # a calibration requirement, round or judgement (issue 15)

    def __or__(self, other: Changes) -> Changes:
        return Changes(**{f.name: getattr(self, f.name) or getattr(other, f.name) for f in fields(self)})

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self) if getattr(self, f.name))


NOTHING = Changes()
