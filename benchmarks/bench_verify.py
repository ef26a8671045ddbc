"""The cost of team-sync verification on a large project, beside a full pull measured in the same run.

    python benchmarks/bench_verify.py [--tasks 10000] [--decisions 100]

Starts Label Studio 1.23.2 (SQLite) on loopback, imports ``--tasks`` tasks (3 annotations each), and measures:

1. a full pull into a fresh store (the baseline), and inside it the time spent verifying this store's records
   and materialising other reviewers' (``app.sync.pull.team_records``);
2. after ``--decisions`` decisions were pushed: the verifying sync (push of nothing + the incremental pull that
   re-reads the written tasks and checks every synced record is still there) -- the price of the guarantee;
3. a sync with nothing new anywhere (what every later sync costs);
4. the push's own jittered re-read of the tasks it wrote (``app.sync.push._recheck``).

Target (issue 11): verification under 5 % of a full pull.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._util import table  # noqa: E402
from benchmarks.bench_sync import CONFIG, make_tasks, session  # noqa: E402
from tests.integration.lsserver import LabelStudioServer, say  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--decisions", type=int, default=100)
    args = ap.parse_args()

    from tests.memkeyring import install

    install()
    import app.sync.pull as pull_mod
    import app.sync.push as push_mod
    from app.models.store import Store
    from app.services.decisions import DecisionRequest, DecisionService
    from app.services.projects import ProjectService
    from app.services.sync import SyncService

    spent = {"verify": 0.0, "recheck": 0.0}
    real_team, real_recheck = pull_mod.team_records, push_mod._recheck

    def timed_team(*a, **kw):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return real_team(*a, **kw)
        finally:
            spent["verify"] += time.perf_counter() - t0

    def timed_recheck(*a, **kw):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return real_recheck(*a, **kw)
        finally:
            spent["recheck"] += time.perf_counter() - t0

    pull_mod.team_records = timed_team  # type: ignore[assignment]
    push_mod._recheck = timed_recheck  # type: ignore[assignment]

    tmp = Path(tempfile.mkdtemp(prefix="rd-bench-verify-"))
    server = LabelStudioServer(tmp / "ls")
    try:
        server.start()
        api = session(server.token)
        pid = api.post(f"{server.url}/api/projects/", json={"title": "verify", "label_config": CONFIG},
                       timeout=60).json()["id"]
        say(f"importing {args.tasks} tasks ...")
        tasks = make_tasks(args.tasks)
        for i in range(0, len(tasks), 2000):
            r = api.post(f"{server.url}/api/projects/{pid}/import", json=tasks[i:i + 2000], timeout=600)
            r.raise_for_status()
        # a pull re-reads what changed in its last 2 s overlap: let the import settle, as on a real server,
        # so the verifying sync below measures the 100 written tasks and not the tail of the import
        time.sleep(3.0)
        store = Store.open(tmp / "rd")
        svc = SyncService(store)
        svc.login(server.url, server.token)

        spent["verify"] = 0.0
        t0 = time.perf_counter()
        rep = svc.pull(server.url, pid, media=False).report
        full = time.perf_counter() - t0
        verify_in_full = spent["verify"]
        say(f"full pull: {rep.tasks_new} tasks in {full:.1f} s")

        store_project = None
        ps = ProjectService(store)
        for p in ps.list_projects():
            if p.server_id == pid:
                store_project = p.id
        assert store_project is not None
        rows = ps.task_page(store_project, offset=0, limit=args.decisions)
        ds = DecisionService(store)
        for row in rows:
            detail = ps.task_detail(row.id)
            ds.record(store_project, [DecisionRequest(task_id=row.id, verdict="accept",
                                                      annotation_id=detail.annotations[0].id)],
                      reviewer="admin@example.com")
        spent["recheck"] = 0.0
        t0 = time.perf_counter()
        pushed = svc.push(server.url)
        push_time = time.perf_counter() - t0
        recheck = spent["recheck"]
        say(f"push of {pushed.synced} decisions: {push_time:.1f} s")

        spent["verify"] = 0.0
        t0 = time.perf_counter()
        out = svc.sync(server.url)
        verifying_sync = time.perf_counter() - t0
        verify_in_sync = spent["verify"]
        assert out.lost == 0 and not out.errors, out.errors
        t0 = time.perf_counter()
        svc.sync(server.url)
        idle_sync = time.perf_counter() - t0
        store.close()

        def pct(x: float) -> str:
            return f"{100 * x / full:.2f} %"

        print(table([("what", "seconds", "share of a full pull"), *[tuple(r) for r in [
            [f"full pull, {args.tasks} tasks (baseline)", f"{full:.2f}", "100 %"],
            ["  of which: verification + others' records (team_records)", f"{verify_in_full:.3f}",
             pct(verify_in_full)],
            [f"verifying sync after pushing {args.decisions} decisions", f"{verifying_sync:.2f}",
             pct(verifying_sync)],
            ["  of which: checking records (team_records)", f"{verify_in_sync:.3f}", pct(verify_in_sync)],
            ["sync with nothing new (every later sync)", f"{idle_sync:.2f}", pct(idle_sync)],
            [f"push's jittered re-read of {args.decisions} written tasks", f"{recheck:.2f}", pct(recheck)],
        ]]]))
        return 0
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
