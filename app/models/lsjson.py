"""Label Studio JSON export codec: stream tasks in, split known fields from the rest, rebuild out.

Real export files come in several shapes; this module accepts them all and loses nothing:

- ``completed_by`` as an int id (lists, exports) or an object (single-task reads);
- ``predictions`` as full objects (snapshot export) or as bare ids (the simple export);
- Label Studio before 1.0: ``completions`` instead of ``annotations`` (no ``completed_by``, ``created_at`` as
  Unix seconds) -- read as annotations, as Label Studio itself does, and written back as ``completions``;
- ``"result": null`` (an annotation submitted or created without a result) -- read as an empty result;
- any key ReviewDesk does not know, at task, annotation or prediction level, kept verbatim.

Every record keeps the order of its original keys (``KEYS``) so an export writes them back
exactly; a round trip import -> export -> import changes nothing. Where a known field had to be
normalised for the store (a Unix ``created_at`` to ISO 8601, a null ``result`` to ``[]``, an integer
``lead_time`` to a float), the original value is kept in ``RAW`` and written back as long as the
field still holds the normalised value (an edited field is written as edited).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import ijson

KEYS = "__reviewdesk_keys__"
RAW = "__reviewdesk_raw__"  # field -> {"raw": value in the file, "as": value stored} (see module doc)
ANNOTATIONS_KEY = "__reviewdesk_annotations_key__"  # "completions": a pre-1.0 export
LEGACY_ANNOTATIONS = "completions"
TASK_FIELDS = ("id", "data", "meta", "annotations", "predictions", "created_at", "updated_at")
ANNOTATION_FIELDS = ("id", "result", "completed_by", "ground_truth", "was_cancelled", "lead_time",
                     "created_at", "updated_at")
PREDICTION_FIELDS = ("id", "result", "model_version", "score", "created_at")


class LSFormatError(ValueError):
    """The file is not a usable Label Studio export; the message names the task index."""

    def __init__(self, message: str, *, task_index: int | None = None) -> None:
        super().__init__(message)
        self.task_index = task_index


@dataclass(frozen=True)
class ParsedAnnotation:
    server_id: int | None
    result: list[Any]
    completed_by: int | None
    completed_by_raw: Any
    member: dict[str, Any] | None  # {"id", "email", "first_name", "last_name"} when known
    ground_truth: bool
    was_cancelled: bool
    lead_time: float | None
    created_at: str | None
    updated_at: str | None
    extra: dict[str, Any]


@dataclass(frozen=True)
class ParsedPrediction:
    server_id: int | None
    result: list[Any] | None  # None: the export held only the prediction's id
    model_version: str | None
    score: float | None
    created_at: str | None
    extra: dict[str, Any]


@dataclass(frozen=True)
class ParsedTask:
    index: int
    server_id: int | None
    data: dict[str, Any]
    meta: dict[str, Any] | None
    created_at: str | None
    updated_at: str | None
    annotations: tuple[ParsedAnnotation, ...]
    predictions: tuple[ParsedPrediction, ...]
    extra: dict[str, Any]


def iter_raw_tasks(source: str | Path | IO[bytes]) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, task)`` from a JSON export without loading the whole file."""
    fh: IO[bytes]
    close = False
    if isinstance(source, str | Path):
        try:
            fh = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise LSFormatError(f"Cannot read {source}: {exc.strerror}") from exc
        close = True
    else:
        fh = source
    try:
        head = fh.read(4096)
        stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        if not stripped:
            raise LSFormatError("The file is empty; expected a JSON list of tasks.")
        if stripped[:1] != b"[":
            if stripped[:1] == b"<":
                raise LSFormatError("The file is HTML or XML, not a JSON export of tasks.")
            if stripped[:1] == b"{":
                raise LSFormatError(
                    "The file holds one JSON object; a Label Studio export is a list of tasks ([...])."
                )
            raise LSFormatError("The file is not JSON (it should start with '[').")
        fh.seek(0)
        index = -1
        try:
            for index, item in enumerate(ijson.items(fh, "item", use_float=True)):
                yield index, item
        except ijson.JSONError as exc:
            raise LSFormatError(
                f"The file is not valid JSON after task index {index} ({exc}).", task_index=index + 1
            ) from exc
    finally:
        if close:
            fh.close()


