"""``reviewdesk metrics``: the agreement matrix and per-annotator quality, for people and pipelines."""

from __future__ import annotations

import argparse
import math
from typing import Any

from app.cli import CliError, command, emit, open_store

#: Set by ``app.main`` (the only place allowed to pull in Qt) so ``--png`` can draw the heatmap.
PNG_RENDERER: Any = None


def register(sub: Any, add: Any) -> None:
    sp = add("metrics", "agreement matrix (evaluators x ground truth and each other) and per-annotator quality")
    sp.add_argument("project", type=int)
    sp.add_argument("--control", help="one dimension (control name); default: all dimensions (mean)")
    sp.add_argument("--mode", choices=["pairwise", "consensus"], default="pairwise")
    sp.add_argument("--stat", choices=["agreement", "kappa", "alpha"], default="agreement",
                    help="agreement (default: matrix + per-annotator quality), kappa (Cohen's kappa per evaluator "
                         "pair and vs ground truth) or alpha (Krippendorff's alpha per dimension and overall, "
                         "Fleiss' kappa where every task has the same number of raters)")
    sp.add_argument("--png", metavar="OUT.png", help="also draw the heatmap to a PNG file")
    sp.add_argument("--csv", metavar="OUT.csv",
                    help="also write the matrix to a CSV file (and -annotators/-controls/-models CSVs beside it)")
    sp.add_argument("--as-of", metavar="EVENT_ID|TIMESTAMP",
                    help="the numbers as they were right after this audit event (or the last event at or before "
                         "this ISO 8601 time, UTC unless an offset is given); see docs/adr/0015")


def _fmt_pct(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}%"


@command("metrics")
def cmd_metrics(args: argparse.Namespace) -> int:
    from app.api import AsOfError, metrics_snapshot
    from app.services.dashboard import flush_frames_cache

    store = open_store(args)
    try:
        if getattr(args, "as_of", None) is None:
            try:
                return _metrics(args, store, None)
            finally:
                flush_frames_cache()  # the frames kept for the next run, written while the report computed
        try:
            with metrics_snapshot(store, args.as_of, args.project) as (snap, cut):
                return _metrics(args, snap, cut)
        except AsOfError as exc:
            raise CliError(str(exc)) from exc
    finally:
        store.close()


def _metrics(args: argparse.Namespace, store: Any, cut: Any) -> int:
    from app.api import report_of_frames
    from app.metrics import format_matrix_table
    from app.services.dashboard import compute_dashboard, export_csv, load_frames

    args.as_of_info = cut.as_json() if cut is not None else None
    try:  # live numbers: the frames are kept beside the store for the next run (not a snapshot's)
        frames = load_frames(store, args.project, persist=cut is None)
    except LookupError as exc:
        raise CliError(str(exc)) from exc
    if frames.annotations.empty:  # nothing to compare: say what there is instead of failing
        return _nothing_to_compare(args, store)
    if args.control is not None and args.control not in frames.controls:
        raise CliError(f"Project {args.project} has no control {args.control!r}; "
                       f"its controls are: {', '.join(frames.controls)}")
    gt = frames.ground_truth if not frames.ground_truth.empty else None
    if getattr(args, "stat", "agreement") != "agreement":
        return _stat(args, frames, gt)
    # app.api's report on the frames just loaded (compute_metrics would ask the data version again)
    report = report_of_frames(frames, args.project, args.control, args.mode)
    dash = None
    if args.png or args.csv or not args.json:
        dash = compute_dashboard(store, args.project, mode=args.mode, save=cut is None)
    outputs = []
    if args.csv and dash is not None:
        try:
            outputs += export_csv(dash, args.csv, args.control)
        except OSError as exc:
            raise CliError(f"Cannot write the CSV file {args.csv}: {exc.strerror or exc}") from exc
    if args.png and dash is not None:
        if PNG_RENDERER is None:
            raise CliError("--png needs the Qt libraries; run through the `reviewdesk` command")
        m = dash.matrices[args.control]
        title = f"Agreement — {args.control or 'all dimensions'} ({args.mode})"
        try:
            PNG_RENDERER(m, args.png, title=title, min_overlap=dash.min_overlap)
        except OSError as exc:
            raise CliError(f"Cannot write the PNG file {args.png}: {exc.strerror or exc}") from exc
        outputs.append(args.png)
    if args.json:
        payload = dict(report)
        if outputs:
            payload["files"] = outputs
        if args.as_of_info is not None:
            payload["as_of"] = args.as_of_info
        emit(args, payload, "")
        return 0
    assert dash is not None
    lines = [format_matrix_table(dash.matrices[args.control], decimals=1), "", "Per-annotator quality"]
    q = dash.quality
    header = f"{'evaluator':<32} {'agree':>7} {'accuracy (95% CI)':>24} {'tasks':>6} {'med s':>6}  flags"
    lines.append(header)
    lines.append("-" * len(header))
    footer = ("accuracy: score against the ground truth pooled over every (task, dimension) compared; the "
              "matrix's Ground truth column averages the dimensions' cells (equal on one dimension)")
    for _, r in q.iterrows():
        ci = "" if r["accuracy"] != r["accuracy"] else (
            f"{_fmt_pct(r['accuracy'])} ({_fmt_pct(r['accuracy_low'])}-{_fmt_pct(r['accuracy_high'])})")
        flags = [f for f, on in (("drift", r["drift_alarm"]), ("fast", r.get("fast_flag")),
                                 ("low-entropy", r.get("low_entropy_flag"))) if on]
        mlt = "" if r["median_lead_time"] != r["median_lead_time"] else f"{r['median_lead_time']:.0f}"
        lines.append(f"{str(r['evaluator'])[:32]:<32} {_fmt_pct(r['agreement']):>7} {ci:>24} "
                     f"{int(r['volume']):>6} {mlt:>6}  {', '.join(flags)}")
    lines.append(footer)
    if report.get("alpha") is not None:
        lines.append(f"\nKrippendorff's alpha ({args.control}): {report['alpha']:.3f}")
    elif report.get("alpha_by_control"):
        parts = [f"{c} {a:.3f}" for c, a in report["alpha_by_control"].items() if a is not None]
        if parts:
            lines.append("\nKrippendorff's alpha by control: " + ", ".join(parts))
    for f in outputs:
        lines.append(f"wrote {f}")
    if args.as_of_info is not None:
        lines.append(_as_of_line(args.as_of_info))
    emit(args, None, "\n".join(lines))
    return 0


