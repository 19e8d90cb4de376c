"""The ``ald-tune`` command line. Arguments are parsed only in :func:`main`.

Commands:
    ald-tune train --space FILE [--preset P] [--set section.field=value ...] [--out DIR]
                   [--fixed-nz K] [--resume CKPT]
        One ALD run (or one fixed-size run) on this machine, no Ray.
    ald-tune ald  --space FILE [sweep options]   ALD trials (seeds) under Ray Tune -> MLflow
    ald-tune grid --space FILE [sweep options]   the grid over fixed n_z under Ray Tune -> MLflow
    ald-tune compare [--space FILE] [...]        grid + ALD + report (= python ald_tune/run.py)
    ald-tune report --experiment NAME [--out DIR] rebuild the comparison from MLflow alone
    ald-tune ui [--run-dir DIR] [--port P]        the MLflow UI for the default store
    ald-tune backfill --storage PATH --name SWEEP [--tracking-uri URI]
        log into MLflow what a sweep recorded while the tracking server was down
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from typing import Sequence

from .backfill import add_parser as add_backfill_parser
from .backfill import cmd_backfill
from .errors import ConfigError, DataError


def _space_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--space", default=None,
                   help="search-space YAML (default: the bundled digits space)")
    p.add_argument("--preset", default=None, help="a preset named in the space file")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="SECTION.FIELD=VALUE", help="override one config field (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ald-tune", description=(
        "Choose a VAE's latent size n_z with one self-shrinking run (ALD-VAE) or a grid."))
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="one ALD (or fixed-size) training run, no Ray")
    _space_args(tr)
    tr.add_argument("--out", default=None, help="output folder (default: runs/train-<time>)")
    tr.add_argument("--fixed-nz", type=int, default=None, metavar="K",
                    help="train the fixed-size baseline at n_z=K instead of ALD")
    tr.add_argument("--resume", default=None, metavar="CKPT",
                    help="continue from a checkpoint file or the folder holding checkpoint.pt")
    tr.add_argument("--checkpoint-every", type=int, default=5, metavar="N",
                    help="write OUT/checkpoint.pt every N epochs (0: only at the end)")
    for mode, text in (("ald", "ALD trials (one per seed) under Ray Tune, logged to MLflow"),
                       ("grid", "the grid over fixed n_z under Ray Tune, logged to MLflow")):
        _sweep_args(sub.add_parser(mode, help=text))
    sub.add_parser("compare", add_help=False,
                   help="grid + ALD sweeps and the report (see: ald-tune compare --help)")
    rp = sub.add_parser("report", help="rebuild the comparison report from MLflow alone")
    rp.add_argument("--experiment", required=True, help="MLflow experiment (e.g. ald-tune-digits)")
    rp.add_argument("--tracking-uri", default=None,
                    help="MLflow URI (default: $MLFLOW_TRACKING_URI or sqlite in RUN_DIR)")
    rp.add_argument("--run-dir", default="runs")
    rp.add_argument("--out", default=None, help="report folder (default RUN_DIR/results/EXPERIMENT)")
    rp.add_argument("--sweep", action="append", default=[], metavar="KIND=NAME",
                    help="pick a sweep by name (KIND: grid, ald, asha, fixed); default newest. "
                         "Several ald=NAME: one report each and a side-by-side table")
    ui = sub.add_parser("ui", help="open the MLflow UI on the default store")
    ui.add_argument("--run-dir", default="runs", help="run folder holding mlflow.db (default: runs)")
    ui.add_argument("--tracking-uri", default=None, help="another store (default: RUN_DIR/mlflow.db)")
    ui.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1 only)")
    ui.add_argument("--port", type=int, default=5000)
    add_backfill_parser(sub)
    return parser


def _sweep_args(p: argparse.ArgumentParser) -> None:
    _space_args(p)
    p.add_argument("--run-dir", default="runs",
                   help="folder for the default Tune storage and MLflow store (default: runs)")
    p.add_argument("--storage", default=None,
                   help="Tune storage path or URI (default RUN_DIR/ray; shared on clusters)")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow URI (default: $MLFLOW_TRACKING_URI or sqlite in RUN_DIR)")
    p.add_argument("--no-tracking", action="store_true", help="run without MLflow")
    p.add_argument("--experiment", default=None, help="MLflow experiment (default ald-tune-DATASET)")
    p.add_argument("--name", default=None, help="sweep name (default MODE-DATASET-TIME)")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted sweep (--name, or the newest of this mode)")
    p.add_argument("--address", default=None, help="Ray cluster address (default: local)")
    p.add_argument("--cpus-per-trial", type=float, default=None, help="= --set tune.cpus_per_trial")
    p.add_argument("--gpus-per-trial", type=float, default=None, help="= --set tune.gpus_per_trial")
    p.add_argument("--scheduler", choices=("fifo", "asha"), default=None,
                   help="grid scheduler (= --set tune.scheduler)")


def resolve_space(space: str | None) -> str:
    """A path as given, else a bundled space by file name (``digits.yaml`` or ``digits``)."""
    from importlib import resources

    name = space or "digits.yaml"
    if os.path.exists(name):
        return os.path.abspath(name)
    base = os.path.basename(name)
    base = base if base.endswith(".yaml") else base + ".yaml"
    bundled = resources.files("ald_tune").joinpath("search_spaces", base)
    if bundled.is_file():
        return str(bundled)
    raise ConfigError(f"search-space file {name!r} does not exist (not a path, and not a "
                      "bundled space). Fix: pass --space search_spaces/digits.yaml.")


def cmd_train(args: argparse.Namespace) -> int:
    from .checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
    from .config import load_config
    from .loop import Trainer

    if args.fixed_nz is not None and args.fixed_nz < 1:
        raise ConfigError(f"--fixed-nz must be a positive int. Got {args.fixed_nz} instead.")
    out = os.path.abspath(args.out or os.path.join("runs", time.strftime("train-%Y%m%d-%H%M%S")))
    if args.resume:
        trainer = Trainer.from_checkpoint(load_checkpoint(args.resume))
        print(f"resumed at epoch {trainer.epoch}, n_z={trainer.model.n_z}")
    else:
        cfg = load_config(resolve_space(args.space), args.preset, args.overrides)
        trainer = Trainer(cfg, fixed_n_z=args.fixed_nz)
    cfg = trainer.cfg
    print(f"ald-tune train: {trainer.mode} run on {cfg.data.name} "
          f"({trainer.train_data.n_samples} train / {trainer.val_data.n_samples} val), "
          f"n_z={trainer.model.n_z}, {cfg.train.epochs} epochs, device {trainer.device}, "
          f"FID features: {cfg.eval.fid_extractor}; output {out}")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        for result in trainer:
            print(result.line(), flush=True)
            if args.checkpoint_every and (result.epoch + 1) % args.checkpoint_every == 0:
                save_checkpoint(trainer.checkpoint(), os.path.join(out, CHECKPOINT_FILE))
    save_checkpoint(trainer.checkpoint(), os.path.join(out, CHECKPOINT_FILE))
    paths = trainer.save_outputs(out)
    s = trainer.summary()
    print(f"final n_z = {s['final_n_z']} (stop epoch: {s['stop_epoch']}, "
          f"floor reached: {s['floor_reached']}); {s['trial_epochs']} trial-epochs in "
          f"{s['wall_time_s']:.1f} s (train {s['train_time_s']:.1f} s, eval {s['eval_time_s']:.1f} s)")
    print("wrote " + ", ".join(os.path.basename(p) for p in paths.values()) + f" to {out}")
    return 0


def sweep_overrides(args: argparse.Namespace) -> list[str]:
    """CLI flags that are config fields become ``--set`` overrides (validated the same way)."""
    extra = []
    for flag, field in (("cpus_per_trial", "tune.cpus_per_trial"),
                        ("gpus_per_trial", "tune.gpus_per_trial"), ("scheduler", "tune.scheduler")):
        value = getattr(args, flag)
        if value is not None:
            extra.append(f"{field}={value}")
    return [*args.overrides, *extra]


def cmd_sweep(args: argparse.Namespace) -> int:
    from .config import load_config
    from .tracking import redact_uri
    from .tuners import SweepOptions, run_sweep

    space = resolve_space(args.space)
    cfg = load_config(space, args.preset, sweep_overrides(args))
    opts = SweepOptions(mode=args.command, space=space, name=args.name, run_dir=args.run_dir,
                        storage=args.storage, tracking_uri=args.tracking_uri,
                        tracking=not args.no_tracking, experiment=args.experiment,
                        resume=args.resume, address=args.address)
    result = run_sweep(cfg, opts)
    print(result.table())
    print(f"{args.command} sweep {result.name}: {len(result.trials)} trials in "
          f"{result.wall_time_s:.1f} s; Tune results in {result.path}")
    if result.tracking_uri:
        print(f"MLflow: {redact_uri(result.tracking_uri)} (parent run {result.parent_run_id}); "
              "open it with `ald-tune ui`")
    return 0 if all(t["status"] == "TERMINATED" for t in result.trials) else 1


def cmd_report(args: argparse.Namespace) -> int:
    from .report import markdown
    from .report_mlflow import report_from_mlflow
    from .tracking import check_tracking, resolve_tracking_uri

    uri = resolve_tracking_uri(args.tracking_uri, args.run_dir)
    check_tracking(uri)
    sweeps: dict[str, str] = {}
    alds: list[str] = []
    for item in args.sweep:
        kind, sep, name = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--sweep {item!r} must look like KIND=NAME, e.g. grid=grid-digits-...")
        if kind == "ald":
            alds.append(name)
        else:
            sweeps[kind] = name
    out = os.path.abspath(args.out or os.path.join(args.run_dir, "results", args.experiment))
    if len(alds) <= 1:
        report, _ = report_from_mlflow(uri, args.experiment, out,
                                       sweeps={**sweeps, **{"ald": n for n in alds}} or None)
        print(markdown(report))
        print(f"report written to {out}")
        return 0
    # Several ALD sweeps (e.g. one per rule): one report each against the same grid, then
    # the side-by-side table, as `ald-tune compare` prints it.
    from .report import write_rules_table
    reports = {}
    for name in alds:
        report, _ = report_from_mlflow(uri, args.experiment, os.path.join(out, name),
                                       sweeps={**sweeps, "ald": name})
        print(markdown(report))
        reports[f"{report.get('rule', '?')} ({name})"] = report
    print(write_rules_table(reports, out))
    print(f"reports written to {out}")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    import subprocess

    from .tracking import redact_uri, resolve_tracking_uri
    uri = resolve_tracking_uri(args.tracking_uri, args.run_dir)
    print(f"MLflow UI for {redact_uri(uri)} on http://{args.host}:{args.port} (Ctrl-C to stop)")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
           "--host", args.host, "--port", str(args.port)]
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 0


COMMANDS = {"train": cmd_train, "ald": cmd_sweep, "grid": cmd_sweep, "ui": cmd_ui,
            "report": cmd_report, "backfill": cmd_backfill}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ald-tune`` console command.

    Returns:
        The process exit code: 0 on success, 2 for bad configuration or data.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compare"]:
        from .run import main as run_main
        return run_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, DataError) as exc:
        print(f"ald-tune: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
