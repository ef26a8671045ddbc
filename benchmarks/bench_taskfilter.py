"""The Tasks tab's filtering service over a large project: count + first page, beside a plain baseline.

    python benchmarks/bench_taskfilter.py [--tasks 100000] [--keep DIR]

Builds a store with ``--tasks`` tasks (the generator of ``bench_import``: 3 annotations and 1 prediction per
task) and a review history written straight into the tables (fast; the service only reads them): ~20 % of
the tasks with decisions -- all annotations accepted, some annotations judged, open and settled escalations,
retractions and sync conflicts. Then times, each the median of several runs:

  * baseline: ``SELECT id, server_id, position, data FROM tasks WHERE project_id = ? ORDER BY position, id
    LIMIT 200`` and a plain ``count(*)`` (what the old Tasks tab did)
  * ``taskfilter.count`` and ``taskfilter.page(offset 0, 200)`` for the default view, every status filter,
    an annotator, a text search, each sort key in both directions, a disagreement filter (agreement index
    built once per data version, timed separately: it runs off the UI thread), and ``locate``.

``--keep DIR`` reuses (or leaves) the built store in DIR. Not timed asserts: the numbers are printed.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._util import table  # noqa: E402
from benchmarks.bench_import import CONFIG, generate  # noqa: E402


def build(folder: Path, n: int) -> int:
    from app.models.store import Store
    from app.services.projects import ProjectService

    store = Store.open(folder / "store")
    pid = ProjectService(store).find_project_by_title("bench")
    if pid is not None:
        store.close()
        return pid
    src = folder / "export.json"
    generate(src, n)
    t0 = time.perf_counter()
    pid = ProjectService(store).import_file(src, CONFIG, "bench").summary.project_id
    print(f"imported {n:,} tasks in {time.perf_counter() - t0:.1f} s")
    path = store.path
    store.close()
    src.unlink()
    con = sqlite3.connect(path)
    anns: dict[int, list[int]] = {}
    for aid, tid in con.execute("SELECT a.id, a.task_id FROM annotations a JOIN tasks t ON t.id = a.task_id "
                                "WHERE t.project_id = ? ORDER BY a.id", (pid,)):
        anns.setdefault(tid, []).append(aid)
    rows: list[tuple] = []
    conflicts: list[str] = []
    now = "2026-11-01T10:00:00Z"

    def add(tid: int, aid: int | None, verdict: str, role: str = "reviewer", retracts: str | None = None) -> str:
        u = str(uuid.uuid4())
        rows.append((u, pid, tid, aid, verdict, "r" if verdict in ("reject", "escalate") else None,
                     "rev@example.com", role, now, retracts, "local"))
        return u

    for k, (tid, aids) in enumerate(sorted(anns.items())):
        if k % 5:
            continue  # 20 % of the tasks have decisions
        kind = (k // 5) % 10
        if kind < 4:  # decided: every annotation judged
            for a in aids:
                add(tid, a, "accept")
        elif kind < 7:  # partly
            add(tid, aids[0], "reject")
        elif kind == 7:  # open escalation
            add(tid, aids[0], "escalate")
        elif kind == 8:  # escalation settled by an expert, one decision retracted
            add(tid, aids[0], "escalate")
            add(tid, aids[0], "accept", role="expert")
            u = add(tid, aids[1], "accept")
            add(tid, aids[1], "retract", retracts=u)
        else:  # a decision in conflict with the server
            conflicts.append(add(tid, aids[0], "accept"))
    con.executemany("INSERT INTO decisions (uuid, project_id, task_id, annotation_id, verdict, reason, reviewer, "
                    "role, created_at, retracts, origin) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    cset = set(conflicts)
    con.executemany("INSERT INTO decision_sync (decision_id, state, attempts, updated_at) VALUES (?,?,0,?)",
                    [(i, "conflict" if u in cset else "pending", now)
                     for i, u in con.execute("SELECT id, uuid FROM decisions WHERE project_id = ?", (pid,))])
    con.commit()
    con.close()
    print(f"wrote {len(rows):,} decisions ({len(conflicts):,} in conflict)")
    return pid


def timed(fn, runs: int = 5) -> float:
    fn()  # warm (page cache, statement cache)
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return statistics.median(out)


def built_store() -> tuple[argparse.Namespace, tempfile.TemporaryDirectory[str] | None, Path, int]:
    """``--tasks N`` (100k) and ``--keep DIR`` (reuse a store built there; default: a temporary folder), then the
    generated project built (or found) in that folder: (args, the temporary folder to clean up, folder, project)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--keep", type=Path, default=None)
    args = ap.parse_args()
    tmp = None
    if args.keep is None:
        tmp = tempfile.TemporaryDirectory()
        folder = Path(tmp.name)
    else:
        folder = args.keep
        folder.mkdir(parents=True, exist_ok=True)
    return args, tmp, folder, build(folder, args.tasks)


