"""Cold metric frames: decoded from result JSON (old path) vs read from ``result_values`` (issue 14.1).

    python benchmarks/bench_frames.py [--evaluators 10] [--tasks 10000] [--ids] [--store DIR]

Builds a store with ``bench_dashboard``'s generator (one 5-class Choices control, every evaluator on every
task, ground truth on 20 % of tasks; ``--ids``: every result item carries its own LS region id, as real
exports do, so no two item texts are equal), or reuses ``--store DIR`` when it already holds one. Then, in
one process, nothing cached in memory (the file itself is in the OS page cache after the first read;
raw reads best of 3, new path best of 2, the rest once):

  * baseline: the raw ``SELECT`` of the project's annotation rows (all columns; and id, task, result only);
  * cold frames, old path (``dashboard._build_frames``: every stored result decoded and split);
  * cold frames, new path (``frames.build_frames``: plain columns + ``result_values``);
  * ``reviewdesk metrics PROJECT --json`` in-process, cold, with each path (store open + frames + the
    metrics engine), without the frames the CLI keeps beside the store (the first run after a change);
  * the metrics engine alone on ready frames (``metrics_report``), what the CLI adds to the frames;
  * the same command with the frames kept by its last run (unchanged data), the ``PRAGMA quick_check`` the
    open skips on an unchanged file, and the command in a new process (with the interpreter start and
    imports, measured alone too).

Ratios are against the full-row read. Not timed asserts: numbers to compare in one run (DESIGN.md 9).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._util import table  # noqa: E402
from benchmarks.bench_dashboard import CONFIG, generate  # noqa: E402


def generate_with_ids(path: Path, n_tasks: int, n_eval: int, seed: int = 3) -> None:
    """``bench_dashboard.generate`` with an LS region id (and ``origin``) on every result item."""
    generate(path, n_tasks, n_eval, seed)
    rng = random.Random(seed)
    tasks = json.loads(path.read_text())
    for t in tasks:
        for a in t["annotations"]:
            for item in a["result"]:
                item["id"] = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(10))
                item["origin"] = "manual"
    path.write_text(json.dumps(tasks))


def _timed(fn):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--evaluators", type=int, default=10)
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--ids", action="store_true", help="a distinct LS id on every result item")
    ap.add_argument("--store", help="build the store here once and reuse it on later runs")
    args = ap.parse_args()

    from app.main import main as cli
    from app.metrics import metrics_report
    from app.models.store import Store
    from app.services import dashboard
    from app.services import frames as frames_mod
    from app.services.projects import ProjectService

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.store) if args.store else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        data_dir = root / "store"
        store = Store.open(data_dir)
        if not (root / "project_id").exists():
            src = root / "export.json"
            (generate_with_ids if args.ids else generate)(src, args.tasks, args.evaluators)
            res, took = _timed(lambda: ProjectService(store).import_file(src, CONFIG, "bench"))
            (root / "project_id").write_text(str(res.summary.project_id))
            src.unlink()
            print(f"imported {res.summary.annotations:,} annotations in {took:.0f} s (result_values written by "
                  "the triggers in the same transactions)")
        pid = int((root / "project_id").read_text())
        version = dashboard.data_version(store, pid)
        print(f"store: {version[0]:,} annotations, {args.evaluators} evaluators x {args.tasks:,} tasks"
              f"{', item ids' if args.ids else ''}; load average {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} cores")

        def raw(sql: str) -> int:
            with store.session() as s:
                cur = s.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
                return len(cur.execute(sql, (pid,)).fetchall())

        full_sql = "SELECT a.* FROM annotations a JOIN tasks t ON t.id = a.task_id WHERE t.project_id = ?"
        narrow_sql = ("SELECT a.id, a.task_id, a.result FROM annotations a JOIN tasks t ON t.id = a.task_id "
                      "WHERE t.project_id = ?")
        raw(full_sql)  # the file into the OS page cache, for every measurement alike
        t_raw = min(_timed(lambda: raw(full_sql))[1] for _ in range(3))  # best of 3: a shared machine
        t_narrow = min(_timed(lambda: raw(narrow_sql))[1] for _ in range(3))
        old_build, new_build = dashboard._build_frames, frames_mod.build_frames
        _, t_old = _timed(lambda: old_build(store, pid, version, None))
        fresh, t_new = _timed(lambda: new_build(store, pid, version, None))
        t_new = min(t_new, _timed(lambda: new_build(store, pid, version, None))[1])  # best of 2
        gt = fresh.ground_truth if not fresh.ground_truth.empty else None
        _, t_engine = _timed(lambda: metrics_report(fresh.annotations, gt, fresh.params, decisions=None))

        def drop_frames_cache() -> None:
            for f in (data_dir / "cache").glob("frames-*.pickle"):
                f.unlink()

        def metrics_cli(build, keep_cache: bool = False) -> float:  # type: ignore[no-untyped-def]
            dashboard._build_frames = build  # both hooks: before and after load_frames calls frames.py
            frames_mod.build_frames = build
            try:
                with dashboard._CACHE_LOCK:
                    dashboard._CACHE.clear()
                if not keep_cache:  # the first run after a change: no frames kept beside the store
                    drop_frames_cache()
                with contextlib.redirect_stdout(io.StringIO()):
                    t0 = time.perf_counter()
                    assert cli(["--data-dir", str(data_dir), "metrics", str(pid), "--json"]) == 0
                    return time.perf_counter() - t0
            finally:
                dashboard._build_frames, frames_mod.build_frames = old_build, new_build

        t_cli_old = metrics_cli(old_build)
        t_cli_new = metrics_cli(new_build)
        t_cli_new = min(t_cli_new, metrics_cli(new_build))  # best of 2
        t_cli_cached = metrics_cli(new_build, keep_cache=True)  # unchanged data: the frames kept by the last run
        t_cli_cached = min(t_cli_cached, metrics_cli(new_build, keep_cache=True))
        with sqlite3.connect(f"file:{store.path}?mode=ro", uri=True) as con:
            _, t_check = _timed(lambda: con.execute("PRAGMA quick_check").fetchall())
        proc = [sys.executable, "-m", "app.main", "--data-dir", str(data_dir), "metrics", str(pid), "--json"]
        root_dir = Path(__file__).resolve().parents[1]
        drop_frames_cache()
        _, t_proc = _timed(lambda: subprocess.run(proc, cwd=root_dir, check=True, capture_output=True))
        _, t_proc_cached = _timed(lambda: subprocess.run(proc, cwd=root_dir, check=True, capture_output=True))
        _, t_imports = _timed(lambda: subprocess.run(
            [sys.executable, "-c", "import app.main, app.cli, app.cli.metrics, app.metrics, app.services.dashboard, "
             "app.services.frames"], cwd=root_dir, check=True, capture_output=True))
        store.close()

    def row(what: str, t: float) -> tuple[str, str, str]:
        return what, f"{t:.2f}", f"{t / t_raw:.2f}"

    print(table([("what", "seconds", "x raw rows"),
                 row("baseline: SELECT the project's annotation rows (all columns)", t_raw),
                 row("baseline: SELECT id, task, result of those rows", t_narrow),
                 row("cold frames, old path (decode + split every result)", t_old),
                 row("cold frames, new path (result_values)", t_new),
                 row("reviewdesk metrics --json, cold, old path", t_cli_old),
                 row("reviewdesk metrics --json, cold, new path (no frames kept)", t_cli_new),
                 row("  of which the metrics engine on ready frames", t_engine),
                 row("reviewdesk metrics --json, cold, frames kept by the last run", t_cli_cached),
                 row("  (not in the runs above) PRAGMA quick_check of the file", t_check),
                 row("new process: python -m app.main metrics --json (no frames kept)", t_proc),
                 row("new process: python -m app.main metrics --json (frames kept)", t_proc_cached),
                 row("  of which the process start and imports", t_imports)]))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    print(f"new frames / raw rows: {t_new / t_raw:.2f}; old / new: {t_old / t_new:.1f}x; "
          f"metrics CLI (in-process, no frames kept) / raw rows: {t_cli_new / t_raw:.2f} (goal <= 2), "
          f"with the frames kept: {t_cli_cached / t_raw:.2f}")


if __name__ == "__main__":
    main()
