"""The token goes only to the configured server's exact origin (scheme, host, port).

Loopback HTTP servers record every request's headers and body: two ports on 127.0.0.1 are two origins, and
``localhost`` on the same port is another one. Redirects are followed by the client itself, which decides
``Authorization`` again at every hop; API calls never follow a redirect to another origin (so a personal
access token in a refresh body cannot leave either).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from app.sync.auth import origin, token_allowed
from app.sync.client import LSClient
from app.sync.errors import AuthError, NotFoundError, RequestError

TOKEN = "legacy-secret-token-0123456789"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32

Route = Callable[["Seen"], tuple[int, dict[str, str], bytes]]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Loopback:
    """One origin: ``http://127.0.0.1:<port>``; routes by path (query included) prefix; records requests."""

    routes: dict[str, Route] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route(self, prefix: str, status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None,
              ) -> None:
        self.routes[prefix] = lambda _seen: (status, dict(headers or {}), body)

    def auth_headers(self) -> list[str | None]:
        return [s.headers.get("authorization") for s in self.seen]

    def everything(self) -> str:
        """All that reached this origin, as text (to search for a secret)."""
        return "\n".join(f"{s.method} {s.path} {json.dumps(s.headers)} {s.body!r}" for s in self.seen)

    def start(self) -> Loopback:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_a: Any) -> None:
                pass

            def _any(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                            self.rfile.read(n) if n else b"")
                owner.seen.append(seen)
                match = max((p for p in owner.routes if self.path.startswith(p)), key=len, default=None)
                status, headers, body = (owner.routes[match](seen) if match is not None
                                         else (404, {"Content-Type": "application/json"}, b'{"detail":"Not found."}'))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def servers() -> Iterator[tuple[Loopback, Loopback]]:
    a, b = Loopback().start(), Loopback().start()
    yield a, b
    a.stop()
    b.stop()


def client(url: str, token: str = TOKEN, **kw: Any) -> LSClient:
    kw.setdefault("retries", 0)
    kw.setdefault("timeout", (2.0, 5.0))
    return LSClient(url, token, **kw)


def jwt(payload: dict[str, Any]) -> str:
    def part(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(payload)}.c2lnbmF0dXJl"


# -- the decision ---------------------------------------------------------------------------------------------
def test_decision_is_exact_origin() -> None:
    srv = "https://ls.example.org"
    yes = ["https://ls.example.org/api/tasks", "https://LS.Example.org:443/data/upload/1/a.png",
           "https://ls.example.org/tasks/3/resolve/?fileuri=czM6Ly9iL2s="]
    no = ["http://ls.example.org/data/upload/1/a.png",        # plain HTTP when the server is https
          "https://ls.example.org:8443/x",                    # another port
          "https://ls.example.org.evil.test/x",               # another host
          "https://evil.test/ls.example.org/x",
          "https://ls.example.org@evil.test/x",               # user info: the host is evil.test
          "https://evil.test\\@ls.example.org/x",             # parsers disagree: refused
          "https://ls.example.org\t/x",
          "ftp://ls.example.org/x", "s3://ls.example.org/x", "//ls.example.org/x", "/data/upload/x", ""]
    assert all(token_allowed(srv, u) for u in yes)
    assert not any(token_allowed(srv, u) for u in no), [u for u in no if token_allowed(srv, u)]
    # a server configured on http: only http on that port; never its https twin nor another port
    assert token_allowed("http://127.0.0.1:8080", "http://127.0.0.1:8080/api/x")
    assert not token_allowed("http://127.0.0.1:8080", "https://127.0.0.1:8080/api/x")
    assert not token_allowed("http://127.0.0.1:8080", "http://localhost:8080/api/x")
    assert not token_allowed("http://127.0.0.1:8080", "http://127.0.0.1/api/x")
    assert origin("https://ls.example.org") == ("https", "ls.example.org", 443)
    # the bare host form a user may type is https
    assert token_allowed("ls.example.org", "https://ls.example.org/api/x")
    assert not token_allowed("ls.example.org", "http://ls.example.org/api/x")


