"""SQLAlchemy 2.x typed schema of the local store.

Server rows keep their server ids (``server_id``) and ``updated_at``; locally created rows
carry a UUID. JSON payloads are stored as text (SQLite JSON1 can still query them).
``decisions`` and ``audit_events`` are append-only: triggers created by the migrations refuse
UPDATE and DELETE on them. Mutable delivery state of a decision lives in ``decision_sync``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Server(Base):
    __tablename__ = "servers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String, unique=True)
    edition: Mapped[str | None] = mapped_column(String)  # community | enterprise, detected
    user_email: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[str] = mapped_column(String)
    ca_bundle: Mapped[str | None] = mapped_column(String)  # custom CA bundle path (0003); never a secret


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    server_ref: Mapped[int | None] = mapped_column(ForeignKey("servers.id"))
    server_id: Mapped[int | None] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String)
    label_config: Mapped[str] = mapped_column(Text)
    expert_instruction: Mapped[str | None] = mapped_column(Text)
    media_root: Mapped[str | None] = mapped_column(String)  # folder relative media paths resolve against
    reject_reasons: Mapped[list[Any] | None] = mapped_column(JSON)
    fold_ground_truth: Mapped[bool] = mapped_column(Boolean, default=True)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[str] = mapped_column(String)
    __table_args__ = (UniqueConstraint("server_ref", "server_id"),)


class Control(Base):
    """One tag of the labeling config: a control (dimension) or an object (what is shown)."""

    __tablename__ = "controls"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String)  # control | object | unknown
    tag: Mapped[str] = mapped_column(String)
    name: Mapped[str] = mapped_column(String)
    to_name: Mapped[str | None] = mapped_column(String)
    result_type: Mapped[str | None] = mapped_column(String)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON)
    options: Mapped[list[Any]] = mapped_column(JSON)
    position: Mapped[int] = mapped_column(Integer)
    __table_args__ = (UniqueConstraint("project_id", "name"),)


class Member(Base):
    __tablename__ = "members"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(Integer)  # the server's user id
    email: Mapped[str | None] = mapped_column(String)
    first_name: Mapped[str | None] = mapped_column(String)
    last_name: Mapped[str | None] = mapped_column(String)
    __table_args__ = (UniqueConstraint("project_id", "user_id"),)


class Task(Base):
    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    server_id: Mapped[int | None] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # unknown keys, kept for export
    created_at: Mapped[str | None] = mapped_column(String)
    updated_at: Mapped[str | None] = mapped_column(String)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (
        UniqueConstraint("project_id", "server_id"),
        Index("ix_tasks_project_position", "project_id", "position"),
    )


class Annotation(Base):
    __tablename__ = "annotations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    server_id: Mapped[int | None] = mapped_column(Integer)
    uuid: Mapped[str | None] = mapped_column(String, unique=True)  # locally created rows
    completed_by: Mapped[int | None] = mapped_column(Integer)  # server user id
    completed_by_raw: Mapped[Any] = mapped_column(JSON)  # int or object, as received
    result: Mapped[list[Any]] = mapped_column(JSON)
    ground_truth: Mapped[bool] = mapped_column(Boolean, default=False)
    was_cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    lead_time: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[str | None] = mapped_column(String)
    updated_at: Mapped[str | None] = mapped_column(String)
    position: Mapped[int] = mapped_column(Integer, default=0)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # gone from the server but still referenced locally (a decision, ground truth, a comment) (0003)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


class Prediction(Base):
    __tablename__ = "predictions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    server_id: Mapped[int | None] = mapped_column(Integer)
    model_version: Mapped[str | None] = mapped_column(String)
    score: Mapped[float | None] = mapped_column(Float)
    result: Mapped[Any] = mapped_column(JSON)  # list of result items, or None when export had ids only
    created_at: Mapped[str | None] = mapped_column(String)
    position: Mapped[int] = mapped_column(Integer, default=0)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ResultValue(Base):
    """The items of one control of an annotation (``kind`` ``a``), prediction (``p``) or ground-truth row
    (``g``): what metric frames read instead of decoding whole results (migration 0007, docs/adr/0011).

    Written only by the triggers of migration 0007, in the same statement as the row's insert, update or
    delete. ``ord``: array index of the control's first item; ``-1`` marks a result that is not strict
    JSON (no control, no items: read the row's own result).
    """

    __tablename__ = "result_values"
    project_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(1), primary_key=True)
    row_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ord: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(Integer)
    control: Mapped[str | None] = mapped_column(String)
    items: Mapped[str | None] = mapped_column(Text)  # compact JSON array of the control's result items
    # the region id of the control's only item, kept apart (that item is stored with "id": null)
    item_id: Mapped[str | None] = mapped_column(String)
    __table_args__ = (Index("ix_result_values_row", "kind", "row_id"),
                      # migration 0012: the marker rows of a project without a scan (frames ask on every build)
                      Index("ix_result_values_fallback", "project_id", "kind", "row_id",
                            sqlite_where=text("ord < 0")),
                      {"sqlite_with_rowid": False})


class Decision(Base):
    """A reviewer's verdict: an append-only event (never updated, never deleted)."""

    __tablename__ = "decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String, unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    annotation_id: Mapped[int | None] = mapped_column(ForeignKey("annotations.id"))
    prediction_id: Mapped[int | None] = mapped_column(ForeignKey("predictions.id"))
    verdict: Mapped[str] = mapped_column(String)  # accept | fix | reject | escalate | skip | retract
    result: Mapped[list[Any] | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(String)
    comment: Mapped[str | None] = mapped_column(Text)
    reviewer: Mapped[str] = mapped_column(String)
    role: Mapped[str] = mapped_column(String, default="reviewer")
    created_at: Mapped[str] = mapped_column(String)
    lead_time_ms: Mapped[int | None] = mapped_column(Integer)
    seen_updated_at: Mapped[str | None] = mapped_column(String)
    retracts: Mapped[str | None] = mapped_column(String)  # uuid of the decision an undo retracts
    # local: recorded in this store; server: another reviewer's record brought by a pull (read-only) (0004)
    origin: Mapped[str] = mapped_column(String, default="local", server_default="local")


class DecisionSync(Base):
    __tablename__ = "decision_sync"
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"), primary_key=True)
    state: Mapped[str] = mapped_column(String, default="pending")  # pending|synced|conflict|local
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    effect: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[str] = mapped_column(String)


class Comment(Base):
    __tablename__ = "comments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String, unique=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    annotation_id: Mapped[int | None] = mapped_column(ForeignKey("annotations.id"))
    decision_uuid: Mapped[str | None] = mapped_column(String)
    author: Mapped[str] = mapped_column(String)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[str] = mapped_column(String)


class GroundTruth(Base):
    """Adjudicated reference result of a task (latest row per task wins; history kept)."""

    __tablename__ = "ground_truth"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    result: Mapped[list[Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String)  # server-flag | decision | import
    annotation_id: Mapped[int | None] = mapped_column(ForeignKey("annotations.id"))
    decision_uuid: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[str] = mapped_column(String)


class AuditEvent(Base):
    """Immutable, hash-chained record of a change to local state."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[str] = mapped_column(String)
    actor: Mapped[str] = mapped_column(String)
    kind: Mapped[str] = mapped_column(String)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String)
    hash: Mapped[str] = mapped_column(String, unique=True)


class AuditCheckpoint(Base):
    """The last audit event verified (one row, ``id = 1``): where the check on open starts (migration 0008)."""

    __tablename__ = "audit_checkpoint"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String)
    verified_at: Mapped[str] = mapped_column(String)


class QueuePreset(Base):
    """A named queue definition of a project: eligibility rules, ordering and role as JSON (migration 0009)."""

    __tablename__ = "queue_presets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[str] = mapped_column(String)
    updated_at: Mapped[str] = mapped_column(String)
    __table_args__ = (UniqueConstraint("project_id", "name"),)


class QueueAssignment(Base):
    """A reviewer assigned to a queue of a project, set here (``local``) or read from the server (0009)."""

    __tablename__ = "queue_assignments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    reviewer: Mapped[str] = mapped_column(String)
    queue: Mapped[str] = mapped_column(String)
    source: Mapped[str] = mapped_column(String, default="local", server_default="local")
    created_at: Mapped[str] = mapped_column(String)
    __table_args__ = (UniqueConstraint("project_id", "reviewer", "queue", "source"),)


class QueueSetting(Base):
    """Queue settings of a project: the agreement under which tasks go to the expert queue (0009)."""

    __tablename__ = "queue_settings"
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    expert_threshold: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[str] = mapped_column(String)


class CalibrationSetting(Base):
    """A project's calibration requirement: on/off, tasks per round, pass threshold per control (0010)."""

    __tablename__ = "calibration_settings"
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    n_tasks: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[str] = mapped_column(String)


class CalibrationRound(Base):
    """One reviewer's calibration round: ground-truth tasks judged without the reference, then scored (0010)."""

    __tablename__ = "calibration_rounds"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    reviewer: Mapped[str] = mapped_column(String)
    n_tasks: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[float] = mapped_column(Float)
    started_at: Mapped[str] = mapped_column(String)
    finished_at: Mapped[str | None] = mapped_column(String)
    passed: Mapped[bool | None] = mapped_column(Boolean)
    scores: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # control -> {"score", "n"}
    __table_args__ = (Index("ix_calibration_rounds_reviewer", "project_id", "reviewer"),)


class CalibrationItem(Base):
    """A task of a calibration round and the reviewer's judgement of its annotation (never a decision) (0010)."""

    __tablename__ = "calibration_items"
    round_id: Mapped[int] = mapped_column(ForeignKey("calibration_rounds.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"))
    annotation_id: Mapped[int | None] = mapped_column(ForeignKey("annotations.id"))
    verdict: Mapped[str | None] = mapped_column(String)  # accept | fix | reject
    result: Mapped[list[Any] | None] = mapped_column(JSON)  # a fix's result
    judged_at: Mapped[str | None] = mapped_column(String)


class SyncState(Base):
    __tablename__ = "sync_state"
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    pull_cursor: Mapped[str | None] = mapped_column(String)
    last_pull_at: Mapped[str | None] = mapped_column(String)
    last_push_at: Mapped[str | None] = mapped_column(String)
    last_reconcile_at: Mapped[str | None] = mapped_column(String)


class MediaCache(Base):
    __tablename__ = "media_cache"
    sha256: Mapped[str] = mapped_column(String, primary_key=True)
    url: Mapped[str] = mapped_column(String, index=True)
    size: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String)
    fetched_at: Mapped[str] = mapped_column(String)
    last_used_at: Mapped[str] = mapped_column(String)
