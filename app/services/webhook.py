"""Push webhook: after each successful push, a signed JSON summary of the pushed decisions to a configured URL.

Qt-free (docs/adr/0016). The pieces:

* **Configuration.** The URL lives in a small SQLite file beside the store (``webhook-outbox.sqlite``,
  table ``config``); the HMAC secret lives only in the OS keyring (service ``reviewdesk-webhook``, user = the
  data folder), or, when no keyring exists, in ``$REVIEWDESK_WEBHOOK_SECRET`` read at delivery time. Setting
  or clearing either appends a ``settings.webhook`` audit event: the URL as its origin plus a fingerprint (a
  webhook URL often carries a token in its path), the secret only as ``"changed"``.
* **Outbox.** A push enqueues one summary (the exact body bytes, an idempotency key) in the same SQLite file
  -- a durable outbox, so a queued summary survives a crash or restart. Delivery is at least once; the key
  (``"id"`` in the body, ``Idempotency-Key`` / ``X-ReviewDesk-Delivery`` headers) lets a receiver drop a
  repeat (the only repeat possible: a crash between the receiver's 2xx and our marking it delivered).
* **Signature.** ``X-ReviewDesk-Signature: sha256=<hex>``: HMAC-SHA256 of the exact body bytes with the
  secret. Nothing is ever sent unsigned: without a secret the summary waits in the outbox.
* **Delivery.** A daemon thread per outbox delivers due summaries with short timeouts; failures (connection
  refused, timeouts, non-2xx, redirects) are retried with backoff (:data:`BACKOFF`), up to
  :data:`MAX_ATTEMPTS`, then the summary is ``failed`` (``reviewdesk webhook flush`` retries it). Enqueueing
  is one small insert; a push never waits for the receiver, and closing the app never waits for the thread.
  A lease column keeps two processes (the app and ``reviewdesk webhook flush``) from sending one summary at
  the same time.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import keyring
import keyring.errors
import requests
from sqlalchemy import select

from app import __version__
from app.models.audit import append_event_file
from app.models.schema import Annotation, Decision, DecisionSync, Prediction, Project, Server, Task
from app.models.store import STORE_FILENAME, Store, now_iso

log = logging.getLogger(__name__)

OUTBOX_FILENAME = "webhook-outbox.sqlite"
KEYRING_SERVICE = "reviewdesk-webhook"
ENV_SECRET = "REVIEWDESK_WEBHOOK_SECRET"
SIGNATURE_HEADER = "X-ReviewDesk-Signature"
DELIVERY_HEADER = "X-ReviewDesk-Delivery"
EVENT = "reviewdesk.push"
# seconds before attempt n+1 (the last value repeats); a summary that failed MAX_ATTEMPTS times is "failed"
BACKOFF: tuple[float, ...] = (2.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
MAX_ATTEMPTS = 30
TIMEOUT = (3.05, 10.0)  # connect, read (seconds)
LEASE_S = 60.0  # a claimed summary is not sent by another thread/process for this long
MAX_URL = 2048


class WebhookError(Exception):
    """A webhook setting or delivery the user must hear about, in one line."""


@dataclass(frozen=True)
class WebhookConfig:
    url: str | None
    has_secret: bool
    secret_source: str | None  # "keyring" | "environment" | None


@dataclass(frozen=True)
class OutboxItem:
    id: int
    key: str
    state: str  # pending | delivered | failed
    attempts: int
    created_at: str
    next_at: float
    last_error: str | None
    delivered_at: str | None
    decisions: int


@dataclass(frozen=True)
class OutboxStatus:
    config: WebhookConfig
    pending: int
    delivered: int
    failed: int
    last_error: str | None
    last_delivered_at: str | None


@dataclass(frozen=True)
class FlushResult:
    delivered: int
    pending: int
    failed: int
    errors: tuple[str, ...]


# -- URL and secret ---------------------------------------------------------------------------------------


def validate_url(url: str) -> str:
    """The URL, stripped, when it is a plain ``http(s)://host[:port]/path`` address; else :class:`WebhookError`."""
    url = (url or "").strip()
    if not url or len(url) > MAX_URL or any(ord(c) < 33 or c == "\\" for c in url):
        raise WebhookError("The webhook URL must be one http:// or https:// address without spaces.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookError(f"The webhook URL is not a valid address ({exc}).") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise WebhookError(f"The webhook URL must start with http:// or https:// (got {parts.scheme or 'none'}:).")
    if not parts.hostname:
        raise WebhookError("The webhook URL names no host.")
    if parts.username is not None or parts.password is not None:
        raise WebhookError("The webhook URL must not carry a user name or password; the secret goes in the keyring.")
    if parts.fragment:
        raise WebhookError("The webhook URL must not have a #fragment.")
    del port
    return url


def describe_url(url: str | None) -> str | None:
    """The URL as the audit trail and logs show it: origin and a fingerprint, never the path or query."""
    if not url:
        return None
    parts = urlsplit(url)
    fp = hashlib.sha256(url.encode()).hexdigest()[:12]
    return f"{parts.scheme}://{parts.netloc}/… (sha256:{fp})"


def sign(secret: str, body: bytes) -> str:
    """The signature header value: ``sha256=`` + HMAC-SHA256(secret, body) in hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """A receiver's check (constant-time), for tests and for documentation."""
    return bool(header) and hmac.compare_digest(sign(secret, body), str(header))


def _keyring_user(data_dir: Path) -> str:
    return str(Path(data_dir).resolve())


def _keyring_usable() -> bool:
    from app.sync.auth import keyring_usable

    return keyring_usable()


def load_secret(data_dir: Path) -> tuple[str | None, str | None]:
    """(secret, where it came from): the keyring, else ``$REVIEWDESK_WEBHOOK_SECRET``."""
    secret = None
    if _keyring_usable():
        with contextlib.suppress(keyring.errors.KeyringError):
            secret = keyring.get_password(KEYRING_SERVICE, _keyring_user(data_dir))
    if secret:
        return secret, "keyring"
    env = os.environ.get(ENV_SECRET)
    return (env, "environment") if env else (None, None)


def _save_secret(data_dir: Path, secret: str) -> None:
    if not _keyring_usable():
        raise WebhookError("No OS keyring is available, so the webhook secret cannot be stored safely. Set "
                           f"{ENV_SECRET} in the app's environment instead (read at each delivery, never saved).")
    try:
        keyring.set_password(KEYRING_SERVICE, _keyring_user(data_dir), secret)
    except keyring.errors.KeyringError as exc:
        raise WebhookError(f"The OS keyring refused to store the webhook secret ({type(exc).__name__}).") from None


def _delete_secret(data_dir: Path) -> bool:
    if not _keyring_usable():
        return False
    try:
        keyring.delete_password(KEYRING_SERVICE, _keyring_user(data_dir))
    except keyring.errors.KeyringError:
        return False
    return True


# -- the outbox file --------------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    body BLOB NOT NULL,
    decisions INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL DEFAULT 0,
    lease_until REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    delivered_at TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_at);
