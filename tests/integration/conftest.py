"""A real Label Studio 1.23.2 for the integration tests (started once per session and back end, on loopback).

The fixture installs Label Studio into ``<repo>/.venv-ls`` on first use (cached afterwards), starts it on a
free 127.0.0.1 port with a temporary data dir and a fixed legacy token, adds members with
``label-studio init``, and builds projects, tasks, annotations and predictions through the real API. If the
server cannot be installed or started, the tests FAIL with the reason (never skipped).

Back ends: the session fixture ``ls_backend`` is ``"sqlite"`` (Label Studio's default file) or ``"postgres"``
(a fresh database on the local cluster, dropped at the end; see ``pgcluster.py``). A test module that sets

    LS_BACKENDS = ("sqlite", "postgres")

runs its tests on both (ids ``[sqlite]`` / ``[postgres]``); other modules run on SQLite only. ``ls`` and
everything built on it (``make_project``, ``sync_service``) follow ``ls_backend``: one server per back end
per session, with the same members and demo projects. Without a reachable PostgreSQL the postgres-backed
tests FAIL with one line saying how to get it (``scripts/pg_test_cluster.sh``).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.lsserver import ADMIN_TOKEN, VENV, LabelStudioServer, ensure_label_studio, say
from tests.integration.pgcluster import PgDatabase, PostgresUnavailable
from tests.memkeyring import install as install_memory_keyring

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "app" / "resources" / "demo"

MEMBERS = {
    "ann1@example.com": "rd-test-ann1-token-0101",
    "ann2@example.com": "rd-test-ann2-token-0102",
    "ann3@example.com": "rd-test-ann3-token-0103",
    "rev@example.com": "rd-test-rev-token-0201",
    "rev2@example.com": "rd-test-rev2-token-0202",
    "expert@example.com": "rd-test-expert-token-0301",
}
ALL_TOKENS = (ADMIN_TOKEN, *MEMBERS.values())
BACKENDS = ("sqlite", "postgres")

# one project per dimension of the demo labeling config
DIMENSIONS: dict[str, str] = {
    "category": """<View><Text name="ticket" value="$text"/>
  <Choices name="category" toName="ticket" choice="single"><Choice value="Billing"/><Choice value="Technical"/>
  <Choice value="Account"/><Choice value="Shipping"/><Choice value="Other"/></Choices></View>""",
    "entities": """<View><Text name="ticket" value="$text"/>
  <Labels name="entities" toName="ticket"><Label value="PRODUCT"/><Label value="AMOUNT"/><Label value="DATE"/>
  <Label value="ORG"/></Labels></View>""",
    "urgency": """<View><Text name="ticket" value="$text"/><Rating name="urgency" toName="ticket" maxRating="5"/></View>""",
    "regions": """<View><Image name="screenshot" value="$image"/>
  <RectangleLabels name="regions" toName="screenshot"><Label value="Error dialog"/><Label value="Button"/>
  <Label value="Text field"/></RectangleLabels></View>""",
}


def by_id(task: dict[str, Any]) -> dict[str, Any]:
    """A task's annotations and predictions in id (creation) order, on either back end.

    Label Studio does not order them: SQLite happens to return them by id, PostgreSQL in heap order, where an
    annotation moves to the end once it is updated (e.g. its ground-truth flag). Tests index them by position.
    """
    for key in ("annotations", "predictions"):
        if isinstance(task.get(key), list) and all(isinstance(x, dict) for x in task[key]):
            task[key] = sorted(task[key], key=lambda x: x.get("id") or 0)
    return task


def _session(token: str) -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"Token {token}"
    s.trust_env = False
    return s


@dataclass
class LS:
    server: LabelStudioServer
    users: dict[str, int] = field(default_factory=dict)  # email -> user id
    projects: dict[str, int] = field(default_factory=dict)  # dimension -> LS project id
    backend: str = "sqlite"  # "sqlite" | "postgres"

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def token(self) -> str:
        return self.server.token

    def api(self, token: str | None = None) -> requests.Session:
        return _session(token or self.server.token)

    def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        r = self.api(token).request(method, self.url + path, timeout=120, **kw)
        if r.status_code >= 400:
            raise AssertionError(f"{method} {path} -> {r.status_code}: {r.text[:500]}")
        return r.json() if r.content else None

    def create_project(self, title: str, config: str) -> int:
        return int(self.call("POST", "/api/projects/", json={"title": title, "label_config": config})["id"])

    def import_tasks(self, project: int, tasks: list[dict[str, Any]]) -> None:
        self.call("POST", f"/api/projects/{project}/import", json=tasks)

    def task(self, task_id: int) -> dict[str, Any]:
        return by_id(self.call("GET", f"/api/tasks/{task_id}/"))

    def tasks(self, project: int) -> list[dict[str, Any]]:
        out, page = [], 1
        while True:
            r = self.api().get(self.url + "/api/tasks", params={"project": project, "fields": "all", "page": page,
                                                                  "page_size": 500}, timeout=120)
            if r.status_code == 404:
                return out
            body = r.json()
            out.extend(by_id(t) for t in body["tasks"])
            if len(body["tasks"]) < 500:
                return out
            page += 1

    def decision_records(self, task_id: int) -> list[dict[str, Any]]:
        from app.sync.records import meta_records

        return meta_records(self.task(task_id).get("meta"))


def demo_tasks(dimension: str, n: int, seed: int = 3) -> list[dict[str, Any]]:
    """n tasks of the demo, each with 3 annotations (by ann1..3) and 1 prediction, for one dimension."""
    src = json.loads((DEMO / "tasks.json").read_text())
    rng = random.Random(seed)
    out = []
    for i in range(n):
        t = src[i % len(src)]
        data = {"text": t["data"]["text"] + ("" if i < len(src) else f" (#{i})")}

        def only(result: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [copy.deepcopy(r) for r in result if r.get("from_name") == dimension]

        anns = []
        for k, a in enumerate(t["annotations"][:3]):
            res = only(a["result"]) or _fallback(dimension, rng)
            anns.append({"result": res, "completed_by": {"email": f"ann{k + 1}@example.com"}, "ground_truth": False,
                         "lead_time": round(rng.uniform(5, 60), 1)})
        while len(anns) < 3:
            anns.append({"result": _fallback(dimension, rng), "completed_by": {"email": f"ann{len(anns) + 1}@example.com"},
                         "ground_truth": False, "lead_time": 10.0})
        preds = [{"result": only(t["predictions"][0]["result"]) or _fallback(dimension, rng),
                  "model_version": "triage-clf-v2", "score": 0.8}] if t.get("predictions") else []
        out.append({"data": data, "meta": {"source": "demo"}, "annotations": anns, "predictions": preds})
    return out


def _fallback(dimension: str, rng: random.Random) -> list[dict[str, Any]]:
    if dimension == "category":
        return [{"from_name": "category", "to_name": "ticket", "type": "choices",
                 "value": {"choices": [rng.choice(["Billing", "Technical", "Other"])]}}]
    if dimension == "urgency":
        return [{"from_name": "urgency", "to_name": "ticket", "type": "rating", "value": {"rating": rng.randint(1, 5)}}]
    if dimension == "entities":
        return [{"from_name": "entities", "to_name": "ticket", "type": "labels",
                 "value": {"start": 0, "end": 2, "text": "Hi", "labels": ["ORG"]}}]
    return []


def _members_map(ls: LS) -> None:
    users = ls.call("GET", "/api/users/")
    users = users["results"] if isinstance(users, dict) else users
    ls.users = {u["email"]: u["id"] for u in users}


def _resolve_completed_by(ls: LS, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for t in tasks:
        for a in t["annotations"]:
            cb = a["completed_by"]
            if isinstance(cb, dict):
                a["completed_by"] = ls.users[cb["email"]]
    return tasks


def _regions_project(ls: LS, pid: int) -> None:
    """Images uploaded to the server itself (``/data/upload/...``), then annotations + predictions by API."""
    files = sorted((DEMO / "media").glob("screen_0*.png"))[:4]
    handles = [(f"file{i}", (f.name, f.read_bytes(), "image/png")) for i, f in enumerate(files)]
    r = ls.api().post(f"{ls.url}/api/projects/{pid}/import", files=handles, timeout=120)
    assert r.status_code < 300, r.text[:300]
    rng = random.Random(5)
    for t in ls.tasks(pid):
        for k in range(3):
            res = [{"from_name": "regions", "to_name": "screenshot", "type": "rectanglelabels",
                    "original_width": 240, "original_height": 160, "image_rotation": 0,
                    "value": {"x": 10 + k, "y": 20.0, "width": 30.0, "height": 12.5, "rotation": 0,
                              "rectanglelabels": [rng.choice(["Button", "Error dialog"])]}}]
            ls.call("POST", f"/api/tasks/{t['id']}/annotations/",
                    json={"result": res, "completed_by": ls.users[f"ann{k + 1}@example.com"], "ground_truth": False})
        ls.call("POST", "/api/predictions/", json={"task": t["id"], "model_version": "boxes-v1", "score": 0.7,
                                                     "result": [{"from_name": "regions", "to_name": "screenshot",
                                                                 "type": "rectanglelabels", "value": {
                                                                     "x": 11, "y": 20, "width": 30, "height": 12,
                                                                     "rotation": 0, "rectanglelabels": ["Button"]}}]})


@pytest.fixture(scope="session", autouse=True)
def memory_keyring() -> Iterator[Any]:
    kr = install_memory_keyring()
    yield kr


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``LS_BACKENDS`` in a test module picks the back ends its tests run on (default: SQLite only)."""
    if "ls_backend" not in metafunc.fixturenames:
        return
    backends = tuple(getattr(metafunc.module, "LS_BACKENDS", ("sqlite",)))
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        raise pytest.UsageError(f"{metafunc.module.__name__}.LS_BACKENDS: {backends!r}; choose from {BACKENDS}")
    metafunc.parametrize("ls_backend", backends, indirect=True, scope="session")


