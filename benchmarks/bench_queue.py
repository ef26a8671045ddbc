"""Review queues over a large project: ``build_queue`` per ordering and rule, beside a plain SQL ORDER BY.

    python benchmarks/bench_queue.py [--tasks 100000] [--keep DIR]

The store is ``bench_taskfilter``'s (the ``bench_import`` generator: 3 annotations and 1 prediction per task,
~20 % of the tasks with decisions, open and settled escalations). Times, each the median of several runs, in
one process:

  * baseline: ``SELECT t.id FROM tasks t LEFT JOIN predictions p … ORDER BY p.score, t.id`` (a queue by model
    confidence in plain SQL: no rules, no reasons, no agreement) and ``… ORDER BY t.created_at, t.id``;
  * ``build_queue(store, project, spec)`` for every ordering, as the review session calls it: the per-task
    inputs from their cache (a version check: a few aggregate queries), the review state (decisions,
    escalations, ground truth) read fresh -- what happens after a decision or a sync;
  * the same with inputs and review state passed in (the numpy part alone), a combination of rules, and a
    build after a write (the inputs' version is checked again with aggregate queries);
  * the cold per-task inputs (metrics engine: agreement, Dawid-Skene, model disagreement), once.

``--keep DIR`` reuses (or leaves) the built store in DIR. No timed asserts: the numbers are printed.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._util import table  # noqa: E402
from benchmarks.bench_taskfilter import built_store, timed  # noqa: E402


def after_decision(store: object, pid: int, runs: int = 5) -> float:
    """Median ms of a queue build right after a real decision (DecisionService, durable, audited)."""
    from sqlalchemy import text

    from app.services import queues as q
    from app.services.decisions import DecisionRequest, DecisionService

    with store.session() as s:  # type: ignore[attr-defined]
        rows = s.connection().execute(text(
            "SELECT a.task_id, a.id FROM annotations a JOIN tasks t ON t.id = a.task_id WHERE t.project_id = :p "
            "AND a.deleted = 0 ORDER BY a.id DESC LIMIT :n"), {"p": pid, "n": runs}).all()
    out = []
    for task_id, ann_id in rows:
        DecisionService(store).record(pid, [DecisionRequest(task_id=task_id, verdict="skip", annotation_id=ann_id)],
                                      reviewer="bench@example.com")
        t0 = time.perf_counter()
        q.build_queue(store, pid, q.QueueSpec(order="agreement"))
        out.append((time.perf_counter() - t0) * 1000)
    return statistics.median(out)


def main() -> None:
    args, tmp, folder, pid = built_store()

    from app.models.store import Store
    from app.services import queues as q

    store = Store.open(folder / "store")
    con = sqlite3.connect(store.path)

    def base_conf() -> None:
        con.execute("SELECT t.id FROM tasks t LEFT JOIN predictions p ON p.task_id = t.id WHERE t.project_id = ? "
                    "AND t.deleted = 0 ORDER BY p.score IS NULL, p.score, t.id", (pid,)).fetchall()

    def base_oldest() -> None:
        con.execute("SELECT id FROM tasks WHERE project_id = ? AND deleted = 0 ORDER BY created_at, id",
                    (pid,)).fetchall()

    t0 = time.perf_counter()
    inputs = q.queue_inputs(store, pid)
    cold_s = time.perf_counter() - t0
    hit_ms = timed(lambda: q.queue_inputs(store, pid))
    state_ms = timed(lambda: q.review_state(store, pid))
    state = q.review_state(store, pid)
    rows = [("what", "ms (median)", "tasks in queue")]
    rows.append(("baseline: SQL ORDER BY p.score, t.id (all tasks)", f"{timed(base_conf):.1f}", f"{args.tasks:,}"))
    rows.append(("baseline: SQL ORDER BY created_at, id (all tasks)", f"{timed(base_oldest):.1f}", f"{args.tasks:,}"))
    for order in q.ORDERS:
        spec = q.QueueSpec(order=order)
        n = len(q.build_queue(store, pid, spec))
        full = timed(lambda spec=spec: q.build_queue(store, pid, spec))
        pure = timed(lambda spec=spec: q.build_queue(store, pid, spec, inputs=inputs, state=state, expert_threshold=None))
        rows.append((f"build_queue order={order} (as the session calls it / numpy alone)", f"{full:.1f} / {pure:.1f}",
                     f"{n:,}"))
    combo = q.QueueSpec(agreement_below=0.9, confidence_below=0.8, not_reviewed=True, ground_truth="exclude",
                        sample_pct=50, seed=1, order="uncertainty")
    n = len(q.build_queue(store, pid, combo))
    rows.append(("build_queue 5 rules combined, order=uncertainty",
                 f"{timed(lambda: q.build_queue(store, pid, combo)):.1f}", f"{n:,}"))
    def after_write() -> None:
        q._QUICK.clear()  # as after a pull or an import: the cheap check moved, the inputs' version is re-checked
        q.build_queue(store, pid, q.QueueSpec(order="agreement"))

    rows.append(("build_queue order=agreement after a pull-type write (inputs version re-checked)",
                 f"{timed(after_write):.1f}", ""))
    rows.append(("build_queue order=agreement after a decision (recorded untimed, then the build)",
                 f"{after_decision(store, pid):.1f}", ""))
    ex = q.QueueSpec(role="expert")
    n = len(q.build_queue(store, pid, ex))
    rows.append(("build_queue role=expert (open escalations)",
                 f"{timed(lambda: q.build_queue(store, pid, ex)):.1f}", f"{n:,}"))
    print(f"load average {os.getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} cores")
    print(table(rows))
    print(f"\nreview state read alone: {state_ms:.1f} ms; per-task inputs: cold {cold_s:.1f} s "
          f"(metrics engine, off the UI thread), cache hit {hit_ms:.1f} ms")
    con.close()
    store.close()
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
