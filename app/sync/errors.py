"""Sync failures, each with a plain-language message meant for the reviewer.

``transient`` failures (offline, timeouts, 5xx, 429) are retried with backoff and never change what is
queued; the others (TLS, 401/403, a proxy login page) stop the sync and ask the user to act. No message
ever contains a token.
"""

from __future__ import annotations


class SyncError(Exception):
    """A sync failure; ``str(exc)`` is a sentence for the user."""

    transient = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class OfflineError(SyncError):
    """DNS failure, connection refused/reset, network unreachable."""

    transient = True


class ConnectionLost(OfflineError):
    """The connection broke mid-request (reset, closed without an answer): the server may have acted."""


class TimeoutError_(SyncError):  # noqa: N801 - avoid shadowing the builtin
    transient = True


class ServerError(SyncError):
    """5xx or 429: the server (or a proxy in front of it) failed; try again later."""

    transient = True

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class TLSError(SyncError):
    pass


class AuthError(SyncError):
    """401/403: the token is missing, wrong, expired or not allowed. Queued work is kept."""


class NotJSONError(SyncError):
    """The server answered with something other than JSON (a proxy or captive-portal page)."""


class NotFoundError(SyncError):
    pass


class RequestError(SyncError):
    """Any other 4xx: the server refused the request as sent."""


class NoTokenError(AuthError):
    pass


class Cancelled(SyncError):
    """The user cancelled the sync; what was applied so far stays applied."""
