"""A loopback HTTP proxy that injects faults between ReviewDesk and Label Studio (threads + sockets).

Each request is parsed (head + Content-Length body) and matched against rules; a rule's action applies to
the next ``count`` matching requests:

* ``drop_before`` -- close the client connection without forwarding (the server never sees the request);
* ``drop_after``  -- forward, let the server process it, read its answer, then close without answering;
* ``delay``       -- hold the request ``seconds`` (past the client's timeout), then forward it anyway
                     (the server processes a request the client already gave up on);
* ``status502``   -- answer 502 Bad Gateway (an HTML page) without forwarding;
* ``html200``     -- answer 200 with a captive-portal HTML page (not JSON);
* ``set_down(True)`` -- nothing listens any more: new connections are refused (offline).

One request per connection (``Connection: close`` both ways) keeps the framing trivial.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Rule:
    method: str
    path: str  # regex, matched against the path (query included)
    action: str
    count: int = 1
    seconds: float = 0.0
    hits: int = 0


@dataclass
class Seen:
    method: str
    path: str
    action: str


@dataclass
class FaultProxy:
    target_host: str
    target_port: int
    rules: list[Rule] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._down = False
        self.port = 0
        self._listen()
        self.url = f"http://127.0.0.1:{self.port}"

    def _listen(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, args=(self._sock,), name="fault-proxy", daemon=True)
        self._thread.start()

    # -- control ----------------------------------------------------------------------------------------
    def add(self, method: str, path: str, action: str, count: int = 1, seconds: float = 0.0) -> Rule:
        rule = Rule(method.upper(), path, action, count, seconds)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def set_down(self, down: bool) -> None:
        """Down: nothing listens on the port any more (connections are refused, as when offline)."""
        if down and not self._down:
            self._down = True
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); stops listening
            with contextlib.suppress(OSError):
                self._sock.close()
            self._thread.join(timeout=5)
        elif not down and self._down:
            self._down = False
            self._listen()

    def faults_applied(self) -> list[Seen]:
        return [s for s in self.seen if s.action != "pass"]

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._sock.close()

    # -- serving --------------------------------------------------------------------------------------------
    def _serve(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _pick(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for r in self.rules:
                if r.hits < r.count and r.method in (method, "*") and re.search(r.path, path):
                    r.hits += 1
                    return r
        return None

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(60)
            head, body = _read_request(conn)
            if head is None:
                return
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            method, path, _ = request_line.split(" ", 2)
            rule = self._pick(method, path)
            action = rule.action if rule else "pass"
            self.seen.append(Seen(method, path, action))
            if action == "drop_before":
                _abort(conn)
                return
            if action == "status502":
                page = b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: "
                             + str(len(page)).encode() + b"\r\nConnection: close\r\n\r\n" + page)
                return
            if action == "html200":
                page = b"<html><body><form>Sign in to the guest network</form></body></html>"
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                             + str(len(page)).encode() + b"\r\nConnection: close\r\n\r\n" + page)
                return
            if action == "delay" and rule is not None:
                time.sleep(rule.seconds)
            response = self._forward(head, body)
            if action == "drop_after":
                _abort(conn)
                return
            # the client may have given up (timeout): the server processed the request anyway
            with contextlib.suppress(OSError):
                conn.sendall(response)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def _forward(self, head: bytes, body: bytes) -> bytes:
        lines = head.split(b"\r\n")
        kept = [ln for ln in lines[1:] if ln and not ln.lower().startswith((b"connection:", b"keep-alive:"))]
        new_head = b"\r\n".join([lines[0], *kept, b"Connection: close"]) + b"\r\n\r\n"
        with socket.create_connection((self.target_host, self.target_port), timeout=120) as up:
            up.sendall(new_head + body)
            chunks = []
            while True:
                data = up.recv(65536)
                if not data:
                    break
                chunks.append(data)
        raw = b"".join(chunks)
        # make sure the client closes too (one request per connection)
        hdr_end = raw.find(b"\r\n\r\n")
        if hdr_end > 0:
            hdr = raw[:hdr_end].split(b"\r\n")
            hdr = [h for h in hdr if not h.lower().startswith(b"connection:")] + [b"Connection: close"]
            raw = b"\r\n".join(hdr) + raw[hdr_end:]
        return raw


def _abort(conn: socket.socket) -> None:
    """Close with RST (a dropped connection, not a clean end of response)."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conn.close()


def _read_request(conn: socket.socket) -> tuple[bytes | None, bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = conn.recv(65536)
        if not data:
            return None, b""
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1].strip())
    while len(rest) < length:
        data = conn.recv(65536)
        if not data:
            break
        rest += data
    return head, rest
