"""A loopback HTTP receiver for webhook tests: records every POST (headers, exact body bytes), answers with
scripted status codes, and can hold a request open until released (a receiver that never answers)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    port: int
    codes: list[int] = field(default_factory=list)  # answers in order; 200 once used up
    got: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    hold: threading.Event | None = None  # when set up: each request waits for it before answering

    def wait_for(self, n: int, timeout: float = 30.0) -> list[Received]:
        end = threading.Event()
        for _ in range(int(timeout * 20)):
            if len(self.got) >= n:
                return self.got
            end.wait(0.05)
        raise AssertionError(f"the receiver got {len(self.got)} requests, expected {n}")


@contextmanager
def receiver(port: int = 0, codes: list[int] | None = None, hold: threading.Event | None = None) -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            rec = state["r"]
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            rec.got.append(Received(self.path, {k: v for k, v in self.headers.items()}, body))
            rec.arrived.set()
            if rec.hold is not None:
                rec.hold.wait(30)
            code = rec.codes.pop(0) if rec.codes else 200
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    real_port = server.server_address[1]
    state["r"] = Receiver(f"http://127.0.0.1:{real_port}/hook", real_port, list(codes or []), hold=hold)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield state["r"]
    finally:
        if hold is not None:
            hold.set()
        server.shutdown()
        server.server_close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