# -- requests against loopback servers --------------------------------------------------------------------------
def test_token_reaches_the_configured_origin_only(servers: tuple[Loopback, Loopback]) -> None:
    a, b = servers
    a.route("/api/current-user/whoami", body=b'{"id": 1}', headers={"Content-Type": "application/json"})
    a.route("/data/upload/", body=PNG, headers={"Content-Type": "image/png"})
    b.route("/", body=PNG, headers={"Content-Type": "image/png"})
    c = client(a.url)
    assert c.whoami() == {"id": 1}
    assert c.download("/data/upload/1/a.png", 10**6)[0] == PNG                  # relative: the server
    assert c.download(f"{a.url}/data/upload/1/b.png", 10**6)[0] == PNG         # absolute, same origin
    assert a.auth_headers() == [f"Token {TOKEN}"] * 3
    # task data naming another port, or the same port under another host name: no token
    assert c.download(f"{b.url}/x.png", 10**6)[0] == PNG
    assert c.download(f"http://localhost:{a.port}/data/upload/1/c.png", 10**6)[0] == PNG
    assert b.auth_headers() == [None]
    assert a.auth_headers()[-1] is None
    assert TOKEN not in b.everything()


def test_no_token_after_a_redirect_to_another_origin(servers: tuple[Loopback, Loopback]) -> None:
    a, b = servers
    b.route("/bucket/", body=PNG, headers={"Content-Type": "image/png"})
    for status in (301, 302, 303, 307, 308):
        a.route(f"/data/upload/{status}", status, headers={"Location": f"{b.url}/bucket/{status}.png?X-Sig=s3cr3t"})
    a.route("/data/upload/same", 302, headers={"Location": "/data/upload/final.png"})
    a.route("/data/upload/final.png", body=PNG, headers={"Content-Type": "image/png"})
    c = client(a.url)
    for status in (301, 302, 303, 307, 308):
        assert c.download(f"/data/upload/{status}", 10**6) == (PNG, "image/png")
    assert [s.path.split("?")[0] for s in b.seen] == [f"/bucket/{n}.png" for n in (301, 302, 303, 307, 308)]
    assert b.auth_headers() == [None] * 5 and TOKEN not in b.everything()
    assert set(a.auth_headers()) == {f"Token {TOKEN}"}
    # a same-origin redirect keeps the token
    before = len(a.seen)
    assert c.download("/data/upload/same", 10**6)[0] == PNG
    assert [s.path for s in a.seen[before:]] == ["/data/upload/same", "/data/upload/final.png"]
    assert a.auth_headers()[before:] == [f"Token {TOKEN}"] * 2


def test_api_calls_never_follow_a_redirect_elsewhere(servers: tuple[Loopback, Loopback]) -> None:
    a, b = servers
    b.route("/", body=b'{"id": 666}', headers={"Content-Type": "application/json"})
    a.route("/api/current-user/whoami", 302, headers={"Location": f"{b.url}/api/current-user/whoami"})
    a.route("/api/tasks/5/", 307, headers={"Location": f"{b.url}/api/tasks/5/"})
    c = client(a.url)
    with pytest.raises(RequestError, match="another address") as e:
        c.whoami()
    assert f"127.0.0.1:{b.port}" in str(e.value) and TOKEN not in str(e.value)
    with pytest.raises(RequestError, match="another address"):
        c.patch_task(5, {"meta": {"secret": "x"}})
    assert b.seen == []
    # a session handed in with credentials set session-wide does not leak them either
    s = requests.Session()
    s.headers["Authorization"] = f"Token {TOKEN}"
    s.auth = ("user", TOKEN)
    b.route("/m.png", body=PNG)
    c2 = client(a.url, session=s)
    c2.download(f"{b.url}/m.png", 10**6)
    assert b.auth_headers() == [None] and TOKEN not in b.everything()


