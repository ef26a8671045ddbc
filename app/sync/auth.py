"""API tokens: where they live (the OS keyring only) and how they become request headers.

Two kinds of key (labelstudio-api.md):

* legacy ``Token`` keys, sent as ``Authorization: Token <key>``;
* personal access tokens (PAT): a JWT *refresh* token, exchanged at ``POST /api/token/refresh/`` for an
  access token valid ~300 s, sent as ``Authorization: Bearer <access>``. The access token is refreshed
  shortly before it expires and whenever the server answers 401.

Where a token may go: only to the configured server's exact origin (scheme, host, port), decided by
:func:`token_allowed` for every request and every redirect hop (see :mod:`app.sync.client`). Never to
another host or port, never to ``http://`` when the server is ``https://``. Task data is untrusted: a URL
named by a task gets the token only when it is on that origin.

Tokens are stored with :mod:`keyring` (service ``reviewdesk``, user = the server URL). When no keyring
backend exists (headless Linux without Secret Service), :func:`save_token` raises
:class:`KeyringUnavailable` with a clear message and the environment variable ``REVIEWDESK_TOKEN`` is used
as a fallback. Tokens are never written to the store, config files or logs.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import keyring
import keyring.errors
from urllib3.util import parse_url

from app.sync.errors import AuthError, NoTokenError

SERVICE = "reviewdesk"
ENV_TOKEN = "REVIEWDESK_TOKEN"
REFRESH_MARGIN_S = 30.0


class KeyringUnavailable(Exception):
    """No usable OS keyring; the message tells the user about ``REVIEWDESK_TOKEN``."""


def normalise_url(url: str) -> str:
    url = url.strip()
    if not url.startswith(("http://", "https://")):
        url = "https://" + url
    return url.rstrip("/")


Origin = tuple[str, str, int]
_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNSAFE = frozenset("\\ \t\r\n\x00")


def origin(url: str) -> Origin | None:
    """``(scheme, host, port)`` of an ``http(s)`` URL, default ports filled in; None when it is not one.

    The URL is read by two parsers (the standard library's and urllib3's, which requests connects with);
    when they disagree about the host or port, or the URL carries user info, backslashes or control
    characters, there is no origin (so no token): such a URL can mean one host to the check and another
    to the connection.
    """
    if not isinstance(url, str) or any(c in _UNSAFE or ord(c) < 32 for c in url):
        return None
    try:
        a = urlsplit(url)
        b = parse_url(url)
        scheme = (a.scheme or "").lower()
        if scheme not in _DEFAULT_PORTS or a.username is not None or a.password is not None or b.auth:
            return None
        host_a = (a.hostname or "").rstrip(".")
        host_b = (b.host or "").strip("[]").lower().rstrip(".")
        port_a = a.port or _DEFAULT_PORTS[scheme]
        port_b = b.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        return None
    if not host_a or host_a != host_b or port_a != port_b or (b.scheme or "").lower() != scheme:
        return None
    return scheme, host_a, port_a


def origin_text(url: str) -> str:
    """``scheme://host:port`` for messages (never the path or query, which may carry signed secrets)."""
    o = origin(url)
    if o is None:
        return "an address ReviewDesk does not trust"
    return f"{o[0]}://{o[1]}:{o[2]}"


def token_allowed(server_url: str, request_url: str) -> bool:
    """May the API token (or a personal access token) be sent with a request to ``request_url``?

    Only when ``request_url`` has exactly the configured server's origin: same scheme, host and port.
    """
    server = origin(normalise_url(server_url))
    return server is not None and origin(request_url) == server


def _jwt_payload(token: str) -> dict[str, Any] | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        pad = "=" * (-len(parts[1]) % 4)
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + pad))
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def token_kind(token: str) -> str:
    """``pat`` when the key decodes as a JWT, else ``legacy``."""
    return "pat" if _jwt_payload(token) is not None else "legacy"


def keyring_usable() -> bool:
    kr = keyring.get_keyring()
    try:
        priority = kr.priority
    except Exception:  # noqa: BLE001 - some backends raise from priority
        return False
    name = type(kr).__module__ + "." + type(kr).__name__
    return priority > 0 and not name.startswith(("keyring.backends.fail", "keyring.backends.null"))


def save_token(url: str, token: str) -> None:
    if not keyring_usable():
        raise KeyringUnavailable(
            "No OS keyring is available on this machine, so the token cannot be stored safely. "
            f"Set the environment variable {ENV_TOKEN} to the token instead (it is read at each sync "
            "and never saved).")
    try:
        keyring.set_password(SERVICE, normalise_url(url), token)
    except keyring.errors.KeyringError as exc:
        raise KeyringUnavailable(
            f"The OS keyring refused to store the token ({type(exc).__name__}). "
            f"Unlock it, or set {ENV_TOKEN} in the environment instead.") from None


def load_token(url: str) -> str | None:
    """The stored token for ``url``; else ``REVIEWDESK_TOKEN``; else None."""
    try:
        tok = keyring.get_password(SERVICE, normalise_url(url)) if keyring_usable() else None
    except keyring.errors.KeyringError:
        tok = None
    return tok or os.environ.get(ENV_TOKEN) or None


def delete_token(url: str) -> None:
    with contextlib.suppress(keyring.errors.KeyringError):
        keyring.delete_password(SERVICE, normalise_url(url))


class Credentials:
    """Turns a stored key into the ``Authorization`` header, refreshing PAT access tokens.

    ``refresh_fn(pat) -> access`` performs ``POST /api/token/refresh/`` (provided by the client so this
    module stays free of HTTP). Thread-safe: concurrent pushes share one access token.
    """

    def __init__(self, token: str | None, refresh_fn: Callable[[str], str] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if not token:
            raise NoTokenError("No API token is stored for this server. Log in first "
                               f"(reviewdesk login URL), or set {ENV_TOKEN}.")
        self._token = token
        self.kind = token_kind(token)
        self._refresh_fn = refresh_fn
        self._clock = clock
        self._access: str | None = None
        self._access_exp = 0.0
        self._lock = threading.Lock()
        self.refreshes = 0

    def __repr__(self) -> str:  # never show the key
        return f"Credentials(kind={self.kind!r})"

    def header(self) -> str:
        if self.kind == "legacy":
            return f"Token {self._token}"
        with self._lock:
            if self._access is None or self._clock() >= self._access_exp - REFRESH_MARGIN_S:
                self._refresh_locked()
            return f"Bearer {self._access}"

    def invalidate(self, used_header: str | None = None) -> bool:
        """After a 401: drop the access token so the next header refreshes it. False for legacy keys."""
        if self.kind == "legacy":
            return False
        with self._lock:
            if used_header is None or used_header == f"Bearer {self._access}":
                self._access = None
        return True

    def _refresh_locked(self) -> None:
        if self._refresh_fn is None:
            raise AuthError("This personal access token needs refreshing, but no server is attached.")
        access = self._refresh_fn(self._token)
        payload = _jwt_payload(access) or {}
        exp = payload.get("exp")
        self._access = access
        self._access_exp = float(exp) if isinstance(exp, int | float) else self._clock() + 240.0
        self.refreshes += 1
