"""A small Label Studio HTTP client (requests), with plain-language errors and safe retries.

* TLS verification is always on: the OS trust store (``truststore``) by default, or a custom CA bundle.
* ``HTTPS_PROXY`` / ``NO_PROXY`` are honoured (requests' ``trust_env``).
* Idempotent requests (GET, PATCH, PUT, DELETE) are retried with exponential backoff on timeouts,
  dropped connections, 5xx and 429 (``Retry-After`` honoured). POST is never retried here: the caller
  re-reads the server to find out whether an earlier attempt took effect (see :mod:`app.sync.push`).
* 401 with a personal access token: the access token is refreshed once and the request repeated.
* The token only ever goes to the configured server's exact origin (scheme, host, port; see
  :func:`app.sync.auth.token_allowed`). requests never follows a redirect here: :meth:`LSClient._exchange`
  follows them itself and decides the ``Authorization`` header again at every hop. API calls follow only
  same-origin redirects (a redirect elsewhere is an error, so neither the token nor a personal access token
  in a refresh body can leave); media downloads follow redirects to other origins (presigned storage
  links) without the token. Nothing session-wide carries credentials. No message, log line or exception
  carries the token.
"""

from __future__ import annotations

import json
import logging
import random
import re
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import truststore
from requests.adapters import HTTPAdapter

from app.sync.auth import Credentials, normalise_url, origin_text, token_allowed
from app.sync.errors import (
    AuthError,
    Cancelled,
    ConnectionLost,
    NotFoundError,
    NotJSONError,
    OfflineError,
    RequestError,
    ServerError,
    SyncError,
    TimeoutError_,
    TLSError,
)

log = logging.getLogger("reviewdesk.sync")
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})
DEFAULT_TIMEOUT = (5.0, 60.0)
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10


class TruststoreAdapter(HTTPAdapter):
    """HTTPS through the operating system's trust store (corporate CAs installed there just work)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("ssl_context", truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
        super().init_poolmanager(*args, **kwargs)


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests/urllib3 failure, short."""
    seen = exc
    while seen.__context__ is not None and seen.__context__ is not seen:
        seen = seen.__context__
    text = str(seen) or type(seen).__name__
    return text[:200]


def _is_unreachable(exc: BaseException) -> bool:
    """Refused / unreachable / could not connect: the request never reached the server."""
    e: BaseException | None = exc
    while e is not None:
        if isinstance(e, ConnectionRefusedError | requests.exceptions.ConnectTimeout) \
                or "NewConnectionError" in type(e).__name__ or "Failed to establish a new connection" in str(e):
            return True
        e = e.__context__ or e.__cause__
    return False


def _is_dns(exc: BaseException) -> bool:
    e: BaseException | None = exc
    while e is not None:
        if isinstance(e, socket.gaierror) or "NameResolutionError" in type(e).__name__ \
                or "Name or service not known" in str(e) or "nodename nor servname" in str(e):
            return True
        e = e.__context__ or e.__cause__
    return False