@pytest.fixture(scope="session")
def ls_backend(request: pytest.FixtureRequest) -> str:
    """The Label Studio back end of this test: ``"sqlite"`` or ``"postgres"`` (see ``LS_BACKENDS``)."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="session")
def ls(ls_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LS]:
    base = tmp_path_factory.mktemp(f"label-studio-{ls_backend}")
    db: PgDatabase | None = None
    server: LabelStudioServer | None = None
    try:
        failure = None
        try:
            if ls_backend == "postgres":
                ensure_label_studio()
                db = PgDatabase(VENV / "bin" / "python")
                version = db.create()
                say(f"PostgreSQL {version}: database {db.name} ({db.settings.where})")
            server = LabelStudioServer(base / "data", db_env=db.label_studio_env() if db else None)
            server.start()
        except PostgresUnavailable as exc:  # one line: what is missing and how to get it
            failure = str(exc)
        except Exception as exc:  # noqa: BLE001 - fail (never skip) with the reason
            failure = f"Label Studio ({ls_backend}) could not be installed or started for the integration tests: {exc}"
        if failure is not None or server is None:
            pytest.fail(failure or "Label Studio did not start", pytrace=False)
        env = LS(server, backend=ls_backend)
        for email, token in MEMBERS.items():
            server.add_user(email, token)
        _members_map(env)
        say(f"members: {', '.join(sorted(env.users))}")
        for dim, xml in DIMENSIONS.items():
            pid = env.create_project(f"Demo {dim}", xml)
            env.projects[dim] = pid
            if dim == "regions":
                _regions_project(env, pid)
            else:
                env.import_tasks(pid, _resolve_completed_by(env, demo_tasks(dim, 24)))
        say(f"projects ({ls_backend}): {env.projects}")
        yield env
    finally:
        if server is not None:
            server.stop()
        if db is not None:
            try:
                db.drop()
            except Exception as exc:  # noqa: BLE001 - a leftover database is dropped by the next session
                say(f"could not drop database {db.name}: {exc}")


@pytest.fixture
def make_project(ls: LS) -> Callable[..., int]:
    """A fresh project (so a test may change it freely): ``make_project(n, dimension="category")``."""
    counter = iter(range(10_000))

    def make(n: int = 6, dimension: str = "category", title: str | None = None) -> int:
        pid = ls.create_project(title or f"T {dimension} {next(counter)} {random.randint(0, 10**6)}",
                                DIMENSIONS[dimension])
        ls.import_tasks(pid, _resolve_completed_by(ls, demo_tasks(dimension, n)))
        return pid

    return make


@pytest.fixture
def rd_store(tmp_path: Path) -> Iterator[Any]:
    from app.models.store import Store

    s = Store.open(tmp_path / "rd")
    yield s
    s.close()


@pytest.fixture
def sync_service(rd_store: Any, ls: LS) -> Any:
    """A SyncService logged in to the test server (token in the in-memory keyring)."""
    from app.services.sync import SyncService

    svc = SyncService(rd_store)
    svc.login(ls.url, ls.token)
    return svc
