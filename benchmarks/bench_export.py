"""Exports of a large project per --what and --format, beside baselines that write the raw rows.

    python benchmarks/bench_export.py [--tasks 100000] [--store DIR] [--what tasks,ground-truth,consensus]

Generates the export of ``bench_import.py`` (3 annotations with 3 controls and 1 prediction per task, a
ground-truth flag on 20 % of tasks) and imports it once into a store (``--store DIR`` reuses it). Then, each
in a fresh process (nothing cached), times ``app.api.export`` for every requested ``--what`` and format, and
the baselines:
  * json.dump of the raw rows: ``SELECT`` of the project's task and annotation rows, ``json.dump`` of them as
    lists (no Label Studio structure, no per-task assembly) -- the floor for ``ls-json``;
  * pyarrow write of the raw rows: the same ``SELECT`` of the tasks table into an Arrow table and
    ``pyarrow.parquet.write_table`` / ``pyarrow.csv.write_csv`` -- the floor for the tasks table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._util import run_child, table  # noqa: E402
from benchmarks.bench_import import CONFIG, generate  # noqa: E402

EXPORT = """
import sys, time
from app import api
store = api.open_store(sys.argv[1])
t0 = time.perf_counter()
res = api.export(store, 1, sys.argv[2], what=sys.argv[3], fmt=sys.argv[4])
_r = {"s": time.perf_counter() - t0, "rows": res.rows}
store.close()
"""

RAW_JSON = """
import json, sqlite3, sys, time
t0 = time.perf_counter()
con = sqlite3.connect(sys.argv[1] + "/reviewdesk.sqlite")
tasks = con.execute("SELECT id, server_id, data, meta, created_at, updated_at FROM tasks WHERE project_id = 1").fetchall()
anns = con.execute("SELECT a.id, a.task_id, a.server_id, a.completed_by, a.result, a.ground_truth, a.lead_time, "
                   "a.created_at FROM annotations a JOIN tasks t ON t.id = a.task_id WHERE t.project_id = 1").fetchall()
with open(sys.argv[2], "w") as fh:
    json.dump({"tasks": tasks, "annotations": anns}, fh)
_r = {"s": time.perf_counter() - t0, "rows": len(tasks)}
"""

RAW_ARROW = """
import sqlite3, sys, time
import pyarrow as pa, pyarrow.csv as pc, pyarrow.parquet as pq
t0 = time.perf_counter()
con = sqlite3.connect(sys.argv[1] + "/reviewdesk.sqlite")
rows = con.execute("SELECT id, server_id, position, data, meta, created_at, updated_at FROM tasks "
                   "WHERE project_id = 1").fetchall()
cols = list(zip(*rows))
t = pa.table({n: list(c) for n, c in zip(["task", "server_id", "position", "data", "meta", "created_at",
                                          "updated_at"], cols)})
(pq.write_table if sys.argv[3] == "parquet" else pc.write_csv)(t, sys.argv[2])
_r = {"s": time.perf_counter() - t0, "rows": len(rows)}
"""


def build_store(store: Path, n: int) -> float:
    from app.models.store import Store
    from app.services.projects import ProjectService

    src = Path(tempfile.mkdtemp()) / "export.json"
    generate(src, n)
    s = Store.open(store)
    t0 = time.perf_counter()
    ProjectService(s).import_file(src, CONFIG, "bench export")
    took = time.perf_counter() - t0
    s.close()
    src.unlink()
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--store", type=Path, help="reuse (or build once into) this data folder")
    ap.add_argument("--what", default="tasks,ground-truth,consensus")
    ap.add_argument("--formats", default="ls-json,csv,parquet")
    args = ap.parse_args()
    store = args.store or Path(tempfile.mkdtemp()) / "store"
    if not (store / "reviewdesk.sqlite").exists():
        print(f"building the store: {args.tasks} tasks ... import {build_store(store, args.tasks):.1f} s", flush=True)
    out_dir = Path(tempfile.mkdtemp())
    print(f"load average {os.getloadavg()[0]:.2f}", flush=True)
    rows = [("export", "rows", "seconds", "peak MB", "file MB")]

    def add(label: str, res: dict, path: Path) -> None:
        rows.append((label, f"{res['rows']:,}", f"{res['s']:.2f}", f"{res['peak_mb']:.0f}",
                     f"{path.stat().st_size / 1e6:.1f}"))
        print(" ".join(rows[-1]), flush=True)
        path.unlink()

    p = out_dir / "raw.json"
    add("baseline: json.dump of raw task + annotation rows", run_child(RAW_JSON, str(store), str(p)), p)
    for fmt in ("csv", "parquet"):
        p = out_dir / f"raw.{fmt}"
        add(f"baseline: pyarrow {fmt} of raw task rows", run_child(RAW_ARROW, str(store), str(p), fmt), p)
    for what in args.what.split(","):
        for fmt in args.formats.split(","):
            if fmt == "ls-json" and what not in ("tasks", "ground-truth"):
                continue
            p = out_dir / f"{what}.{fmt}"
            add(f"reviewdesk export --what {what} --format {fmt}", run_child(EXPORT, str(store), str(p), what, fmt), p)
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
