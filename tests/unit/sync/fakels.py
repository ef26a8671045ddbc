"""An in-memory Label Studio behind a requests transport adapter (no network): enough of the API for the
sync engine's unit tests, with hooks to fail requests before or after the "server" acts."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter

URL = "http://ls.test"
TOKEN = "fake-legacy-token-123"


class FakeLS(BaseAdapter):
    def __init__(self, *, enterprise: bool = False) -> None:
        super().__init__()
        self.enterprise = enterprise
        self.clock = datetime(2026, 11, 1, tzinfo=UTC)
        self.users = [{"id": 1, "email": "admin@example.com"}, {"id": 2, "email": "ann@example.com"},
                      {"id": 3, "email": "rev@example.com"}]
        self.project = {"id": 7, "title": "Fake", "task_number": 0,
                        "label_config": '<View><Text name="text" value="$text"/><Choices name="c" toName="text">'
                                        '<Choice value="a"/><Choice value="b"/></Choices></View>'}
        self.tasks: dict[int, dict[str, Any]] = {}
        self.unique_ids: set[str] = set()
        self.reviews: list[dict[str, Any]] = []
        self.comments: list[dict[str, Any]] = []
        self.log: list[tuple[str, str]] = []
        self.next_id = 100
        self.fail: list[Callable[[str, str], str | None]] = []  # -> "before" | "after" | "502" | "401" | None
        self.token = TOKEN

    # -- data --------------------------------------------------------------------------------------------
    def tick(self) -> str:
        self.clock += timedelta(milliseconds=1)
        return self.clock.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def add_task(self, text: str, n_ann: int = 2, stamp: str | None = None) -> dict[str, Any]:
        self.next_id += 1
        now = stamp or self.tick()
        t = {"id": self.next_id, "data": {"text": text}, "meta": {}, "created_at": now, "updated_at": now,
             "annotations": [], "predictions": [{"id": self.next_id * 10, "result": [], "model_version": "m",
                                                 "score": 0.5}]}
        for k in range(n_ann):
            self.next_id += 1
            t["annotations"].append({"id": self.next_id, "completed_by": 2, "ground_truth": False, "lead_time": 1.0,
                                     "result": [{"from_name": "c", "to_name": "text", "type": "choices",
                                                 "value": {"choices": ["a" if k == 0 else "b"]}}],
                                     "created_at": now, "updated_at": now})
        self.tasks[t["id"]] = t
        self.project["task_number"] = len(self.tasks)
        return t

    def touch(self, task_id: int) -> None:
        self.tasks[task_id]["updated_at"] = self.tick()

    # -- transport -------------------------------------------------------------------------------------------
    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url)
        method, path = request.method or "GET", parts.path
        self.log.append((method, path))
        action = None
        for f in self.fail:
            action = f(method, path)
            if action:
                break
        if action == "before":
            raise requests.exceptions.ConnectionError("Connection reset by peer")
        if action == "502":
            return self._resp(request, 502, b"<html>Bad Gateway</html>", "text/html")
        auth = request.headers.get("Authorization", "")
        if path != "/api/token/refresh/" and auth not in (f"Token {self.token}", "Bearer access-ok") \
                or action == "401":
            return self._resp(request, 401, b'{"detail":"Invalid token."}')
        body = json.loads(request.body) if request.body else None
        status, payload = self.route(method, path, parse_qs(parts.query), body)
        if action == "after":
            raise requests.exceptions.ConnectionError("Connection aborted: RemoteDisconnected")
        raw = b"" if payload is None else json.dumps(payload).encode()
        if status == 404 and payload is None:
            return self._resp(request, 404, b"<html>not found</html>", "text/html")
        return self._resp(request, status, raw)

    def close(self) -> None:
        pass

    def _resp(self, request: requests.PreparedRequest, status: int, body: bytes,
              ctype: str = "application/json") -> requests.Response:
        r = requests.Response()
        r.status_code = status
        r._content = body
        r.headers["Content-Type"] = ctype
        r.url = request.url or ""
        r.request = request
        r.reason = {200: "OK", 201: "Created", 401: "Unauthorized", 404: "Not Found", 409: "Conflict",
                    502: "Bad Gateway"}.get(status, "")
        return r

    # -- API -----------------------------------------------------------------------------------------------
    def route(self, method: str, path: str, q: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        seg = [s for s in path.split("/") if s]
        if path == "/api/current-user/whoami":
            return 200, self.users[0]
        if path == "/api/token/refresh/":
            return (200, {"access": "access-ok"}) if body and body.get("refresh") == "a.b.c" else (401, {"detail": "x"})
        if path == "/api/users/":
            return 200, self.users
        if seg[:2] == ["api", "projects"] and len(seg) == 3:
            return 200, self.project
        if path == "/api/tasks":
            return self._list(q)
        if seg[:2] == ["api", "tasks"] and len(seg) == 3:
            t = self.tasks.get(int(seg[2]))
            if t is None:
                return 404, {"detail": "Not found."}
            if method == "PATCH":
                t["meta"] = copy.deepcopy(body["meta"])
                t["updated_at"] = self.tick()
            out = copy.deepcopy(t)
            for a in out["annotations"]:
                a["completed_by"] = {"id": a["completed_by"]}
            return 200, out
        if seg[:2] == ["api", "tasks"] and seg[3:] == ["annotations"]:
            t = self.tasks[int(seg[2])]
            if body.get("unique_id") in self.unique_ids:
                return 409, {"detail": "Annotation with this unique id already exists"}
            self.unique_ids.add(body.get("unique_id"))
            self.next_id += 1
            now = self.tick()
            a = {"id": self.next_id, "completed_by": body.get("completed_by", 1), "result": body["result"],
                 "ground_truth": body.get("ground_truth", False), "lead_time": body.get("lead_time"),
                 "created_at": now, "updated_at": now}
            t["annotations"].append(a)
            t["updated_at"] = now
            return 201, a
        if seg[:2] == ["api", "annotations"]:
            for t in self.tasks.values():
                for a in t["annotations"]:
                    if a["id"] == int(seg[2]):
                        a.update(body)
                        a["updated_at"] = t["updated_at"] = self.tick()
                        return 200, a
            return 404, {"detail": "Not found."}
        if seg[:2] == ["api", "annotation-reviews"] and self.enterprise:
            if method == "POST":
                self.reviews.append(dict(body, id=len(self.reviews) + 1))
                return 201, self.reviews[-1]
            ann = int(q.get("annotation", ["0"])[0])
            return 200, [r for r in self.reviews if r["annotation"] == ann or not ann]
        if seg[:2] == ["api", "annotation-reviews"]:
            return 404, {"detail": "Not found."}
        if seg[:2] == ["api", "comments"] and self.enterprise:
            if method == "POST":
                self.comments.append(dict(body, id=len(self.comments) + 1))
                return 201, self.comments[-1]
            ann = int(q.get("annotation", ["0"])[0])
            return 200, [c for c in self.comments if c["annotation"] == ann]
        return 404, None

    def _list(self, q: dict[str, list[str]]) -> tuple[int, Any]:
        query = json.loads(q["query"][0]) if "query" in q else {}
        items = list(self.tasks.values())
        for f in (query.get("filters") or {}).get("items", []):
            if f["filter"] == "filter:tasks:updated_at":
                items = [t for t in items if t["updated_at"] > f["value"]]
            elif f["filter"] == "filter:tasks:id":
                items = [t for t in items if t["id"] > float(f["value"])]
        order = (query.get("ordering") or ["tasks:id"])[0].replace("tasks:", "")
        items.sort(key=lambda t: t[order])
        page, size = int(q.get("page", ["1"])[0]), int(q.get("page_size", ["100"])[0])
        chunk = items[(page - 1) * size: page * size]
        if not chunk and page > 1:
            return 404, {"detail": "Invalid page."}
        if q.get("include"):
            keys = q["include"][0].split(",")
            chunk = [{k: t[k] for k in keys} for t in chunk]
        elif q.get("fields", [""])[0] != "all":
            chunk = [{k: v for k, v in t.items() if k not in ("annotations", "predictions")} for t in chunk]
        return 200, {"total": len(items), "tasks": copy.deepcopy(chunk)}


def client_for(fake: FakeLS, token: str = TOKEN, **kw: Any) -> Any:
    from app.sync.client import LSClient

    s = requests.Session()
    s.mount("http://", fake)
    kw.setdefault("backoff", 0.0)
    kw.setdefault("sleep", lambda _s: None)
    return LSClient(URL, token, session=s, **kw)