class LSClient:
    """One configured server. Thread-safe for concurrent requests (one pooled session)."""

    def __init__(self, url: str, token: str | None, *, ca_bundle: str | None = None,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT, retries: int = 4, backoff: float = 0.25,
                 session: requests.Session | None = None, pool_size: int = 8,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = normalise_url(url)
        self.host = urlsplit(self.url).netloc
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self.cancel_event: threading.Event | None = None
        self.session = session or requests.Session()
        if session is None:
            if ca_bundle:
                self.session.verify = ca_bundle
                self.session.mount("https://", HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size))
            else:
                self.session.mount("https://", TruststoreAdapter(pool_connections=pool_size,
                                                                 pool_maxsize=pool_size))
            self.session.mount("http://", HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size))
        self.session.headers["User-Agent"] = "ReviewDesk-sync"
        # credentials are decided per request and per redirect hop, never session-wide
        self.session.headers.pop("Authorization", None)
        self.session.auth = None
        self.creds = Credentials(token, self._refresh_access)
        self.stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LSClient({self.url!r})"

    # -- plumbing ----------------------------------------------------------------------------
    def _refresh_access(self, pat: str) -> str:
        body = self._send("POST", "/api/token/refresh/", json_body={"refresh": pat}, auth=False, retry=True)
        access = body.get("access") if isinstance(body, dict) else None
        if not isinstance(access, str):
            raise AuthError("The server did not hand out an access token for this personal access token. "
                            "Create a new token in Label Studio (Account & Settings) and log in again.")
        return access

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    def _check_cancel(self) -> None:
        if self.cancel_event is not None and self.cancel_event.is_set():
            raise Cancelled("Sync cancelled.")

    def _abs(self, path: str) -> str:
        if urlsplit(path).scheme.lower() in ("http", "https"):
            return path
        return urljoin(self.url + "/", path.lstrip("/"))

    def token_allowed(self, url: str) -> bool:
        """May the token go with a request to ``url``? Only on this server's exact origin."""
        return token_allowed(self.url, url)

    def _exchange(self, method: str, url: str, *, params: dict[str, Any] | None = None, json_body: Any = None,
                  headers: dict[str, str], auth: bool, stream: bool = False, foreign_redirects: bool = False,
                  ) -> tuple[requests.Response, str | None]:
        """Send one request and follow its redirects here (never inside requests).

        ``Authorization`` is attached at each hop only when that hop's URL is on the server's origin.
        A redirect to another origin is followed only when ``foreign_redirects`` (media: presigned
        storage links), without the token and without a body; otherwise it is an error. Returns the
        final response and the ``Authorization`` value sent with it (None when none was).
        """
        hops = 0
        while True:
            prep = self.session.prepare_request(requests.Request(method, url, params=params, json=json_body,
                                                                 headers=headers))
            assert prep.url is not None
            prep.headers.pop("Authorization", None)  # nothing merged in (session, netrc) decides this
            used: str | None = None
            if auth and self.token_allowed(prep.url):
                used = self.creds.header()
                prep.headers["Authorization"] = used
            settings = self.session.merge_environment_settings(prep.url, {}, stream, None, None)
            resp = self.session.send(prep, allow_redirects=False, timeout=self.timeout, **settings)
            location = resp.headers.get("Location")
            if resp.status_code not in REDIRECTS or not location:
                return resp, used
            target = urljoin(prep.url, location)
            resp.close()
            hops += 1
            if hops > MAX_REDIRECTS:
                raise RequestError(f"{self.host} redirected more than {MAX_REDIRECTS} times; giving up.")
            same = self.token_allowed(target)
            if not same and not foreign_redirects:
                raise RequestError(
                    f"{self.host} redirected this request to another address ({origin_text(target)}); ReviewDesk "
                    "sends the token only to the configured server and did not follow it. If the server moved "
                    "(for example to https://), log in again with its new URL.", status=resp.status_code)
            if resp.status_code == 303 or (resp.status_code in (301, 302) and method != "HEAD"):
                method = "GET" if method != "HEAD" else method
                json_body = None
            if not same:
                json_body = None
            params = None  # the Location is the whole next URL
            url = target

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json_body: Any = None, retry: bool | None = None) -> Any:
        """Send one API request and return its parsed JSON (None for an empty body)."""
        return self._send(method, path, params=params, json_body=json_body, auth=True,
                          retry=method.upper() in IDEMPOTENT if retry is None else retry)

    def _send(self, method: str, path: str, *, params: dict[str, Any] | None = None, json_body: Any = None,
              auth: bool, retry: bool, raw: bool = False) -> Any:
        method = method.upper()
        url = self._abs(path)
        attempts = self.retries + 1 if retry else 1
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            self._check_cancel()
            headers = {"Accept": "application/json"}
            try:
                self._count(method)
                resp, used = self._exchange(method, url, params=params, json_body=json_body, headers=headers,
                                            auth=auth)
            except requests.exceptions.SSLError as exc:
                raise TLSError(
                    f"The TLS certificate of {self.host} could not be verified ({_reason(exc)}). If your "
                    "organisation uses its own certificate authority, install it in the system trust store "
                    "or pass its bundle with --ca-bundle.") from None
            except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
                err: SyncError
                if isinstance(exc, requests.exceptions.Timeout) and not isinstance(
                        exc, requests.exceptions.ConnectTimeout):
                    err = TimeoutError_(f"{self.host} did not answer within {self.timeout[1]:g} s.")
                elif _is_dns(exc):
                    err = OfflineError(f"Cannot find the server {self.host} (DNS lookup failed). Check the URL "
                                       "and your network connection.")
                elif _is_unreachable(exc):
                    err = OfflineError(f"Cannot reach {self.host} ({_reason(exc)}). You may be offline; "
                                       "everything stays queued.")
                else:
                    err = ConnectionLost(f"The connection to {self.host} broke during a request "
                                         f"({_reason(exc)}); it will be retried.")
                if attempt < attempts and not _is_dns(exc):
                    self._backoff(attempt, None)
                    continue
                raise err from None
            status = resp.status_code
            if status == 401 and used is not None and not refreshed and self.creds.invalidate(used):
                refreshed = True
                continue
            if status in (401, 403):
                raise AuthError(
                    ("The server refused the API token (401): it is wrong, revoked or expired. Log in again; "
                     "nothing queued is lost.") if status == 401 else
                    ("The token is valid but this account may not do that (403 Forbidden). Ask a project "
                     "administrator for access."), status=status)
            if status == 429 or status >= 500:
                retry_after = _retry_after(resp)
                err = ServerError(
                    "The server is busy (429 Too Many Requests); retrying later." if status == 429 else
                    f"The server failed ({status} {resp.reason or ''}). Nothing was lost; try again later.".replace(
                        " )", ")"), status=status, retry_after=retry_after)
                if attempt < attempts:
                    self._backoff(attempt, retry_after)
                    continue
                raise err
            if status == 404:
                raise NotFoundError(f"Not found on the server: {urlsplit(url).path}", status=404)
            if status >= 400:
                raise RequestError(f"The server refused the request ({status}): {_detail(resp)}", status=status)
            if raw:
                return resp
            if not resp.content:
                return None
            try:
                return resp.json()
            except ValueError:
                ctype = resp.headers.get("Content-Type", "?")
                raise NotJSONError(
                    f"{self.host} answered with a web page ({ctype}) instead of data. A proxy or a network "
                    "login page may be in the way; open the URL in a browser, or check the server URL.",
                    status=status) from None

    def _backoff(self, attempt: int, retry_after: float | None) -> None:
        delay = retry_after if retry_after is not None else self.backoff * (2 ** (attempt - 1))
        delay = min(delay, 10.0) * (0.8 + 0.4 * random.random())
        end = time.monotonic() + delay
        while True:
            self._check_cancel()
            left = end - time.monotonic()
            if left <= 0:
                return
            self._sleep(min(left, 0.1))

    # -- API -----------------------------------------------------------------------------------
    def _object(self, body: Any) -> dict[str, Any]:
        """``body`` when it is a JSON object; anything else (an empty answer, a list) is not what the API sends."""
        if isinstance(body, dict):
            return body
        raise NotJSONError(f"{self.host} answered with {'nothing' if body is None else type(body).__name__} "
                           "where a JSON object was expected. A proxy may be in the way, or the server is not "
                           "Label Studio.")

    def whoami(self) -> dict[str, Any]:
        return self._object(self.request("GET", "/api/current-user/whoami"))

    def project(self, project_id: int) -> dict[str, Any]:
        """The project; ``_server_date`` is the server's clock (HTTP ``Date``) when it answered."""
        resp = self._send("GET", f"/api/projects/{project_id}/", auth=True, retry=True, raw=True)
        try:
            body = resp.json()
        except ValueError:
            raise NotJSONError(f"{self.host} answered with a web page instead of data. A proxy or a network "
                               "login page may be in the way.", status=resp.status_code) from None
        body = self._object(body)
        body["_server_date"] = resp.headers.get("Date")
        return body

    def projects(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self.request("GET", "/api/projects/", params={"page": page, "page_size": 100})
            if isinstance(body, list):
                return body
            out.extend(body.get("results", []))
            if not body.get("next"):
                return out
            page += 1

    def users(self) -> list[dict[str, Any]]:
        body = self.request("GET", "/api/users/")
        if isinstance(body, dict):
            return list(body.get("results", []))
        return list(body or [])

    def tasks_page(self, project_id: int, *, page: int = 1, page_size: int = 500,
                   query: dict[str, Any] | None = None, fields: str | None = "all",
                   include: str | None = None) -> dict[str, Any]:
        """One page of ``GET /api/tasks``; a page past the end gives ``{"tasks": []}`` (the server's 404)."""
        params: dict[str, Any] = {"project": project_id, "page": page, "page_size": page_size}
        if fields:
            params["fields"] = fields
        if include:
            params["include"] = include
        if query is not None:
            params["query"] = json.dumps(query, separators=(",", ":"))
        try:
            body = self.request("GET", "/api/tasks", params=params)
        except NotFoundError:
            return {"tasks": [], "total": None}
        if isinstance(body, list):
            return {"tasks": body, "total": None}
        return self._object(body)

    def iter_task_ids(self, project_id: int, page_size: int = 1000) -> Iterator[int]:
        """Every task id of the project (keyset on id: deletions while listing never hide a task)."""
        last = 0
        while True:
            query = {"filters": {"conjunction": "and", "items": [
                {"filter": "filter:tasks:id", "operator": "greater", "type": "Number", "value": last}]},
                "ordering": ["tasks:id"]}
            body = self.tasks_page(project_id, page=1, page_size=page_size, fields=None, include="id", query=query)
            tasks = body.get("tasks") or []
            for t in tasks:
                yield int(t["id"])
            if len(tasks) < page_size:
                return
            last = max(int(t["id"]) for t in tasks)

    def task(self, task_id: int) -> dict[str, Any]:
        return self._object(self.request("GET", f"/api/tasks/{task_id}/"))

    def patch_task(self, task_id: int, body: dict[str, Any]) -> dict[str, Any] | None:
        """The task as written, or None when the server answered without one (the caller reads it back)."""
        written = self.request("PATCH", f"/api/tasks/{task_id}/", json_body=body)
        return written if isinstance(written, dict) else None

    def patch_annotation(self, annotation_id: int, body: dict[str, Any]) -> dict[str, Any]:
        return self._object(self.request("PATCH", f"/api/annotations/{annotation_id}/", json_body=body))

    def create_annotation(self, task_id: int, body: dict[str, Any]) -> dict[str, Any]:
        return self._object(self.request("POST", f"/api/tasks/{task_id}/annotations/", json_body=body))

    def enterprise_probe(self) -> bool:
        """True when the Enterprise review API answers; a 404 (or a web page) means Community."""
        try:
            self.request("GET", "/api/annotation-reviews/", params={"page_size": 1}, retry=False)
        except (NotFoundError, NotJSONError):
            return False
        except RequestError as exc:
            return exc.status not in (404, 405)
        return True

    def reviews(self, annotation_id: int) -> list[dict[str, Any]]:
        body = self.request("GET", "/api/annotation-reviews/", params={"annotation": annotation_id})
        return list(body.get("results", [])) if isinstance(body, dict) else list(body or [])

    def project_reviews(self, project_id: int) -> list[dict[str, Any]]:
        """Enterprise: every annotation review of a project (a plain list; Community answers 404)."""
        body = self.request("GET", "/api/annotation-reviews/", params={"annotation__task__project": project_id})
        return list(body.get("results", [])) if isinstance(body, dict) else list(body or [])

    def create_review(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._object(self.request("POST", "/api/annotation-reviews/", json_body=body))

    def comments(self, annotation_id: int) -> list[dict[str, Any]]:
        body = self.request("GET", "/api/comments/", params={"annotation": annotation_id})
        return list(body.get("results", [])) if isinstance(body, dict) else list(body or [])

    def create_comment(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._object(self.request("POST", "/api/comments/", json_body=body))

    def download(self, url: str, max_bytes: int) -> tuple[bytes, str | None]:
        """Fetch media bytes from ``url`` (absolute, or a path on this server).

        The token goes only to this server's exact origin; a redirect to another origin (a presigned storage
        link) is followed without it. A PAT's access token is refreshed once on a 401 from this server.
        Errors name the host, never the query string (presigned links carry signatures).
        """
        absolute = self._abs(url)
        where = urlsplit(absolute).netloc or "?"
        refreshed = False
        while True:
            self._check_cancel()
            try:
                self._count("MEDIA")
                resp, used = self._exchange("GET", absolute, headers={"Accept": "*/*"}, auth=True, stream=True,
                                            foreign_redirects=True)
                with resp:
                    status = resp.status_code
                    if status == 401 and used is not None and not refreshed and self.creds.invalidate(used):
                        refreshed = True
                        continue
                    if status == 404:
                        raise NotFoundError(f"Media not found: {urlsplit(absolute).path}", status=404)
                    if status in (401, 403):
                        raise AuthError(f"The media server refused access ({status}).", status=status)
                    if status >= 500 or status == 429:
                        raise ServerError(f"Media download failed ({status}): {_detail(resp)[:200]}",
                                          status=status)
                    if status >= 400:
                        raise RequestError(f"Media download refused ({status}): {_detail(resp)[:200]}",
                                           status=status)
                    length = resp.headers.get("Content-Length")
                    if length and length.isdigit() and int(length) > max_bytes:
                        raise RequestError(f"Media file larger than the cache limit ({max_bytes} bytes).")
                    chunks = []
                    total = 0
                    for chunk in resp.iter_content(65536):
                        total += len(chunk)
                        if total > max_bytes:
                            raise RequestError(f"Media file larger than the cache limit ({max_bytes} bytes).")
                        chunks.append(chunk)
                    return b"".join(chunks), resp.headers.get("Content-Type")
            except requests.exceptions.SSLError:
                raise TLSError(f"TLS verification failed for {where}.") from None
            except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
                raise OfflineError(f"Cannot fetch media from {where} ({_no_query(_reason(exc))}).") from None


def _no_query(text: str) -> str:
    """Drop query strings from a message (a presigned link's signature must not reach logs)."""
    return re.sub(r"\?\S*", "?…", text)


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _detail(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return (resp.text or "")[:200].strip() or resp.reason or "no details"
    if isinstance(body, dict):
        for key in ("validation_errors", "detail", "message"):
            if body.get(key):
                return json.dumps(body[key])[:300] if not isinstance(body[key], str) else body[key][:300]
    return json.dumps(body)[:300]
