"""The ground-truth browser's service over a large project: counts, first page and one task's history, beside
plain SQL baselines.

    python benchmarks/bench_groundtruth.py [--tasks 100000] [--keep DIR]

Builds the store of ``bench_taskfilter`` (the ``bench_import`` generator: 3 annotations per task, a server
ground-truth flag on 20 % of the tasks; a review history on 20 %), then folds the accepts into ``ground_truth``
rows as the decision service does (one row per accepted task, a second, later row on every third of them: a
re-decision), written straight into the table. Then times, each the median of several runs:

  * baseline: the tasks with a ground-truth row or flag (``UNION``) counted, and their first 200 in task order
    with the row's result, and one task's ``ground_truth`` rows -- no retraction, provenance or own-flag rules
  * ``GroundTruthService``: the index built cold (first call after a change), ``counts``, ``references(0, 200)``
    (index cached per ``gt_version``), ``history`` of a revised task.

``--keep DIR`` reuses (or leaves) the built store in DIR. Not timed asserts: the numbers are printed.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._util import table  # noqa: E402
from benchmarks.bench_taskfilter import built_store, timed  # noqa: E402


def fold(path: Path, pid: int) -> int:
    con = sqlite3.connect(path)
    if con.execute("SELECT count(*) FROM ground_truth").fetchone()[0]:
        con.close()
        return 0
    rows = []
    last: dict[int, tuple[str, int, str]] = {}
    for uuid, tid, aid, at in con.execute(
            "SELECT uuid, task_id, annotation_id, created_at FROM decisions WHERE project_id = ? AND verdict = "
            "'accept' AND role = 'reviewer' ORDER BY id", (pid,)):
        last[tid] = (uuid, aid, at)
    results = dict(con.execute("SELECT a.id, a.result FROM annotations a JOIN tasks t ON t.id = a.task_id "
                               "WHERE t.project_id = ?", (pid,)))
    for k, (tid, (uuid, aid, at)) in enumerate(sorted(last.items())):
        rows.append((tid, results[aid], "decision", aid, uuid, at))
        if k % 3 == 0:  # a re-decision: a second, later row (the first stays in history)
            rows.append((tid, results[aid], "decision", aid, uuid, at))
    con.executemany("INSERT INTO ground_truth (task_id, result, source, annotation_id, decision_uuid, created_at) "
                    "VALUES (?,?,?,?,?,?)", rows)
    con.commit()
    con.close()
    return len(rows)


def main() -> None:
    args, tmp, folder, pid = built_store()

    from app.models.store import Store
    from app.services import groundtruth

    store = Store.open(folder / "store")
    n_rows = fold(store.path, pid)
    if n_rows:
        print(f"wrote {n_rows:,} ground-truth rows")
    con = sqlite3.connect(store.path)
    union = ("SELECT g.task_id AS tid FROM ground_truth g JOIN tasks t ON t.id = g.task_id WHERE t.project_id = :p "
             "AND t.deleted = 0 UNION SELECT a.task_id FROM annotations a JOIN tasks t ON t.id = a.task_id "
             "WHERE t.project_id = :p AND t.deleted = 0 AND a.ground_truth = 1 AND a.deleted = 0")
    revised = con.execute("SELECT task_id FROM ground_truth GROUP BY task_id HAVING count(*) > 1 LIMIT 1").fetchone()[0]

    def base_count() -> None:
        con.execute(f"SELECT count(*) FROM ({union})", {"p": pid}).fetchall()  # noqa: S608

    def base_page() -> None:
        con.execute("SELECT t.id, t.server_id, (SELECT g.result FROM ground_truth g WHERE g.task_id = t.id "  # noqa: S608
                    "ORDER BY g.id DESC LIMIT 1) FROM tasks t WHERE t.id IN (" + union + ") "
                    "ORDER BY t.position, t.id LIMIT 200", {"p": pid}).fetchall()

    def base_history() -> None:
        con.execute("SELECT * FROM ground_truth WHERE task_id = ? ORDER BY id", (revised,)).fetchall()

    svc = groundtruth.GroundTruthService(store)

    def cold() -> None:
        groundtruth._INDEX.clear()
        svc.count(pid)

    rows = [("what", "ms", "result")]
    rows.append(("baseline: count (UNION of rows and flags)", f"{timed(base_count):.1f}",
                 str(con.execute(f"SELECT count(*) FROM ({union})", {"p": pid}).fetchone()[0])))  # noqa: S608
    rows.append(("baseline: first 200 in task order, latest row's result", f"{timed(base_page):.1f}", "200"))
    rows.append(("baseline: one task's ground_truth rows", f"{timed(base_history):.2f}", ""))
    rows.append(("GroundTruthService index, cold (after a change)", f"{timed(cold, runs=3):.1f}", ""))
    c = svc.counts(pid)
    rows.append(("GroundTruthService.counts (index cached)", f"{timed(lambda: svc.counts(pid)):.1f}",
                 f"{c.references:,} refs, {c.revised:,} revised"))
    page = svc.references(pid, 0, 200)
    rows.append(("GroundTruthService.references(0, 200)", f"{timed(lambda: svc.references(pid, 0, 200)):.1f}",
                 f"{len(page)} rows"))
    rows.append(("GroundTruthService.history(revised task)", f"{timed(lambda: svc.history(pid, revised)):.1f}",
                 f"{len(svc.history(pid, revised))} entries"))
    rows.append(("  the browser's paging: references(0, 200, check=False)",
                 f"{timed(lambda: svc.references(pid, 0, 200, check=False)):.1f}", "200 rows"))
    rows.append(("  the browser's paging: references(middle, 200, check=False)",
                 f"{timed(lambda: svc.references(pid, c.references // 2, 200, check=False)):.1f}", "200 rows"))
    rows.append(("  the browser's history(revised task, check=False)",
                 f"{timed(lambda: svc.history(pid, revised, check=False)):.1f}", ""))
    t0 = time.perf_counter()
    groundtruth.gt_version(store, pid)
    rows.append(("  gt_version (the cache check of check=True calls)", f"{(time.perf_counter() - t0) * 1000:.1f}", ""))
    print(f"\n{args.tasks:,} tasks\n" + table(rows))
    con.close()
    store.close()
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