def test_never_plain_http_when_the_server_is_https(servers: tuple[Loopback, Loopback]) -> None:
    a, _b = servers
    a.route("/", body=PNG, headers={"Content-Type": "image/png"})
    https_twin = f"https://127.0.0.1:{a.port}"
    c = client(https_twin)
    assert not c.token_allowed(f"{a.url}/data/upload/1/a.png")
    # the request path: task data names the http:// twin of the https server -> fetched, but without the token
    assert c.download(f"{a.url}/data/upload/1/a.png", 10**6)[0] == PNG
    assert a.auth_headers() == [None]
    # and an http server that redirects an API call to its https twin is not followed with the token
    a.route("/api/current-user/whoami", 301, headers={"Location": f"{https_twin}/api/current-user/whoami"})
    with pytest.raises(RequestError, match="another address"):
        client(a.url).whoami()
    assert a.auth_headers()[-1] == f"Token {TOKEN}"  # the configured (http) origin itself did get it


def test_pat_refresh_respects_the_origin(servers: tuple[Loopback, Loopback]) -> None:
    a, b = servers
    pat = jwt({"token_type": "refresh", "exp": int(time.time()) + 86400, "jti": "pat-secret-jti"})
    access = [jwt({"token_type": "access", "exp": int(time.time()) + 300, "n": i}) for i in range(3)]
    issued: list[str] = []

    def refresh(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        assert json.loads(seen.body) == {"refresh": pat} and "authorization" not in seen.headers
        issued.append(access[len(issued)])
        return 200, {"Content-Type": "application/json"}, json.dumps({"access": issued[-1]}).encode()

    def media(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        if seen.headers.get("authorization") != f"Bearer {issued[-1]}":
            return 401, {"Content-Type": "application/json"}, b'{"detail":"expired"}'
        return 303, {"Location": f"{b.url}/bucket/a.png?X-Amz-Signature=abc"}, b""

    a.routes["/api/token/refresh/"] = refresh
    a.routes["/tasks/9/resolve/"] = media
    b.route("/bucket/", body=PNG, headers={"Content-Type": "image/png"})
    c = client(a.url, token=pat)
    assert c.creds.kind == "pat"
    assert c.download("/tasks/9/resolve/?fileuri=czM6Ly9iL2EucG5n", 10**6)[0] == PNG
    c.creds._access = access[2] + "x"  # the server no longer accepts it: a 401, one refresh, then the redirect
    assert c.download("/tasks/9/resolve/?fileuri=czM6Ly9iL2EucG5n", 10**6)[0] == PNG
    assert len(issued) == 2
    assert b.auth_headers() == [None, None]
    assert pat not in b.everything() and not any(tok in b.everything() for tok in issued)
    # a refresh endpoint that redirects elsewhere (307 would repeat the body there): not followed
    a.route("/api/token/refresh/", 307, headers={"Location": f"{b.url}/steal/"})
    c2 = client(a.url, token=pat)
    with pytest.raises(RequestError, match="another address"):
        c2.whoami()
    assert not any(s.path.startswith("/steal") for s in b.seen) and pat not in b.everything()


def test_media_errors_are_plain_and_carry_no_signature(servers: tuple[Loopback, Loopback]) -> None:
    a, b = servers
    a.route("/tasks/1/resolve/", 303, headers={"Location": f"{b.url}/bucket/k.png?X-Amz-Signature=s3cr3t"})
    b.route("/bucket/", 403, b"<Error><Code>AccessDenied</Code></Error>", {"Content-Type": "application/xml"})
    a.route("/data/upload/gone.png", 404)
    a.route("/data/upload/private.png", 403)
    c = client(a.url)
    with pytest.raises(AuthError) as e:
        c.download("/tasks/1/resolve/?fileuri=eA==", 10**6)
    assert "s3cr3t" not in str(e.value)
    with pytest.raises(NotFoundError):
        c.download("/data/upload/gone.png", 10**6)
    with pytest.raises(AuthError, match="403"):
        c.download("/data/upload/private.png", 10**6)
    a.route("/data/upload/big.png", body=b"x" * 5000)
    with pytest.raises(RequestError, match="larger than the cache limit"):
        c.download("/data/upload/big.png", 1000)
