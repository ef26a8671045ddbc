"""Sync against a real local Label Studio on SQLite or PostgreSQL, each number beside a raw ``requests``
baseline measured in the same run.

    python benchmarks/bench_sync.py [--backend sqlite|postgres] [--tasks 2000] [--decisions 80]
                                    [--concurrency 4] [--reviewers 1,2,4] [--no-same-tasks]

Starts Label Studio 1.23.2 (from ``.venv-ls``, installed on first use) on loopback, on its SQLite file or on a
fresh PostgreSQL database (``--backend postgres``: needs ``sudo bash scripts/pg_test_cluster.sh`` once; the
database is dropped at the end), adds one member per reviewer, then measures:

1. full pull of ``--tasks`` tasks (3 annotations + 1 prediction each): ``SyncService.pull`` (keyset pages of
   500, applied to the store) vs a plain ``requests`` loop paging ``GET /api/tasks?fields=all&page_size=500``
   (fetch + parse only);
2. incremental pull after 1 % of the tasks changed on the server: vs the same ``updated_at`` query paged with
   raw ``requests``, and vs the full pull;
3. push of ``--decisions`` accept decisions by 1, 2 and 4 concurrent reviewers. Each reviewer is a separate
   Store + SyncService logged in with its own member token (threads of this process, started together),
   pushing with ``--concurrency`` workers into the same server project:
   * distinct tasks: every reviewer decides on its own slice of the tasks (throughput);
   * same tasks (4 reviewers): every reviewer accepts a different annotation of the SAME tasks, so their
     read-merge-writes of ``task.meta`` interleave for real (correctness under contention: records kept
     after the push, and after every reviewer's next ``sync``, which re-writes records erased by a write
     that landed after the push verified them).
   Each row is beside the same HTTP requests per decision (GET task, PATCH annotation ``ground_truth``, PATCH
   task meta, GET task) sent by raw ``requests`` threads at the same total concurrency (reviewers x workers,
   each thread with a reviewer's token), and beside those requests sent one at a time (serial baseline).

Targets (issues 6 and 17): pull overhead <= 10 %; incremental <= 5 % of full; push >= 1.5x the serial
throughput (judged on PostgreSQL, where the server is not serialised by its own database).

The server is ``label-studio start`` (Django's threaded development server, one process), as in the
integration tests. The defaults keep a run to a few minutes on 2 idle cores (about 8-10 minutes on a loaded
machine); every phase prints its time as it goes.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._util import table  # noqa: E402
from tests.integration.lsserver import VENV, LabelStudioServer, ensure_label_studio, say  # noqa: E402
from tests.integration.pgcluster import PgDatabase, PostgresUnavailable  # noqa: E402

CONFIG = """<View><Text name="text" value="$text"/>
<Choices name="category" toName="text"><Choice value="Billing"/><Choice value="Technical"/>
<Choice value="Account"/><Choice value="Shipping"/><Choice value="Other"/></Choices>
<Labels name="entities" toName="text"><Label value="ORG"/><Label value="PRODUCT"/></Labels>
<Rating name="urgency" toName="text" maxRating="5"/></View>"""
WORDS = ["charged", "twice", "subscription", "refund", "account", "login", "error", "shipping", "parcel", "delayed", "invoice"]
CATS = ["Billing", "Technical", "Account", "Shipping", "Other"]


def make_tasks(n: int, seed: int = 7, annotations: int = 3) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        text = "Acme " + " ".join(rng.choice(WORDS) for _ in range(25))
        anns = []
        for _k in range(annotations):
            anns.append({"completed_by": 1, "ground_truth": False, "lead_time": round(rng.uniform(5, 90), 1),
                         "result": [
                             {"from_name": "category", "to_name": "text", "type": "choices",
                              "value": {"choices": [rng.choice(CATS)]}},
                             {"from_name": "entities", "to_name": "text", "type": "labels",
                              "value": {"start": 0, "end": 4, "text": "Acme", "labels": ["ORG"]}},
                             {"from_name": "urgency", "to_name": "text", "type": "rating",
                              "value": {"rating": rng.randint(1, 5)}}]})
        out.append({"data": {"text": text}, "annotations": anns,
                    "predictions": [{"model_version": "m1", "score": rng.random(),
                                     "result": [anns[0]["result"][0]]}]})
    return out


def session(token: str) -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"Token {token}"
    s.trust_env = False
    return s


class Server:
    """The server under test plus the raw-requests helpers the baselines use."""

    def __init__(self, ls: LabelStudioServer) -> None:
        self.ls = ls
        self.url = ls.url
        self.api = session(ls.token)

    def project(self, title: str, tasks: list[dict]) -> int:
        pid = int(self.api.post(self.url + "/api/projects/", json={"title": title, "label_config": CONFIG},
                                timeout=120).json()["id"])
        for i in range(0, len(tasks), 1000):
            self.api.post(f"{self.url}/api/projects/{pid}/import", json=tasks[i:i + 1000],
                          timeout=900).raise_for_status()
        return pid

    def pages(self, pid: int, page_size: int = 500, query: str | None = None,
              api: requests.Session | None = None) -> list[dict]:
        api = api or self.api
        out, page = [], 1
        while True:
            params: dict[str, Any] = {"project": pid, "fields": "all", "page": page, "page_size": page_size}
            if query is not None:
                params["query"] = query
            r = api.get(self.url + "/api/tasks", params=params, timeout=900)
            if r.status_code == 404:
                return out
            r.raise_for_status()
            got = r.json()["tasks"]
            out += got
            if len(got) < page_size:
                return out
            page += 1

    def uuid_counts(self, pid: int) -> dict[str, int]:
        from app.sync.records import meta_records

        counts: dict[str, int] = {}
        for t in self.pages(pid, 1000):
            for r in meta_records(t.get("meta")):
                counts[r["uuid"]] = counts.get(r["uuid"], 0) + 1
        return counts


STEPS = ("GET task", "PATCH annotation", "PATCH meta", "GET verify")


def raw_push(srv: Server, jobs: list[tuple[str, int, int, str]], threads: int,
             latency: dict[str, list[float]] | None = None) -> float:
    """``jobs`` = (token, task id, annotation index, record uuid): the requests an accept costs, raw.
    ``latency`` collects seconds per request step (serial runs)."""
    local = threading.local()
    lat = latency if latency is not None else {}

    def timed(step: str, fn: Callable[[], requests.Response]) -> requests.Response:
        t = time.perf_counter()
        r = fn()
        lat.setdefault(step, []).append(time.perf_counter() - t)
        r.raise_for_status()
        return r

    def one(job: tuple[str, int, int, str]) -> None:
        token, tid, k, uuid = job
        sessions = getattr(local, "s", None)
        if sessions is None:
            sessions = local.s = {}
        api = sessions.get(token) or sessions.setdefault(token, session(token))
        body = timed(STEPS[0], lambda: api.get(f"{srv.url}/api/tasks/{tid}/", timeout=300)).json()
        aid = body["annotations"][k]["id"]
        timed(STEPS[1], lambda: api.patch(f"{srv.url}/api/annotations/{aid}/", json={"ground_truth": True},
                                          timeout=300))
        meta = dict(body.get("meta") or {})
        rd = dict(meta.get("reviewdesk") or {})
        rd["decisions"] = [*(rd.get("decisions") or []), {"uuid": uuid, "verdict": "accept", "annotation": aid}]
        meta["reviewdesk"] = rd
        timed(STEPS[2], lambda: api.patch(f"{srv.url}/api/tasks/{tid}/", json={"meta": meta}, timeout=300))
        timed(STEPS[3], lambda: api.get(f"{srv.url}/api/tasks/{tid}/", timeout=300))

    t0 = time.perf_counter()
    if threads <= 1:
        for j in jobs:
            one(j)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(one, jobs))
    return time.perf_counter() - t0


@dataclass
class Reviewer:
    email: str
    token: str
    store: Any
    svc: Any
    local_pid: int = 0


@dataclass
class PushRow:
    label: str
    reviewers: int
    tasks: int
    decisions: int
    ours: float
    raw: float
    threads: int
    on_server: int
    raw_kept: int
    synced: int
    conflicts: int
    failed: int
    after_sync: int | None = None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--tasks", type=int, default=2_000, help="tasks in the pull project")
    ap.add_argument("--decisions", type=int, default=80, help="decisions per push row (all reviewers together)")
    ap.add_argument("--concurrency", type=int, default=4, help="push workers per reviewer")
    ap.add_argument("--reviewers", default="1,2,4", help="concurrent reviewer counts, e.g. 1,2,4")
    ap.add_argument("--no-same-tasks", action="store_true", help="skip the same-tasks contention row")
    args = ap.parse_args()
    counts = sorted({int(x) for x in args.reviewers.split(",") if x.strip()})
    most = max(counts + ([4] if not args.no_same_tasks else []))
    d = args.decisions - args.decisions % math.lcm(*counts, 4)  # divisible by every reviewer count used
    if d <= 0:
        ap.error("--decisions too small for the reviewer counts")

    from tests.memkeyring import install

    install()
    from sqlalchemy import select

    from app.models.schema import Annotation, Task
    from app.models.store import Store
    from app.services.decisions import DecisionRequest, DecisionService
    from app.services.sync import SyncService
    from app.sync.client import LSClient
    from app.sync.pull import updated_filter

    def factory_for(token: str) -> Callable[[str, str | None, str | None], LSClient]:
        # every reviewer sends its own member token (the shared test keyring holds one token per URL)
        def factory(url: str, _tok: str | None, ca: str | None) -> LSClient:
            c = LSClient(url, token, ca_bundle=ca)
            c.session.trust_env = False
            return c

        return factory

    tmp = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    db: PgDatabase | None = None
    ls: LabelStudioServer | None = None
    started = time.perf_counter()
    try:
        version = "SQLite (Label Studio's default)"
        if args.backend == "postgres":
            ensure_label_studio()
            db = PgDatabase(VENV / "bin" / "python")
            try:
                version = f"PostgreSQL {db.create()} (database {db.name})"
            except PostgresUnavailable as exc:
                print(exc, file=sys.stderr)
                return 2
        ls = LabelStudioServer(tmp / "ls", db_env=db.label_studio_env() if db else None)
        ls.start()
        srv = Server(ls)
        members = {f"bench-rev{i}@example.com": f"bench-rev{i}-token-{i:04d}" for i in range(1, most + 1)}
        t0 = time.perf_counter()
        for email, token in members.items():
            ls.add_user(email, token)
        say(f"{len(members)} reviewer members added in {time.perf_counter() - t0:.0f} s")

        # 1. full pull vs plain requests paging -------------------------------------------------------------
        t0 = time.perf_counter()
        pid = srv.project("Bench pull", make_tasks(args.tasks))
        say(f"imported {args.tasks} tasks ({3 * args.tasks} annotations, {args.tasks} predictions) "
            f"in {time.perf_counter() - t0:.0f} s")
        t0 = time.perf_counter()
        all_tasks = srv.pages(pid)
        base_pull = time.perf_counter() - t0
        assert len(all_tasks) == args.tasks, len(all_tasks)

        store = Store.open(tmp / "rd-admin")
        svc = SyncService(store, client_factory=factory_for(ls.token))
        svc.login(ls.url, ls.token)
        t0 = time.perf_counter()
        rep = svc.pull(ls.url, pid, media=False).report
        full_pull = time.perf_counter() - t0
        assert rep.tasks_new == args.tasks, rep
        say(f"full pull {full_pull:.1f} s, raw {base_pull:.1f} s")

        # 2. incremental pull after 1 % changed ---------------------------------------------------------------
        time.sleep(2.5)  # past the cursor overlap of the import burst
        before = max(t["updated_at"] for t in all_tasks)
        changed = random.Random(1).sample(all_tasks, max(1, args.tasks // 100))
        for t in changed:
            a = t["annotations"][1]
            res = a["result"]
            res[0]["value"]["choices"] = ["Other"]
            srv.api.patch(f"{ls.url}/api/annotations/{a['id']}/", json={"result": res}).raise_for_status()
        t0 = time.perf_counter()
        inc = svc.pull(ls.url, pid, media=False).report
        inc_pull = time.perf_counter() - t0
        assert inc.tasks_updated == len(changed), inc
        t0 = time.perf_counter()
        got = srv.pages(pid, query=json.dumps(updated_filter(before), separators=(",", ":")))
        base_inc = time.perf_counter() - t0
        assert len(got) >= len(changed), len(got)
        store.close()
        say(f"incremental pull {inc_pull:.2f} s, raw {base_inc:.2f} s")

        # 3. push: serial baseline, then 1/2/4 reviewers (distinct tasks) and 4 reviewers on the same tasks -------
        emails = list(members)
        rows: list[PushRow] = []
        raw_pid = srv.project("Bench push raw", make_tasks(d * (1 + len(counts)) + d, seed=11, annotations=4))
        raw_tasks = [t["id"] for t in srv.pages(raw_pid, 1000)]
        raw_slices = iter([raw_tasks[i:i + d] for i in range(0, len(raw_tasks), d)])
        serial_tasks = next(raw_slices)
        serial_lat: dict[str, list[float]] = {}
        serial = raw_push(srv, [(members[emails[0]], t, 0, f"raw-serial-{t}") for t in serial_tasks], 1, serial_lat)
        per_step = ", ".join(f"{k} {1000 * sum(v) / len(v):.0f} ms" for k, v in serial_lat.items())
        say(f"serial raw push of {d}: {serial:.1f} s ({per_step})")

        def push_row(n: int, same: bool) -> PushRow:
            label = f"{n} reviewer{'s' if n > 1 else ''}, {'same' if same else 'distinct'} tasks"
            n_tasks = d // n if same else d
            pid = srv.project(f"Bench push {label}", make_tasks(n_tasks, seed=20 + n, annotations=4))
            revs = []
            for i in range(n):
                email = emails[i]
                st = Store.open(tmp / f"rd-{n}-{'same' if same else 'distinct'}-{i}")
                rsvc = SyncService(st, client_factory=factory_for(members[email]))
                rsvc.login(ls.url, members[email])
                r = Reviewer(email, members[email], st, rsvc, rsvc.pull(ls.url, pid, media=False).report.project_id)
                revs.append(r)
            server_tasks = srv.pages(pid, 1000)
            for i, r in enumerate(revs):
                with r.store.session() as s:
                    local = dict(s.execute(select(Task.server_id, Task.id)).all())
                    ann_local = dict(s.execute(select(Annotation.server_id, Annotation.id)).all())
                mine = server_tasks if same else server_tasks[i::n]
                k = i if same else 0  # same tasks: each reviewer its own annotation (no conflict, shared meta)
                reqs = [DecisionRequest(task_id=local[t["id"]], verdict="accept",
                                        annotation_id=ann_local[t["annotations"][k]["id"]]) for t in mine]
                DecisionService(r.store).record(r.local_pid, reqs, reviewer=r.email)
            outs: list[Any] = [None] * n
            errors: list[BaseException] = []
            gate = threading.Barrier(n + 1)

            def run(i: int) -> None:
                gate.wait()
                try:
                    outs[i] = revs[i].svc.push(concurrency=args.concurrency)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
                    errors.append(exc)

            workers = [threading.Thread(target=run, args=(i,)) for i in range(n)]
            for w in workers:
                w.start()
            gate.wait()
            t0 = time.perf_counter()
            for w in workers:
                w.join()
            ours = time.perf_counter() - t0
            if errors:
                raise errors[0]
            on_server = srv.uuid_counts(pid)
            after_sync = None
            if same:
                # a record can be erased by another reviewer's write that lands after this reviewer verified;
                # the next sync (push + verifying pull) finds and re-writes it: everyone syncs once more
                syncs = [threading.Thread(target=r.svc.sync) for r in revs]
                for w in syncs:
                    w.start()
                for w in syncs:
                    w.join()
                after_sync = sum(1 for c in srv.uuid_counts(pid).values() if c == 1)
            for r in revs:
                r.store.close()
            # raw, same total concurrency, same task layout
            threads = n * args.concurrency
            rtasks = next(raw_slices)[:n_tasks]
            jobs = [(members[emails[i]], t, i if same else 0, f"raw-{label}-{i}-{t}")
                    for i in range(n) for t in (rtasks if same else rtasks[i::n])]
            raw = raw_push(srv, jobs, threads)
            raw_counts = srv.uuid_counts(raw_pid)
            raw_kept = sum(1 for _tok, t, _k, u in jobs if raw_counts.get(u))
            row = PushRow(label, n, n_tasks, d, ours, raw, threads, sum(1 for c in on_server.values() if c == 1),
                          raw_kept, sum(o.synced for o in outs), sum(o.conflicts for o in outs),
                          sum(o.failed for o in outs), after_sync)
            say(f"push {label}: {ours:.1f} s (raw {raw:.1f} s); synced {row.synced}, conflicts {row.conflicts}, "
                f"failed {row.failed}; records on server {row.on_server}/{d}"
                + (f", after the next sync {after_sync}/{d}" if after_sync is not None else ""))
            return row

        for n in counts:
            rows.append(push_row(n, same=False))
        if not args.no_same_tasks:
            rows.append(push_row(4, same=True))
    finally:
        if ls is not None:
            ls.stop()
        if db is not None:
            db.drop()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nLabel Studio 1.23.2 on {version}; {time.perf_counter() - started:.0f} s in all\n")
    print(table([
        ("pull", "ReviewDesk", "raw requests", "ratio", "target"),
        (f"full, {args.tasks} tasks (3 ann + 1 pred)", f"{full_pull:.1f} s ({args.tasks / full_pull:.0f}/s)",
         f"{base_pull:.1f} s (GET pages of 500, no store)", f"{full_pull / base_pull:.2f}x", "<= 1.10x"),
        (f"incremental, {len(changed)} changed (1%)", f"{inc_pull:.2f} s",
         f"{base_inc:.2f} s (same updated_at query)", f"{inc_pull / base_inc:.2f}x", "-"),
        ("incremental vs full pull", f"{inc_pull:.2f} s", f"{full_pull:.1f} s (ReviewDesk full)",
         f"{100 * inc_pull / full_pull:.1f} %", "<= 5 %"),
    ]))
    print()
    serial_rate = d / serial
    push_table = [("push accept decisions", "ReviewDesk", "raw, same concurrency", "RD / raw",
                   f"vs serial raw ({serial_rate:.1f}/s; target >= 1.5x)", "records kept (RD / raw)")]
    for r in rows:
        push_table.append((
            f"{r.label}: {r.decisions} on {r.tasks} tasks",
            f"{r.ours:.1f} s ({r.decisions / r.ours:.1f}/s, {r.reviewers}x{args.concurrency} workers)",
            f"{r.raw:.1f} s ({r.decisions / r.raw:.1f}/s, {r.threads} threads)",
            f"{r.raw / r.ours:.2f}x speed",
            f"{serial / r.ours:.2f}x",
            f"{r.on_server}/{r.decisions}"
            + (f" ({r.after_sync}/{r.decisions} after next sync)" if r.after_sync is not None else "")
            + f" / {r.raw_kept}/{r.decisions}"))
    push_table.append((f"serial raw baseline: {d} on {d} tasks", "-", f"{serial:.1f} s ({serial_rate:.1f}/s, "
                       "one request at a time)", "-", "1.00x", "-"))
    print(table(push_table))
    print(f"\nserial raw, mean per request: {per_step}")
    print("records kept = decision records found exactly once in task meta after the push (raw requests have no "
          "read-back/retry, so contention on the same tasks can lose records there); same tasks: also after "
          "every reviewer's next sync (push + verifying pull), which re-writes records another reviewer's later "
          "write erased.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