def main() -> None:
    args, tmp, folder, pid = built_store()

    from app.models.store import Store
    from app.services import taskfilter as tf

    store = Store.open(folder / "store")
    con = sqlite3.connect(store.path)

    def base_page() -> None:
        con.execute("SELECT id, server_id, position, data FROM tasks WHERE project_id = ? AND deleted = 0 "
                    "ORDER BY position, id LIMIT 200", (pid,)).fetchall()

    def base_count() -> None:
        con.execute("SELECT count(*) FROM tasks WHERE project_id = ? AND deleted = 0", (pid,)).fetchall()

    rows = [("what", "count ms", "first page ms", "rows")]
    b_page, b_count = timed(base_page), timed(base_count)
    rows.append(("baseline: plain SELECT … ORDER BY position LIMIT 200", f"{b_count:.1f}", f"{b_page:.1f}",
                 str(args.tasks)))
    t0 = time.perf_counter()
    index = tf.agreement_index(store, pid)
    index_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    tf.agreement_index(store, pid)
    index_hit = (time.perf_counter() - t0) * 1000
    annotator = tf.annotators(store, pid)[0]
    cases: list[tuple[str, tf.TaskFilter]] = [("default (queue order)", tf.TaskFilter())]
    for st in tf.STATUSES:
        cases.append((f"status = {st}", tf.TaskFilter(statuses=frozenset({st}))))
    cases += [
        ("status = partly|escalated", tf.TaskFilter(statuses=frozenset({"partly", "escalated"}))),
        (f"annotator = {annotator.name}", tf.TaskFilter(annotators=frozenset({annotator.user_id}))),
        ("search 'refund invoice'", tf.TaskFilter(search="refund invoice")),
        ("search 'zzz' (no hit)", tf.TaskFilter(search="zzz")),
        ("disagreements on category", tf.TaskFilter(control="category", agreement_below=1.0)),
        ("disagreements, any control + partly", tf.TaskFilter(agreement_below=1.0, statuses=frozenset({"partly"}))),
    ]
    for key in tf.SORT_KEYS:
        for desc in (False, True):
            cases.append((f"sort {key} {'desc' if desc else 'asc'}", tf.TaskFilter(sort=key, descending=desc)))
    for name, f in cases:
        n = tf.count(store, pid, f, index=index)
        c_ms = timed(lambda f=f: tf.count(store, pid, f, index=index))
        p_ms = timed(lambda f=f: tf.page(store, pid, f, 0, 200, index=index))
        rows.append((name, f"{c_ms:.1f}", f"{p_ms:.1f}", f"{n:,}"))
    last = tf.page(store, pid, tf.TaskFilter(), args.tasks - 1, 1)[0]
    key = last.server_id if last.server_id is not None else last.id
    loc_ms = timed(lambda: tf.locate(store, pid, tf.TaskFilter(), key))
    loc2_ms = timed(lambda: tf.locate(store, pid, tf.TaskFilter(sort="status", descending=True), key))
    deep_ms = timed(lambda: tf.page(store, pid, tf.TaskFilter(sort="text"), args.tasks - 200, 200))
    print(table(rows))
    print(f"\nlocate(last task), queue order: {loc_ms:.1f} ms; sorted by status desc: {loc2_ms:.1f} ms")
    print(f"last page (offset {args.tasks - 200:,}) sorted by text: {deep_ms:.1f} ms")
    print(f"agreement index (metrics engine, off the UI thread): built in {index_s:.1f} s, "
          f"cache hit {index_hit:.1f} ms; {len(index.disagreeing(None, 1.0)):,} tasks with a disagreement")
    con.close()
    store.close()
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
