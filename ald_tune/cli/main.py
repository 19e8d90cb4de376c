"""The ``ald-tune`` command line. Arguments are parsed only in :func:`main`.

Commands:
    ald-tune train --space FILE [--preset P] [--set section.field=value ...] [--out DIR]
                   [--fixed-nz K] [--resume DIR] [--tracking-uri URI]
        One ALD run (or one fixed-size run) on this machine, no Ray (to MLflow if asked).
    ald-tune ald  --space FILE [sweep options]   ALD trials (seeds) under Ray Tune -> MLflow
    ald-tune grid --space FILE [sweep options]   the grid over fixed n_z under Ray Tune -> MLflow
    ald-tune compare [--space FILE] [...]        grid + ALD + report (= python ald_tune/run.py)
    ald-tune report --experiment NAME [--out DIR] [--log]  the comparison rebuilt from MLflow
    ald-tune recommend --experiment NAME [--json] the recommended n_z, from MLflow
    ald-tune optuna --space FILE --storage URL   a sweep under plain Optuna (optuna-dashboard)
    ald-tune ui [--run-dir DIR] [--port P]        the MLflow UI for the default store
    ald-tune backfill --storage PATH --name SWEEP [--tracking-uri URI]
        log into MLflow what a sweep recorded while the tracking server was down
Every command that reads a search space takes ``--print-config`` (print the resolved
config as YAML and exit); ``ald-tune --version`` prints the version.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

import shtab

from ald_tune._version import __version__
from ald_tune.cli.common import run_command, space_args, store_args, sweep_args

#: command -> the module whose ``run(args)`` carries it out, ``module:function``. Looked
#: up by name when the command runs, so ``ald-tune --help`` (or a typo) costs no import of
#: torch, Ray or MLflow (3-5 s here).
COMMANDS = {
    "train": "ald_tune.cli.train:run",
    "ald": "ald_tune.cli.sweep:run",
    "grid": "ald_tune.cli.sweep:run",
    "ui": "ald_tune.cli.ui:run",
    "report": "ald_tune.cli.report:run_report",
    "recommend": "ald_tune.cli.report:run_recommend",
    "optuna": "ald_tune.cli.optuna:run",
    "backfill": "ald_tune.cli.backfill:run",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ald-tune",
        description=(
            "Choose a VAE's latent size n_z with one self-shrinking run (ALD-VAE) or a grid."
        ),
    )
    parser.add_argument("--version", action="version", version=f"ald-tune {__version__}")
    # Shell completion from the parser itself (shtab: no shell code kept by hand):
    #   ald-tune --print-completion bash > ~/.local/share/bash-completion/completions/ald-tune
    shtab.add_argument_to(parser, ["--print-completion"])
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    for mode, text in (
        ("ald", "ALD trials (one per seed) under Ray Tune, logged to MLflow"),
        ("grid", "the grid over fixed n_z under Ray Tune, logged to MLflow"),
    ):
        sweep_args(sub.add_parser(mode, help=text), scheduler=True if mode == "grid" else "hidden")
    sub.add_parser(
        "compare",
        add_help=False,
        help="grid + ALD sweeps and the report (see: ald-tune compare --help)",
    )
    _report_parsers(sub)
    _other_parsers(sub)
    return parser


def _train_parser(sub) -> None:
    """``ald-tune train``."""
    tr = sub.add_parser("train", help="one ALD (or fixed-size) training run, no Ray")
    space_args(tr)
    tr.add_argument("--out", default=None, help="output folder (default: runs/train-<time>)")
    tr.add_argument(
        "--fixed-nz",
        type=int,
        default=None,
        metavar="K",
        help="train the fixed-size baseline at n_z=K instead of ALD",
    )
    tr.add_argument(
        "--resume",
        default=None,
        metavar="CKPT",
        help="continue from a checkpoint file or the folder holding checkpoint.pt "
        "(as it was configured; written back to that folder unless --out)",
    )
    tr.add_argument(
        "--overwrite", action="store_true", help="replace the results of an earlier run in --out"
    )
    tr.add_argument(
        "--checkpoint-every",
        type=int,
        default=5,
        metavar="N",
        help="write OUT/checkpoint.pt (and send MLflow its buffer) every N epochs "
        "(0: only at the end)",
    )
    tr.add_argument(
        "--tracking-uri",
        default=None,
        help="log the run to MLflow like a trial: metrics per epoch with n_z, "
        "images with steps, the model (default: no tracking)",
    )
    tr.add_argument(
        "--experiment",
        default=None,
        help="MLflow experiment with --tracking-uri (default ald-tune-DATASET)",
    )


def _report_parsers(sub) -> None:
    """``ald-tune report`` and ``ald-tune recommend``."""
    rp = sub.add_parser("report", help="rebuild the comparison report from MLflow alone")
    rp.add_argument("--experiment", required=True, help="MLflow experiment (e.g. ald-tune-digits)")
    store_args(rp)
    rp.add_argument(
        "--out", default=None, help="report folder (default RUN_DIR/results/EXPERIMENT)"
    )
    rp.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="KIND=NAME",
        help="pin a sweep by name (KIND: grid, asha, fixed, nested, ald); default: the newest "
        "complete compare. Several ald=NAME: one report each",
    )
    rp.add_argument(
        "--log",
        action="store_true",
        help="also attach the rebuilt report to the sweeps' parent runs (default: read only; "
        "compare already logged it)",
    )
    rp.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (the compare's name, the report folder, each rule's "
        "comparison.json) instead of the Markdown",
    )
    rc = sub.add_parser("recommend", help="the recommended n_z of the newest comparison in MLflow")
    rc.add_argument("--experiment", required=True, help="MLflow experiment (e.g. ald-tune-digits)")
    store_args(rc)
    rc.add_argument("--rule", default=None, help="the ALD rule (default: the compare's main rule)")
    rc.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="KIND=NAME",
        help="pin a sweep by name, as for report",
    )
    rc.add_argument("--json", action="store_true", help="print one JSON object (for scripts)")


def _other_parsers(sub) -> None:
    """``ald-tune optuna``, ``ui`` and ``backfill``."""
    op = sub.add_parser(
        "optuna",
        help="an ALD or grid sweep under plain Optuna (no Ray); "
        "with --storage, a study optuna-dashboard can open",
    )
    space_args(op)
    op.add_argument(
        "--mode",
        choices=("ald", "grid"),
        default="ald",
        help="ald (self-shrinking trials) or grid (one fixed-n_z trial per grid point); "
        "default: ald",
    )
    op.add_argument(
        "--storage",
        default=None,
        metavar="URL",
        help="Optuna storage, e.g. sqlite:////abs/path/optuna.db (default: in memory)",
    )
    op.add_argument("--study-name", default=None, help="continue this study in --storage")
    op.add_argument(
        "--n-trials",
        type=int,
        default=None,
        help="default: tune.num_samples (ald) or the grid's size (grid)",
    )
    store_args(op)
    op.add_argument("--no-tracking", action="store_true", help="run without MLflow")
    op.add_argument(
        "--experiment", default=None, help="MLflow experiment (default ald-tune-DATASET)"
    )
    _ui_parser(sub)
    bf = sub.add_parser(
        "backfill",
        help="log into MLflow what a sweep recorded while the "
        "tracking server was down (from Tune's results)",
    )
    bf.add_argument("--name", required=True, help="the sweep's name (its Tune folder)")
    bf.add_argument(
        "--storage",
        default=None,
        help="Tune storage the sweep used (default: $ALD_TUNE_STORAGE or RUN_DIR/ray)",
    )
    bf.add_argument("--run-dir", default="runs", help="run folder of the default storage")
    bf.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow URI (default: the one the sweep's trials recorded)",
    )


def _ui_parser(sub) -> None:
    """``ald-tune ui``."""
    ui = sub.add_parser("ui", help="open the MLflow UI on the default store")
    ui.add_argument(
        "--run-dir", default="runs", help="run folder holding mlflow.db (default: runs)"
    )
    ui.add_argument(
        "--tracking-uri",
        default=None,
        help="another store (default: $MLFLOW_TRACKING_URI, else RUN_DIR/mlflow.db); an "
        "http(s):// server serves its own UI: its links are printed, nothing starts",
    )
    ui.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1 only)")
    ui.add_argument("--port", type=int, default=5000, help="port to serve on (default: 5000)")
    ui.add_argument("--experiment", default=None, help="print the link to this experiment only")


def _command(name: str):
    module, _, function = COMMANDS[name].partition(":")
    return getattr(importlib.import_module(module), function)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ald-tune`` console command.

    Returns:
        The process exit code: 0 on success, 2 for bad configuration or data, 130 when
        interrupted by Ctrl-C and 143 by SIGTERM, with a line that says how to resume.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compare"]:
        return _command_compare(argv[1:])
    args = build_parser().parse_args(argv)
    return run_command(
        lambda: _command(args.command)(args), "ald-tune", debug=getattr(args, "debug", False)
    )


def _command_compare(argv: list[str]) -> int:
    """``ald-tune compare``: the comparison's own parser and help (``ald-tune compare --help``)."""
    compare = importlib.import_module("ald_tune.cli.compare")
    return compare.main(argv, prog="ald-tune compare", modes=False)
