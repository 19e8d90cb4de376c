"""``ald-tune report`` and ``ald-tune recommend``: the comparison read back from MLflow.

Both choose sweeps as :mod:`ald_tune.report.mlflow_rebuild` says (the newest complete
compare unless pinned) and print exactly what ``compare`` printed.
"""

from __future__ import annotations

import argparse
import json
import os

from ald_tune.config.constraints import check_name
from ald_tune.report.comparison import log_comparison, recommendation_text, render
from ald_tune.report.mlflow_rebuild import comparison_from_mlflow, parse_pins, recommend_from_mlflow
from ald_tune.tracking.store import check_tracking, resolve_tracking_uri


def run_report(args: argparse.Namespace) -> int:
    """``ald-tune report``."""
    check_name(args.experiment, "--experiment")  # it names the default report folder
    pins = parse_pins(args.sweep)
    uri = resolve_tracking_uri(args.tracking_uri, args.run_dir)
    check_tracking(uri, create=False)  # reads: a store that is not there is not made
    comp = comparison_from_mlflow(uri, args.experiment, pins=pins)
    out = os.path.abspath(args.out or os.path.join(args.run_dir, "results", args.experiment))
    paths = comp.write(out)
    if args.log:  # reads only, unless asked: a second log would double the metric rows
        log_comparison(uri, comp, paths)
    if args.json:  # one object for scripts: what comparison.json holds, per rule
        print(
            json.dumps(
                {
                    "compare": comp.compare,
                    "out": out,
                    "reports": {k: r.to_dict() for k, r in comp.reports.items()},
                }
            )
        )
        return 0
    print(comp.note)
    print(render(comp))
    print(f"report written to {out}")
    return 0


def run_recommend(args: argparse.Namespace) -> int:
    """``ald-tune recommend``."""
    uri = resolve_tracking_uri(args.tracking_uri, args.run_dir)
    check_tracking(uri, create=False)  # reads: a store that is not there is not made
    rec = recommend_from_mlflow(uri, args.experiment, pins=parse_pins(args.sweep), rule=args.rule)
    if args.json:
        print(json.dumps(rec))
    else:
        print(recommendation_text(rec))
        print(f"(from sweep {rec['sweep']} in experiment {args.experiment!r})")
    return 0
