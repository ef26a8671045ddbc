"""Small helpers shared by the benchmarks (timing in a child process, peak memory)."""

from __future__ import annotations

import json
import subprocess
import sys


def run_child(code: str, *args: str) -> dict:
    """Run ``code`` in a fresh interpreter; it must print one JSON line. Adds its peak RSS (MB)."""
    wrapper = code + "\nimport resource, json as _j, sys as _s\n" \
        "_r['peak_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\nprint(_j.dumps(_r))\n"
    proc = subprocess.run([sys.executable, "-c", wrapper, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
