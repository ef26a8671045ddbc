"""Kill -9 the decision path at random moments: every decision reported committed must survive."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from app.models.store import Store
from app.services.demo import ensure_demo

CHILD = r"""
import sys, itertools
from app.models.store import Store
from app.services.projects import ProjectService
from app.services.review import ReviewSession
store = Store.open(sys.argv[1])
s = ReviewSession(ProjectService(store), int(sys.argv[2]), reviewer="crash@example.com")
print("ready", flush=True)
verdicts = itertools.cycle(["accept", "reject", "accept", "skip", "accept"])
while True:
    v = next(verdicts)
    kw = {"reason": "Wrong label"} if v == "reject" else {}
    pending = s.begin(v, **kw)
    if pending is None:
        s.next_open(); continue
    rec = s.commit(pending)          # durable when this returns
    for d in rec.decisions:
        print(d.uuid, flush=True)    # reported committed
    s.finish(pending, rec)
"""


def test_sigkill_never_loses_a_committed_decision(tmp_path: Path) -> None:
    data = tmp_path / "d"
    store = Store.open(data)
    pid = ensure_demo(store)
    store.close()
    rng = random.Random(1234)
    reported: set[str] = set()
    kills = 12
    for _ in range(kills):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(data), str(pid)], stdout=subprocess.PIPE,
                                text=True, cwd=Path(__file__).resolve().parents[2])
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.02, 0.4))
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        reported |= {line.strip() for line in out.splitlines() if line.strip()}
    assert len(reported) > kills  # the children really were deciding when killed
    con = sqlite3.connect(data / "reviewdesk.sqlite")
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored = {r[0] for r in con.execute("SELECT uuid FROM decisions")}
        syncs = con.execute("SELECT count(*) FROM decision_sync").fetchone()[0]
    finally:
        con.close()
    missing = reported - stored
    assert not missing, f"{len(missing)} committed decisions lost"
    assert syncs == len(stored)  # each decision's sync row was written in the same transaction
    # and the store still opens through the normal path
    Store.open(data).close()
