"""Sync against a real local Label Studio, each number beside a baseline measured in the same run.

    python benchmarks/bench_sync.py [--tasks 10000] [--decisions 1000]

Starts Label Studio 1.23.2 (from ``.venv-ls``, installed on first use) on loopback, imports ``--tasks``
tasks with 3 annotations + 1 prediction each, then measures:

1. full pull: ``SyncService.pull`` (keyset pages of 500, applied to the store, next page prefetched)
   vs a plain ``requests`` loop paging ``GET /api/tasks?fields=all&page_size=500`` (fetch + parse only);
2. incremental pull after 1% of the tasks changed on the server vs the full pull;
3. push of ``--decisions`` accept decisions (bounded concurrency, one meta read-merge-write-verify per task)
   vs the same HTTP requests (GET task, PATCH annotation, PATCH task meta, GET task) sent one at a time.

Targets (issue 6): pull overhead <= 10 %; incremental <= 5 % of full; push >= 1.5x the sequential baseline.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._util import table  # noqa: E402
from tests.integration.lsserver import LabelStudioServer, say  # noqa: E402

CONFIG = """<View><Text name="text" value="$text"/>
<Choices name="category" toName="text"><Choice value="Billing"/><Choice value="Technical"/>
<Choice value="Account"/><Choice value="Shipping"/><Choice value="Other"/></Choices>
<Labels name="entities" toName="text"><Label value="ORG"/><Label value="PRODUCT"/></Labels>
<Rating name="urgency" toName="text" maxRating="5"/></View>"""
WORDS = ["charged", "twice", "subscription", "refund", "account", "login", "error", "shipping", "parcel", "delayed", "invoice"]
CATS = ["Billing", "Technical", "Account", "Shipping", "Other"]


def make_tasks(n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        text = "Acme " + " ".join(rng.choice(WORDS) for _ in range(25))
        anns = []
        for k in range(3):
            anns.append({"completed_by": 1, "ground_truth": False, "lead_time": round(rng.uniform(5, 90), 1),
                         "result": [
                             {"from_name": "category", "to_name": "text", "type": "choices",
                              "value": {"choices": [rng.choice(CATS)]}},
                             {"from_name": "entities", "to_name": "text", "type": "labels",
                              "value": {"start": 0, "end": 4, "text": "Acme", "labels": ["ORG"]}},
                             {"from_name": "urgency", "to_name": "text", "type": "rating",
                              "value": {"rating": rng.randint(1, 5)}}]})
            del k
        out.append({"data": {"text": text}, "annotations": anns,
                    "predictions": [{"model_version": "m1", "score": rng.random(),
                                     "result": [anns[0]["result"][0]]}]})
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--decisions", type=int, default=1_000)
    ap.add_argument("--concurrency", type=int, default=4)
    args = ap.parse_args()

    from tests.memkeyring import install

    install()
    from app.models.store import Store
    from app.services.decisions import DecisionRequest, DecisionService
    from app.services.sync import SyncService
    from app.sync.client import LSClient

    tmp = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    server = LabelStudioServer(tmp / "ls")
    server.start()
    api = requests.Session()
    api.headers["Authorization"] = f"Token {server.token}"
    api.trust_env = False
    try:
        pid = api.post(server.url + "/api/projects/", json={"title": "Bench", "label_config": CONFIG}).json()["id"]
        t0 = time.perf_counter()
        tasks = make_tasks(args.tasks)
        for i in range(0, len(tasks), 1000):
            r = api.post(f"{server.url}/api/projects/{pid}/import", json=tasks[i:i + 1000], timeout=600)
            r.raise_for_status()
        say(f"imported {args.tasks} tasks ({3 * args.tasks} annotations, {args.tasks} predictions) "
            f"in {time.perf_counter() - t0:.0f} s")

        def factory(url: str, tok: str | None, ca: str | None) -> LSClient:
            c = LSClient(url, tok, ca_bundle=ca)
            c.session.trust_env = False
            return c

        # 1. full pull vs plain requests paging ----------------------------------------------------------
        t0 = time.perf_counter()
        page, n = 1, 0
        while True:
            r = api.get(server.url + "/api/tasks", params={"project": pid, "fields": "all", "page": page,
                                                            "page_size": 500}, timeout=600)
            if r.status_code == 404:
                break
            got = r.json()["tasks"]
            n += len(got)
            if len(got) < 500:
                break
            page += 1
        base_pull = time.perf_counter() - t0
        assert n == args.tasks, n

        store = Store.open(tmp / "rd")
        svc = SyncService(store, client_factory=factory)
        svc.login(server.url, server.token)
        t0 = time.perf_counter()
        rep = svc.pull(server.url, pid, media=False).report
        full_pull = time.perf_counter() - t0
        assert rep.tasks_new == args.tasks, rep

        # 2. incremental pull after 1 % changed -----------------------------------------------------------
        time.sleep(2.5)  # past the cursor overlap of the import burst
        all_tasks = []
        page = 1
        while True:
            r = api.get(server.url + "/api/tasks", params={"project": pid, "fields": "all", "page": page,
                                                            "page_size": 1000}, timeout=600)
            if r.status_code == 404:
                break
            all_tasks += r.json()["tasks"]
            if len(all_tasks) >= args.tasks:
                break
            page += 1
        changed = random.Random(1).sample(all_tasks, max(1, args.tasks // 100))
        for t in changed:
            a = t["annotations"][1]
            res = a["result"]
            res[0]["value"]["choices"] = ["Other"]
            api.patch(f"{server.url}/api/annotations/{a['id']}/", json={"result": res}).raise_for_status()
        t0 = time.perf_counter()
        inc = svc.pull(server.url, pid, media=False).report
        inc_pull = time.perf_counter() - t0
        say(f"incremental: {inc}")
        assert inc.tasks_updated == len(changed), inc

        # 3. push of N accept decisions vs the same requests one at a time -------------------------------------
        k = min(args.decisions, args.tasks // 2)
        ours_tasks = all_tasks[:k]
        base_tasks = all_tasks[k:2 * k]
        from sqlalchemy import select

        from app.models.schema import Annotation, Task

        with store.session() as s:
            local = dict(s.execute(select(Task.server_id, Task.id)).all())
            ann_local = dict(s.execute(select(Annotation.server_id, Annotation.id)).all())
        local_pid = rep.project_id
        reqs = [DecisionRequest(task_id=local[t["id"]], verdict="accept", annotation_id=ann_local[t["annotations"][0]["id"]])
                for t in ours_tasks]
        DecisionService(store).record(local_pid, reqs, reviewer="admin@example.com")
        t0 = time.perf_counter()
        out = svc.push(concurrency=args.concurrency)
        ours_push = time.perf_counter() - t0
        assert out.synced == k, out

        t0 = time.perf_counter()
        for t in base_tasks:
            body = api.get(f"{server.url}/api/tasks/{t['id']}/").json()
            aid = body["annotations"][0]["id"]
            api.patch(f"{server.url}/api/annotations/{aid}/", json={"ground_truth": True}).raise_for_status()
            meta = dict(body.get("meta") or {})
            meta["reviewdesk"] = {"decisions": [{"uuid": f"base-{t['id']}", "verdict": "accept", "annotation": aid}]}
            api.patch(f"{server.url}/api/tasks/{t['id']}/", json={"meta": meta}).raise_for_status()
            api.get(f"{server.url}/api/tasks/{t['id']}/").raise_for_status()
        base_push = time.perf_counter() - t0
        store.close()
    finally:
        server.stop()

    rows = [("measure", "ReviewDesk", "baseline", "ratio", "target"),
            (f"full pull, {args.tasks} tasks (3 ann + 1 pred)", f"{full_pull:.1f} s ({args.tasks / full_pull:.0f}/s)",
             f"{base_pull:.1f} s (requests paging, no store)", f"{full_pull / base_pull:.2f}x", "<= 1.10x"),
            (f"incremental pull, {len(changed)} changed (1%)", f"{inc_pull:.2f} s", f"{full_pull:.1f} s (full pull)",
             f"{100 * inc_pull / full_pull:.1f} %", "<= 5 %"),
            (f"push {k} accept decisions", f"{ours_push:.1f} s ({k / ours_push:.1f}/s, {args.concurrency} workers)",
             f"{base_push:.1f} s ({k / base_push:.1f}/s, one at a time)", f"{base_push / ours_push:.2f}x faster",
             ">= 1.5x")]
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
