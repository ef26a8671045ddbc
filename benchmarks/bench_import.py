"""Import of a large Label Studio export: time and peak memory, beside a naive baseline.

    python benchmarks/bench_import.py [--tasks 100000]

Generates an export (text classification + entity spans + rating; 3 annotations and 1 prediction per
task), then, each in a fresh process:
  * ReviewDesk: `ProjectService.import_file` (streaming parse, one transaction, bulk inserts)
  * baseline:   `json.load` of the whole file (just parsing it the naive way, no store writes)
Targets (issue 2): 100k tasks in under 60 s and under 1 GB peak.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._util import run_child, table  # noqa: E402

CONFIG = """<View><Text name="text" value="$text"/>
<Choices name="category" toName="text"><Choice value="Billing"/><Choice value="Technical"/>
<Choice value="Account"/><Choice value="Shipping"/><Choice value="Other"/></Choices>
<Labels name="entities" toName="text"><Label value="ORG"/><Label value="PRODUCT"/></Labels>
<Rating name="urgency" toName="text" maxRating="5"/></View>"""
WORDS = ["charged", "twice", "subscription", "refund", "account", "login", "error", "shipping", "parcel", "delayed", "invoice"]


def generate(path: Path, n: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    cats = ["Billing", "Technical", "Account", "Shipping", "Other"]
    with path.open("w") as fh:
        fh.write("[")
        for i in range(n):
            text = "Acme " + " ".join(rng.choice(WORDS) for _ in range(25))
            anns = []
            for k in range(3):
                anns.append({
                    "id": i * 4 + k, "completed_by": 2 + k, "lead_time": rng.uniform(5, 90),
                    "ground_truth": k == 0 and i % 5 == 0, "created_at": "2026-10-01T10:00:00Z",
                    "result": [
                        {"id": f"c{i}{k}", "from_name": "category", "to_name": "text", "type": "choices",
                         "value": {"choices": [rng.choice(cats)]}},
                        {"id": f"s{i}{k}", "from_name": "entities", "to_name": "text", "type": "labels",
                         "value": {"start": 0, "end": 4, "text": "Acme", "labels": ["ORG"]}},
                        {"id": f"r{i}{k}", "from_name": "urgency", "to_name": "text", "type": "rating",
                         "value": {"rating": rng.randint(1, 5)}},
                    ]})
            task = {"id": i + 1, "data": {"text": text}, "meta": {}, "annotations": anns,
                    "predictions": [{"id": i, "model_version": "m1", "score": rng.random(),
                                     "result": [anns[0]["result"][0]]}],
                    "created_at": "2026-10-01T10:00:00Z", "updated_at": "2026-10-02T10:00:00Z"}
            fh.write(("," if i else "") + json.dumps(task))
        fh.write("]")
    return path.stat().st_size


OURS = """
import sys, time
from app.models.store import Store
from app.services.projects import ProjectService
store = Store.open(sys.argv[2])
t0 = time.perf_counter()
res = ProjectService(store).import_file(sys.argv[1], open(sys.argv[3]).read(), "bench")
_r = {"seconds": time.perf_counter() - t0, "tasks": res.summary.tasks, "annotations": res.summary.annotations}
"""
NAIVE = """
import sys, time, json
t0 = time.perf_counter()
tasks = json.load(open(sys.argv[1]))
_r = {"seconds": time.perf_counter() - t0, "tasks": len(tasks), "annotations": sum(len(t["annotations"]) for t in tasks)}
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "export.json"
        cfg = Path(tmp) / "config.xml"
        cfg.write_text(CONFIG)
        t0 = time.perf_counter()
        size = generate(src, args.tasks)
        print(f"generated {args.tasks:,} tasks ({size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s")
        ours = run_child(OURS, str(src), str(Path(tmp) / "store"), str(cfg))
        naive = run_child(NAIVE, str(src))
        db = Path(tmp) / "store" / "reviewdesk.sqlite"
        rows = [("what", "seconds", "tasks/s", "peak MB"),
                ("reviewdesk import (parse+validate+store)", f"{ours['seconds']:.1f}",
                 f"{ours['tasks'] / ours['seconds']:,.0f}", f"{ours['peak_mb']:.0f}"),
                ("baseline json.load only (no store)", f"{naive['seconds']:.1f}",
                 f"{naive['tasks'] / naive['seconds']:,.0f}", f"{naive['peak_mb']:.0f}")]
        print(table(rows))
        print(f"store file: {db.stat().st_size / 1e6:.0f} MB; annotations imported: {ours['annotations']:,}")
        print(f"targets: < 60 s -> {'met' if ours['seconds'] < 60 else 'MISSED'}; "
              f"< 1024 MB -> {'met' if ours['peak_mb'] < 1024 else 'MISSED'}")


if __name__ == "__main__":
    main()