def _stat(args: argparse.Namespace, frames: Any, gt: Any) -> int:
    """``--stat kappa|alpha``: JSON with ``--json``, else a text table (undefined values as ``n/a``)."""
    from app.metrics import alpha_report, kappa_report

    if args.png or args.csv:
        raise CliError("--png and --csv are for --stat agreement")
    if args.stat == "kappa":
        rep = kappa_report(frames.annotations, gt, frames.params, control=args.control)
    else:
        rep = alpha_report(frames.annotations, gt, frames.params, control=args.control)
    if args.json:
        emit(args, rep if args.as_of_info is None else {**rep, "as_of": args.as_of_info}, "")
        return 0
    text = _format_kappa(rep) if args.stat == "kappa" else _format_alpha(rep)
    emit(args, None, text if args.as_of_info is None else f"{text}\n{_as_of_line(args.as_of_info)}")
    return 0


def _as_of_line(info: dict[str, Any]) -> str:
    """The as-of footer: which event, and whether anything after it could not be rewound (ADR 0015)."""
    line = f"As of audit event {info['event_id']} ({info['at']})"
    if not info["exact"]:
        r = info["rewind"]
        line += (f"; not exact: {r['changed_since']} annotations changed and {r['removed_since']} removed by later "
                 f"pulls are shown as they are now" + (f", {r['tasks_deleted_since']} tasks they deleted stay deleted"
                                                       if r["tasks_deleted_since"] else "")
                 + (", and later pull records were capped" if r["pulls_truncated"] else ""))
    return line + "."


def _num(v: Any, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _format_kappa(rep: dict[str, Any]) -> str:
    title = f"Cohen's kappa — {rep['control'] or 'all categorical dimensions (mean)'}"
    if not rep["rows"]:
        return f"{title}\n{rep.get('note', 'nothing to compute')}"
    names = [c if len(c) <= 24 else c[:23] + "…" for c in rep["columns"]]
    width = max(12, *(len(r) for r in rep["rows"]))
    lines = [title, "evaluator".ljust(width) + "".join(f"{n:>26}" for n in names)]
    for r, row in enumerate(rep["rows"]):
        cells = ["—" if rep["reasons"][r][c] == "diagonal" else _num(v) for c, v in enumerate(rep["matrix"][r])]
        lines.append(row[:width].ljust(width) + "".join(f"{x:>26}" for x in cells))
    for c, why in rep["skipped"].items():
        lines.append(f"{c}: not computed ({why})")
    return "\n".join(lines)


def _format_alpha(rep: dict[str, Any]) -> str:
    lines = [f"{'dimension':<24} {'type':<16} {'alpha':>8} {'Fleiss k':>9}  notes"]
    for c, e in rep["by_control"].items():
        notes = "; ".join(x for x in (e["alpha_reason"] and f"alpha: {e['alpha_reason']}",
                                      e["fleiss_reason"] and f"Fleiss: {e['fleiss_reason']}") if x)
        lines.append(f"{c[:24]:<24} {e['type'][:16]:<16} {_num(e['alpha']):>8} {_num(e['fleiss_kappa']):>9}  {notes}")
    o = rep["overall"]
    lines.append(f"overall alpha ({o['method']}): {_num(o['alpha'])}" + (f" — {o['reason']}" if o["reason"] else ""))
    return "\n".join(lines)


def _nothing_to_compare(args: argparse.Namespace, store: Any) -> int:
    """No annotation to score (none yet, or all cancelled): print the volume there is, exit 0."""
    from sqlalchemy import text

    with store.session() as s:
        tasks, anns, cancelled, lead = s.execute(text(
            "SELECT (SELECT count(*) FROM tasks WHERE project_id = :p AND deleted = 0), count(a.id), "
            "coalesce(sum(a.was_cancelled), 0), total(CASE WHEN a.was_cancelled = 0 THEN a.lead_time END) "
            "FROM annotations a JOIN tasks t ON t.id = a.task_id WHERE t.project_id = :p AND t.deleted = 0 "
            "AND a.deleted = 0"), {"p": args.project}).one()
    note = (f"Project {args.project} has no annotations to compare yet"
            + (f" ({cancelled} cancelled)" if cancelled else "") + ".")
    payload = {"control": args.control, "mode": args.mode, "evaluators": [], "per_annotator": [],
               "tasks": tasks, "annotations": anns, "cancelled": cancelled, "annotated_tasks": 0,
               "lead_time_total": lead, "alpha": None, "note": note}
    if getattr(args, "as_of_info", None) is not None:
        payload["as_of"] = args.as_of_info
    emit(args, payload,
         f"{note}\n{tasks} tasks, {anns} annotations ({cancelled} cancelled), 0 tasks annotated.")
    return 0