"""


def outbox_path(data_dir: Path) -> Path:
    return Path(data_dir) / OUTBOX_FILENAME


@contextlib.contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=5, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_SCHEMA)
        yield conn
    finally:
        conn.close()


def _get_url(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT value FROM config WHERE key = 'url'").fetchone()
    return str(row[0]) if row else None


def current_url(data_dir: Path) -> str | None:
    path = outbox_path(data_dir)
    if not path.exists():
        return None
    with _connect(path) as conn:
        return _get_url(conn)


def get_config(data_dir: Path) -> WebhookConfig:
    secret, source = load_secret(data_dir)
    return WebhookConfig(current_url(data_dir), bool(secret), source)


def _actor(data_dir: Path) -> str:
    from app.services.settings import load_settings

    return load_settings(Path(data_dir)).reviewer


def configure(data_dir: Path, url: str, secret: str) -> WebhookConfig:
    """Set the URL (validated) and the secret (keyring only); one ``settings.webhook`` audit event."""
    url = validate_url(url)
    if not secret or not secret.strip():
        raise WebhookError("The webhook secret is empty.")
    secret = secret.strip()
    data_dir = Path(data_dir)
    old_secret, _ = load_secret(data_dir)
    _save_secret(data_dir, secret)
    with _connect(outbox_path(data_dir)) as conn:
        old_url = _get_url(conn)
        conn.execute("INSERT INTO config (key, value) VALUES ('url', ?) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (url,))
    changes: dict[str, Any] = {}
    if old_url != url:
        changes["url"] = {"from": describe_url(old_url), "to": describe_url(url)}
    if old_secret != secret:
        changes["secret"] = "changed"
    if changes:
        append_event_file(data_dir / STORE_FILENAME, _actor(data_dir), "settings.webhook", {"changes": changes})
    return get_config(data_dir)


def clear(data_dir: Path) -> int:
    """Remove the URL and the secret; summaries not yet delivered are dropped (returned: how many)."""
    data_dir = Path(data_dir)
    path = outbox_path(data_dir)
    old_url = None
    dropped = 0
    if path.exists():
        with _connect(path) as conn:
            old_url = _get_url(conn)
            conn.execute("DELETE FROM config WHERE key = 'url'")
            dropped = conn.execute("DELETE FROM outbox WHERE state != 'delivered'").rowcount
    had_secret = _delete_secret(data_dir)
    changes: dict[str, Any] = {}
    if old_url:
        changes["url"] = {"from": describe_url(old_url), "to": None}
    if had_secret:
        changes["secret"] = "removed"
    if changes:
        append_event_file(data_dir / STORE_FILENAME, _actor(data_dir), "settings.webhook",
                          {"changes": changes, "dropped": dropped})
    return dropped


def enqueue(data_dir: Path, summary: dict[str, Any]) -> str | None:
    """Queue one summary when a URL is configured; returns its idempotency key (None: no webhook)."""
    path = outbox_path(data_dir)
    if not path.exists():
        return None
    key = str(summary.get("id") or uuid.uuid4())
    body = json.dumps({**summary, "id": key}, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    with _connect(path) as conn:
        if _get_url(conn) is None:
            return None
        conn.execute("INSERT OR IGNORE INTO outbox (key, body, decisions, created_at) VALUES (?, ?, ?, ?)",
                     (key, body, len(summary.get("decisions", ())), now_iso()))
    return key


def items(data_dir: Path) -> tuple[OutboxItem, ...]:
    path = outbox_path(data_dir)
    if not path.exists():
        return ()
    with _connect(path) as conn:
        rows = conn.execute("SELECT id, key, state, attempts, created_at, next_at, last_error, delivered_at, "
                            "decisions FROM outbox ORDER BY id").fetchall()
    return tuple(OutboxItem(*r) for r in rows)


def status(data_dir: Path) -> OutboxStatus:
    its = items(data_dir)
    errs = [i for i in its if i.state != "delivered" and i.last_error]
    done = [i.delivered_at for i in its if i.delivered_at]
    return OutboxStatus(get_config(data_dir), sum(i.state == "pending" for i in its),
                        sum(i.state == "delivered" for i in its), sum(i.state == "failed" for i in its),
                        errs[-1].last_error if errs else None, max(done) if done else None)


def body_of(data_dir: Path, key: str) -> bytes | None:
    with _connect(outbox_path(data_dir)) as conn:
        row = conn.execute("SELECT body FROM outbox WHERE key = ?", (key,)).fetchone()
    return bytes(row[0]) if row else None


# -- delivery ---------------------------------------------------------------------------------------------

Sender = Callable[[str, bytes, dict[str, str]], int]


def _http_send(url: str, body: bytes, headers: dict[str, str]) -> int:
    """One POST: TLS verified against the OS trust store (as the Label Studio client), no redirects followed."""
    from app.sync.client import TruststoreAdapter

    with requests.Session() as session:
        session.mount("https://", TruststoreAdapter())
        resp = session.post(url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False)
        resp.close()
        return int(resp.status_code)


def _short(exc: BaseException) -> str:
    if isinstance(exc, requests.ConnectionError):
        return "could not connect (connection refused or dropped)"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    return f"{type(exc).__name__}"


def deliver_due(data_dir: Path, *, force: bool = False, send: Sender = _http_send,
                backoff: tuple[float, ...] | None = None, max_attempts: int | None = None,
                stop: threading.Event | None = None) -> FlushResult:
    """Send every due summary once (``force``: every pending and failed one, ignoring the backoff).

    Returns what happened. Never raises for a receiver's failure: it is recorded on the summary."""
    data_dir = Path(data_dir)
    path = outbox_path(data_dir)
    if not path.exists():
        return FlushResult(0, 0, 0, ())
    backoff = backoff or BACKOFF
    max_attempts = max_attempts or MAX_ATTEMPTS
    delivered = 0
    errors: list[str] = []
    with _connect(path) as conn:
        url = _get_url(conn)
        now = time.time()
        where = "state IN ('pending', 'failed')" if force else "state = 'pending' AND next_at <= ?"
        ids = [r[0] for r in conn.execute(f"SELECT id FROM outbox WHERE {where} ORDER BY id",
                                          () if force else (now,))]
    secret, _ = load_secret(data_dir)
    for item_id in ids:
        if stop is not None and stop.is_set():
            break
        with _connect(path) as conn:
            now = time.time()
            claimed = conn.execute("UPDATE outbox SET lease_until = ? WHERE id = ? AND state != 'delivered' "
                                   "AND lease_until < ?", (now + LEASE_S, item_id, now)).rowcount
            row = conn.execute("SELECT key, body, attempts FROM outbox WHERE id = ?", (item_id,)).fetchone()
        if not claimed or row is None:
            continue
        key, body, attempts = str(row[0]), bytes(row[1]), int(row[2])
        error: str | None = None
        if url is None:
            error = "no webhook URL is configured"
        elif not secret:
            error = f"no webhook secret in the keyring (or {ENV_SECRET}); not sent unsigned"
        else:
            headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body),
                       DELIVERY_HEADER: key, "Idempotency-Key": key, "X-ReviewDesk-Event": EVENT,
                       "User-Agent": f"reviewdesk/{__version__}"}
            try:
                code = send(url, body, headers)
                if not 200 <= code < 300:
                    error = f"the receiver answered HTTP {code}"
            except Exception as exc:  # noqa: BLE001 - any failure of one delivery is recorded and retried
                error = _short(exc)
        attempts += 1
        with _connect(path) as conn:
            if error is None:
                conn.execute("UPDATE outbox SET state = 'delivered', attempts = ?, delivered_at = ?, "
                             "last_error = NULL, lease_until = 0 WHERE id = ?", (attempts, now_iso(), item_id))
                delivered += 1
            else:
                state = "failed" if attempts >= max_attempts else "pending"
                delay = backoff[min(attempts - 1, len(backoff) - 1)]
                conn.execute("UPDATE outbox SET state = ?, attempts = ?, next_at = ?, last_error = ?, "
                             "lease_until = 0 WHERE id = ?", (state, attempts, time.time() + delay, error, item_id))
                errors.append(error)
                log.info("webhook delivery %s to %s failed (attempt %d): %s", key, describe_url(url), attempts,
                         error)
    st = status(data_dir)
    return FlushResult(delivered, st.pending, st.failed, tuple(errors))


