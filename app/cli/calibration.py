"""``reviewdesk calibration``: a project's calibration requirement, a reviewer's status and everyone's results.

    reviewdesk calibration PROJECT --require N [--threshold T] [--json]   # require a round of N ground-truth tasks
    reviewdesk calibration PROJECT --off [--json]                         # production review without calibration
    reviewdesk calibration PROJECT [--status] [--reviewer R] [--json]     # required? passed? (default)
    reviewdesk calibration PROJECT --results [--reviewer R] [--json]      # finished rounds, scores per control

Rounds themselves are judged in the app (the Review tab shows the round while the production queue is locked).
"""

from __future__ import annotations

import argparse
from typing import Any

from app.cli import CliError, command, emit, open_store


def register(sub: Any, add: Any) -> None:
    sp = add("calibration", "a project's calibration requirement, a reviewer's status, and the results")
    sp.add_argument("project", type=int)
    what = sp.add_mutually_exclusive_group()
    what.add_argument("--require", type=int, metavar="N", help="require a round of N ground-truth tasks")
    what.add_argument("--off", action="store_true", help="no calibration needed before production review")
    what.add_argument("--status", action="store_true", help="the requirement and the reviewer's status (default)")
    what.add_argument("--results", action="store_true", help="finished rounds: scores per control, pass/fail")
    sp.add_argument("--threshold", type=float, help="with --require: pass threshold per control, 0..1 "
                                                    "(default 0.8)")
    sp.add_argument("--reviewer", help="reviewer email (default: from settings)")


def _req_json(r: Any) -> dict[str, Any]:
    return {"required": r.required, "n_tasks": r.n_tasks, "threshold": r.threshold, "updated_at": r.updated_at}


@command("calibration")
def cmd_calibration(args: argparse.Namespace) -> int:
    from app.services.calibration import DEFAULT_THRESHOLD, CalibrationError, CalibrationService, round_json
    from app.services.settings import load_settings

    if args.threshold is not None and args.require is None:
        raise CliError("--threshold goes with --require N")
    store = open_store(args)
    try:
        svc = CalibrationService(store)
        reviewer = args.reviewer or load_settings(store.data_dir).reviewer
        try:
            if args.require is not None:
                threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
                svc.require(args.project, args.require, threshold, actor=reviewer)
                r = svc.requirement(args.project)
                emit(args, {"project_id": args.project, "requirement": _req_json(r)},
                     f"Project {args.project} requires a calibration round of {r.n_tasks} ground-truth tasks, "
                     f"passed at {r.threshold:.0%} per control.")
                return 0
            if args.off:
                svc.turn_off(args.project, actor=reviewer)
                r = svc.requirement(args.project)
                emit(args, {"project_id": args.project, "requirement": _req_json(r)},
                     f"Project {args.project} no longer requires calibration.")
                return 0
            if args.results:
                rounds = svc.results(args.project, args.reviewer)
                lines = [f"{x.finished_at}  {x.reviewer:<28} {'pass' if x.passed else 'FAIL'}  "
                         + "  ".join(f"{c.control} {c.score:.0%} (n={c.n})" for c in x.scores) for x in rounds]
                emit(args, {"project_id": args.project, "rounds": [round_json(x) for x in rounds]},
                     "\n".join(lines) or "No finished calibration rounds yet.")
                return 0
            st = svc.status(args.project, reviewer)
        except (CalibrationError, LookupError) as exc:
            raise CliError(str(exc)) from exc
    finally:
        store.close()
    r = st.requirement
    text = (f"Calibration {'required' if r.required else 'not required'} ({r.n_tasks} tasks, pass at "
            f"{r.threshold:.0%}); {reviewer}: " + ("passed" if st.passed else "not passed")
            + (", a round is open" if st.open_round is not None else "")
            + (" — production review is locked" if st.locked else ""))
    emit(args, {"project_id": args.project, "reviewer": reviewer, "requirement": _req_json(r), "passed": st.passed,
                "locked": st.locked, "open_round": st.open_round,
                "last": round_json(st.last) if st.last is not None else None}, text)
    return 0