def _keys_and_extra(obj: dict[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    extra = {k: v for k, v in obj.items() if k not in known}
    extra[KEYS] = list(obj.keys())
    return extra


def _keep_raw(extra: dict[str, Any], obj: dict[str, Any], field: str, stored: Any) -> None:
    """Remember the file's value of ``field`` when the store keeps it in another form."""
    if field not in obj:
        return
    raw = obj[field]
    if type(raw) is type(stored) and raw == stored:
        return
    extra.setdefault(RAW, {})[field] = {"raw": raw, "as": stored}


def _opt_time(v: Any, what: str) -> str | None:
    """An ISO 8601 string as is; Unix seconds (Label Studio before 1.0) as ISO 8601 UTC."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"{what} must be a date string or Unix seconds, not {v!r}")
    try:
        at = datetime.fromtimestamp(v, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(f"{what} is not a usable Unix time ({v!r})") from exc
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if isinstance(v, float) else "%Y-%m-%dT%H:%M:%SZ")


def _result_of(obj: dict[str, Any], what: str) -> list[Any]:
    result = obj.get("result", [])
    if result is None:
        return []  # Label Studio stores a null result for annotations created or submitted without one
    if not isinstance(result, list):
        raise ValueError(f"{what}: 'result' must be a list")
    return result


def _member_of(raw: Any) -> tuple[int | None, dict[str, Any] | None]:
    if raw is None:
        return None, None
    if isinstance(raw, bool):
        raise ValueError("completed_by must be a user id or an object")
    if isinstance(raw, int):
        return raw, {"id": raw}
    if isinstance(raw, dict):
        uid = raw.get("id")
        if uid is not None and not isinstance(uid, int):
            raise ValueError("completed_by.id must be an integer")
        member = {k: raw.get(k) for k in ("id", "email", "first_name", "last_name") if k in raw}
        if uid is None and "email" not in raw:
            raise ValueError("completed_by object has neither id nor email")
        return uid, member
    raise ValueError(f"completed_by must be a user id or an object, not {type(raw).__name__}")


def _opt_int(v: Any, what: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{what} must be an integer, not {v!r}")
    return v


def _opt_float(v: Any, what: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"{what} must be a number, not {v!r}")
    return float(v)


def parse_task(index: int, raw: Any) -> ParsedTask:
    """Check one task's shape; raise :class:`LSFormatError` naming the task index."""
    try:
        return _parse_task(index, raw)
    except ValueError as exc:
        if isinstance(exc, LSFormatError):
            raise
        tid = raw.get("id") if isinstance(raw, dict) else None
        ident = f"task index {index}" + (f" (id {tid})" if tid is not None else "")
        raise LSFormatError(f"{ident}: {exc}", task_index=index) from exc


def _parse_task(index: int, raw: Any) -> ParsedTask:
    if not isinstance(raw, dict):
        raise ValueError(f"a task must be an object, not {type(raw).__name__}")
    data = raw.get("data")
    if not isinstance(data, dict):
        raise ValueError("the task has no 'data' object")
    meta = raw.get("meta")
    if meta is not None and not isinstance(meta, dict):
        raise ValueError("'meta' must be an object")
    ann_key = "annotations"
    if "annotations" not in raw and isinstance(raw.get(LEGACY_ANNOTATIONS), list):
        ann_key = LEGACY_ANNOTATIONS  # Label Studio before 1.0: the annotations are the "completions"
    anns_raw = raw.get(ann_key, [])
    anns_raw = [] if anns_raw is None else anns_raw
    preds_raw = raw.get("predictions", [])
    preds_raw = [] if preds_raw is None else preds_raw
    if not isinstance(anns_raw, list):
        raise ValueError("'annotations' must be a list")
    if not isinstance(preds_raw, list):
        raise ValueError("'predictions' must be a list")
    annotations = []
    for j, a in enumerate(anns_raw):
        if not isinstance(a, dict):
            raise ValueError(f"annotation {j} is not an object")
        result = _result_of(a, f"annotation {j}")
        try:
            uid, member = _member_of(a.get("completed_by"))
        except ValueError as exc:
            raise ValueError(f"annotation {j}: {exc}") from None
        extra = _keys_and_extra(a, ANNOTATION_FIELDS)
        ground_truth = bool(a.get("ground_truth", False))
        was_cancelled = bool(a.get("was_cancelled", False))
        lead_time = _opt_float(a.get("lead_time"), f"annotation {j} lead_time")
        created_at = _opt_time(a.get("created_at"), f"annotation {j} created_at")
        updated_at = _opt_time(a.get("updated_at"), f"annotation {j} updated_at")
        for field, stored in (("result", result), ("ground_truth", ground_truth), ("was_cancelled", was_cancelled),
                              ("lead_time", lead_time), ("created_at", created_at), ("updated_at", updated_at)):
            _keep_raw(extra, a, field, stored)
        annotations.append(
            ParsedAnnotation(
                server_id=_opt_int(a.get("id"), f"annotation {j} id"),
                result=result,
                completed_by=uid,
                completed_by_raw=a.get("completed_by"),
                member=member,
                ground_truth=ground_truth,
                was_cancelled=was_cancelled,
                lead_time=lead_time,
                created_at=created_at,
                updated_at=updated_at,
                extra=extra,
            )
        )
    predictions = []
    for j, p in enumerate(preds_raw):
        if isinstance(p, int) and not isinstance(p, bool):
            predictions.append(ParsedPrediction(p, None, None, None, None, {"__id_only__": True}))
            continue
        if not isinstance(p, dict):
            raise ValueError(f"prediction {j} is neither an object nor an id")
        predictions.append(parse_prediction(p, f"prediction {j}"))
    extra = _keys_and_extra(raw, TASK_FIELDS + ((ann_key,) if ann_key != "annotations" else ()))
    if ann_key != "annotations":
        extra[ANNOTATIONS_KEY] = ann_key
    created_at = _opt_time(raw.get("created_at"), "created_at")
    updated_at = _opt_time(raw.get("updated_at"), "updated_at")
    _keep_raw(extra, raw, "created_at", created_at)
    _keep_raw(extra, raw, "updated_at", updated_at)
    return ParsedTask(
        index=index,
        server_id=_opt_int(raw.get("id"), "task id"),
        data=data,
        meta=meta,
        created_at=created_at,
        updated_at=updated_at,
        annotations=tuple(annotations),
        predictions=tuple(predictions),
        extra=extra,
    )


def parse_prediction(p: dict[str, Any], what: str = "prediction") -> ParsedPrediction:
    """One prediction object (also the ``prediction`` an export embeds in an annotation)."""
    result = _result_of(p, what)
    mv = p.get("model_version")
    extra = _keys_and_extra(p, PREDICTION_FIELDS)
    score = _opt_float(p.get("score"), f"{what} score")
    created_at = _opt_time(p.get("created_at"), f"{what} created_at")
    for field, stored in (("result", result), ("score", score), ("created_at", created_at)):
        _keep_raw(extra, p, field, stored)
    return ParsedPrediction(
        server_id=_opt_int(p.get("id"), f"{what} id"),
        result=result,
        model_version=None if mv is None else str(mv),
        score=score,
        created_at=created_at,
        extra=extra,
    )


def _rebuild(known: dict[str, Any], extra: dict[str, Any] | None, default_order: tuple[str, ...]) -> dict[str, Any]:
    extra = dict(extra or {})
    order = extra.pop(KEYS, None)
    raw = extra.pop(RAW, None) or {}
    extra.pop(ANNOTATIONS_KEY, None)
    for field, kept in raw.items():  # the file's own form, unless the field was changed since
        if field in known and isinstance(kept, dict) and _same_json(known[field], kept.get("as")):
            known[field] = kept.get("raw")
    out: dict[str, Any] = {}
    if order is None:  # created locally: every known field, then the rest
        for k in default_order:
            if k in known:
                out[k] = known[k]
        out.update(extra)
        return out
    for k in order:
        if k in known:
            out[k] = known[k]
        elif k in extra:
            out[k] = extra[k]
    return out


def build_task(
    *, server_id: int | None, data: Any, meta: Any, created_at: str | None, updated_at: str | None,
    annotations: list[dict[str, Any]], predictions: list[Any], extra: dict[str, Any] | None,
) -> dict[str, Any]:
    known = {"id": server_id, "data": data, "meta": meta, "annotations": annotations,
             "predictions": predictions, "created_at": created_at, "updated_at": updated_at}
    legacy = (extra or {}).get(ANNOTATIONS_KEY)
    if legacy == LEGACY_ANNOTATIONS:  # a pre-1.0 task: its annotations go back under "completions"
        known[LEGACY_ANNOTATIONS] = known.pop("annotations")
    return _rebuild(known, extra, TASK_FIELDS)


def _same_json(a: Any, b: Any) -> bool:
    try:
        return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    except (TypeError, ValueError):
        return False


def build_annotation(
    *, server_id: int | None, result: Any, completed_by_raw: Any, ground_truth: bool, was_cancelled: bool,
    lead_time: float | None, created_at: str | None, updated_at: str | None, extra: dict[str, Any] | None,
) -> dict[str, Any]:
    known = {"id": server_id, "result": result, "completed_by": completed_by_raw, "ground_truth": ground_truth,
             "was_cancelled": was_cancelled, "lead_time": lead_time, "created_at": created_at,
             "updated_at": updated_at}
    if extra is None:  # locally created: leave out what is unknown rather than writing nulls
        known = {k: v for k, v in known.items() if v is not None}
    return _rebuild(known, extra, ANNOTATION_FIELDS)


def build_prediction(
    *, server_id: int | None, result: Any, model_version: str | None, score: float | None,
    created_at: str | None, extra: dict[str, Any] | None,
) -> Any:
    if extra and extra.get("__id_only__"):
        return server_id
    known = {"id": server_id, "result": result, "model_version": model_version, "score": score,
             "created_at": created_at}
    return _rebuild(known, extra, PREDICTION_FIELDS)


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