def _next_due(data_dir: Path) -> float | None:
    path = outbox_path(data_dir)
    if not path.exists():
        return None
    with _connect(path) as conn:
        row = conn.execute("SELECT MIN(next_at) FROM outbox WHERE state = 'pending'").fetchone()
    return float(row[0]) if row and row[0] is not None else None


class Deliverer:
    """One daemon thread per outbox: delivers due summaries, sleeps until the next is due, ends when none is
    pending. :meth:`kick` (after an enqueue, or at start) wakes or starts it."""

    def __init__(self, data_dir: Path, *, send: Sender = _http_send, backoff: tuple[float, ...] | None = None,
                 max_attempts: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.send = send
        self.backoff = backoff
        self.max_attempts = max_attempts
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None

    def kick(self) -> None:
        with self._lock:
            self._idle.clear()
            self._wake.set()
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="reviewdesk-webhook", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wait_idle(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until the thread has tried every due summary; True when it has."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                deliver_due(self.data_dir, send=self.send, backoff=self.backoff, max_attempts=self.max_attempts,
                            stop=self._stop)
                nxt = _next_due(self.data_dir)
            except Exception:  # noqa: BLE001 - the outbox file is unreadable: try again later, never crash
                log.exception("webhook outbox in %s could not be read", self.data_dir)
                nxt = time.time() + 30.0
            with self._lock:
                if self._wake.is_set():  # kicked while delivering: go round again at once
                    continue
                self._idle.set()
                if nxt is None:
                    self._thread = None
                    return
            self._wake.wait(max(0.0, min(nxt - time.time(), 3600.0)))
            with self._lock:
                self._idle.clear()
        with self._lock:
            self._thread = None
            self._idle.set()


_DELIVERERS: dict[Path, Deliverer] = {}
_DELIVERERS_LOCK = threading.Lock()


def deliverer(data_dir: Path) -> Deliverer:
    key = Path(data_dir).resolve()
    with _DELIVERERS_LOCK:
        d = _DELIVERERS.get(key)
        if d is None:
            d = _DELIVERERS[key] = Deliverer(key)
        return d


def resume(data_dir: Path) -> bool:
    """At start: deliver summaries a previous run left in the outbox (in the background). True if any."""
    try:
        if _next_due(data_dir) is None:
            return False
    except sqlite3.Error:
        log.warning("webhook outbox in %s could not be read", data_dir)
        return False
    deliverer(data_dir).kick()
    return True


# -- the push summary -------------------------------------------------------------------------------------


def pending_decision_ids(store: Store, server_ref: int) -> list[int]:
    """The decisions a push of this server is about to send (snapshot taken before the push); [] when no
    webhook is set or its outbox cannot be read (logged: a push never fails because of its webhook)."""
    try:
        if current_url(store.data_dir) is None:
            return []
    except sqlite3.Error:
        log.exception("the webhook outbox in %s cannot be read; this push sends no summary", store.data_dir)
        return []
    with store.session() as s:
        return list(s.scalars(
            select(Decision.id).join(DecisionSync, DecisionSync.decision_id == Decision.id)
            .join(Project, Project.id == Decision.project_id)
            .where(Project.server_ref == server_ref, DecisionSync.state == "pending").order_by(Decision.id)))


def push_summary(store: Store, server_ref: int, before: list[int], pushed_at: str) -> dict[str, Any] | None:
    """The summary of the decisions among ``before`` that the push left ``synced`` (None: nothing pushed)."""
    if not before:
        return None
    with store.session() as s:
        server = s.get(Server, server_ref)
        rows = s.execute(
            select(Decision, Task.server_id, Project.id, Project.server_id, Project.title, Annotation.server_id,
                   Prediction.server_id)
            .join(DecisionSync, DecisionSync.decision_id == Decision.id)
            .join(Task, Task.id == Decision.task_id).join(Project, Project.id == Decision.project_id)
            .outerjoin(Annotation, Annotation.id == Decision.annotation_id)
            .outerjoin(Prediction, Prediction.id == Decision.prediction_id)
            .where(Decision.id.in_(before), DecisionSync.state == "synced").order_by(Decision.id)).all()
        if not rows:
            return None
        projects: dict[int, dict[str, Any]] = {}
        decisions = []
        for d, task_sid, pid, p_sid, title, ann_sid, pred_sid in rows:
            projects.setdefault(pid, {"id": p_sid, "local_id": pid, "title": title})
            decisions.append({"uuid": d.uuid, "project": p_sid, "task": task_sid, "annotation": ann_sid,
                              "prediction": pred_sid, "verdict": d.verdict, "reviewer": d.reviewer, "role": d.role,
                              "reason": d.reason, "created_at": d.created_at, "retracts": d.retracts})
        return {"id": str(uuid.uuid4()), "event": EVENT, "reviewdesk": __version__,
                "server": server.url if server else None, "pushed_at": pushed_at,
                "projects": list(projects.values()), "count": len(decisions), "decisions": decisions}


def notify_push(store: Store, server_ref: int, before: list[int], pushed_at: str) -> str | None:
    """After a push: queue its summary and wake the delivery thread. Never raises (a push must not fail
    because of its webhook); returns the idempotency key, or None when nothing was queued."""
    if not before:
        return None
    try:
        summary = push_summary(store, server_ref, before, pushed_at)
        if summary is None:
            return None
        key = enqueue(store.data_dir, summary)
        if key is not None:
            deliverer(store.data_dir).kick()
        return key
    except Exception:  # noqa: BLE001 - logged; the push itself succeeded
        log.exception("the push webhook summary could not be queued")
        return None


def settle(data_dir: Path, timeout: float) -> bool:
    """Wait at most ``timeout`` s for the delivery thread's current round (a CLI about to exit gives the first
    attempt that long; whatever is left stays queued for the next start or ``reviewdesk webhook flush``)."""
    with _DELIVERERS_LOCK:
        d = _DELIVERERS.get(Path(data_dir).resolve())
    return True if d is None else d.wait_idle(timeout)


def send_test(data_dir: Path, *, send: Sender = _http_send) -> int:
    """Send one signed ``reviewdesk.test`` body now (not queued); the receiver's HTTP status, or WebhookError."""
    url = current_url(data_dir)
    if url is None:
        raise WebhookError("No webhook is set (reviewdesk webhook set URL --secret-stdin).")
    secret, _ = load_secret(data_dir)
    if not secret:
        raise WebhookError(f"No webhook secret in the keyring (or {ENV_SECRET}); set it again.")
    key = str(uuid.uuid4())
    body = json.dumps({"id": key, "event": "reviewdesk.test", "reviewdesk": __version__, "sent_at": now_iso()},
                      sort_keys=True, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body), DELIVERY_HEADER: key,
               "Idempotency-Key": key, "X-ReviewDesk-Event": "reviewdesk.test",
               "User-Agent": f"reviewdesk/{__version__}"}
    try:
        return send(url, body, headers)
    except Exception as exc:  # noqa: BLE001 - reported in one line
        raise WebhookError(f"The webhook test to {describe_url(url)} failed: {_short(exc)}.") from None
