"""The ``ald-tune`` command line. Arguments are parsed only in :func:`main`.

Commands:
    ald-tune train --space FILE [--preset P] [--set section.field=value ...] [--out DIR]
                   [--fixed-nz K] [--resume DIR] [--tracking-uri URI]
        One ALD run (or one fixed-size run) on this machine, no Ray (to MLflow if asked).
    ald-tune ald  --space FILE [sweep options]   ALD trials (seeds) under Ray Tune -> MLflow
    ald-tune grid --space FILE [sweep options]   the grid over fixed n_z under Ray Tune -> MLflow
    ald-tune compare [--space FILE] [...]        grid + ALD + report (= python ald_tune/run.py)
    ald-tune report --experiment NAME [--out DIR] rebuild the comparison from MLflow alone
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
import json
import os
import sys
import time
import warnings
from typing import Any, Sequence

from ._version import __version__
from .backfill import add_parser as add_backfill_parser
from .backfill import cmd_backfill
from .errors import ConfigError, DataError


def _space_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--space", default=None,
                   help="search-space YAML (default: the bundled digits space)")
    p.add_argument("--preset", default=None, help="a preset named in the space file")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="SECTION.FIELD=VALUE", help="override one config field (repeatable)")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config (after presets and --set) as YAML and exit")


def _store_args(p: argparse.ArgumentParser, run_dir_help: str = "run folder (default: runs)") -> None:
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow URI (default: $MLFLOW_TRACKING_URI or sqlite in RUN_DIR)")
    p.add_argument("--run-dir", default="runs", help=run_dir_help)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ald-tune", description=(
        "Choose a VAE's latent size n_z with one self-shrinking run (ALD-VAE) or a grid."))
    parser.add_argument("--version", action="version", version=f"ald-tune {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="one ALD (or fixed-size) training run, no Ray")
    _space_args(tr)
    tr.add_argument("--out", default=None, help="output folder (default: runs/train-<time>)")
    tr.add_argument("--fixed-nz", type=int, default=None, metavar="K",
                    help="train the fixed-size baseline at n_z=K instead of ALD")
    tr.add_argument("--resume", default=None, metavar="CKPT",
                    help="continue from a checkpoint file or the folder holding checkpoint.pt")
    tr.add_argument("--checkpoint-every", type=int, default=5, metavar="N",
                    help="write OUT/checkpoint.pt (and send MLflow its buffer) every N epochs "
                         "(0: only at the end)")
    tr.add_argument("--tracking-uri", default=None,
                    help="log the run to MLflow like a trial: metrics per epoch with n_z, "
                         "images with steps, the model (default: no tracking)")
    tr.add_argument("--experiment", default=None,
                    help="MLflow experiment with --tracking-uri (default ald-tune-DATASET)")
    for mode, text in (("ald", "ALD trials (one per seed) under Ray Tune, logged to MLflow"),
                       ("grid", "the grid over fixed n_z under Ray Tune, logged to MLflow")):
        sweep_args(sub.add_parser(mode, help=text), scheduler=True)
    sub.add_parser("compare", add_help=False,
                   help="grid + ALD sweeps and the report (see: ald-tune compare --help)")
    rp = sub.add_parser("report", help="rebuild the comparison report from MLflow alone")
    rp.add_argument("--experiment", required=True, help="MLflow experiment (e.g. ald-tune-digits)")
    _store_args(rp)
    rp.add_argument("--out", default=None, help="report folder (default RUN_DIR/results/EXPERIMENT)")
    rp.add_argument("--sweep", action="append", default=[], metavar="KIND=NAME",
                    help="pin a sweep by name (KIND: grid, asha, fixed, ald); default: the newest "
                         "complete compare. Several ald=NAME: one report each")
    rp.add_argument("--no-log", action="store_true",
                    help="do not attach the rebuilt report to the parent runs")
    rc = sub.add_parser("recommend", help="the recommended n_z of the newest comparison in MLflow")
    rc.add_argument("--experiment", required=True, help="MLflow experiment (e.g. ald-tune-digits)")
    _store_args(rc)
    rc.add_argument("--rule", default=None, help="the ALD rule (default: the compare's main rule)")
    rc.add_argument("--sweep", action="append", default=[], metavar="KIND=NAME",
                    help="pin a sweep by name, as for report")
    rc.add_argument("--json", action="store_true", help="print one JSON object (for scripts)")
    op = sub.add_parser("optuna", help="an ALD or grid sweep under plain Optuna (no Ray); "
                                       "with --storage, a study optuna-dashboard can open")
    _space_args(op)
    op.add_argument("--mode", choices=("ald", "grid"), default="ald")
    op.add_argument("--storage", default=None, metavar="URL",
                    help="Optuna storage, e.g. sqlite:////abs/path/optuna.db (default: in memory)")
    op.add_argument("--study-name", default=None, help="continue this study in --storage")
    op.add_argument("--n-trials", type=int, default=None,
                    help="default: tune.num_samples (ald) or the grid's size (grid)")
    _store_args(op)
    op.add_argument("--no-tracking", action="store_true", help="run without MLflow")
    op.add_argument("--experiment", default=None, help="MLflow experiment (default ald-tune-DATASET)")
    ui = sub.add_parser("ui", help="open the MLflow UI on the default store")
    ui.add_argument("--run-dir", default="runs", help="run folder holding mlflow.db (default: runs)")
    ui.add_argument("--tracking-uri", default=None, help="another store (default: RUN_DIR/mlflow.db)")
    ui.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1 only)")
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--experiment", default=None, help="print the link to this experiment only")
    add_backfill_parser(sub)
    return parser


def sweep_args(p: argparse.ArgumentParser, scheduler: bool = False) -> None:
    """The options of ``ald``, ``grid`` and ``compare``."""
    _space_args(p)
    _store_args(p, "folder for the default Tune storage and MLflow store (default: runs)")
    p.add_argument("--storage", default=None,
                   help="Tune storage path or URI (default RUN_DIR/ray; shared on clusters)")
    p.add_argument("--no-tracking", action="store_true", help="run without MLflow")
    p.add_argument("--experiment", default=None, help="MLflow experiment (default ald-tune-DATASET)")
    p.add_argument("--name", default=None, help="sweep name (default KIND-DATASET-TIME)")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted sweep (--name, or the newest of this kind)")
    p.add_argument("--address", default=None, help="Ray cluster address (default: local)")
    p.add_argument("--cpus-per-trial", type=float, default=None, help="= --set tune.cpus_per_trial")
    p.add_argument("--gpus-per-trial", type=float, default=None, help="= --set tune.gpus_per_trial")
    if scheduler:
        p.add_argument("--scheduler", choices=("fifo", "asha"), default=None,
                       help="grid scheduler (= --set tune.scheduler; not for ald)")


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
    raise ConfigError(f"search-space file {name[:300]!r} does not exist (not a path, and not a "
                      "bundled space). Fix: pass --space search_spaces/digits.yaml.")


def print_config(cfg) -> int:
    """``--print-config``: the resolved config as YAML, nothing else runs."""
    import yaml

    print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
    return 0


def _train_logger(args: argparse.Namespace, trainer, out: str):
    """``train --tracking-uri``: one MLflow run logged like a trial (reopened on --resume)."""
    from .kinds import SweepKind
    from .tracking import check_tracking, client, ensure_experiment, filter_params, \
        resolve_tracking_uri
    from .trial_logger import TrialLogger

    cfg = trainer.cfg
    uri = resolve_tracking_uri(args.tracking_uri, "runs")
    check_tracking(uri)
    exp_id = ensure_experiment(client(uri), args.experiment or f"ald-tune-{cfg.data.name}")
    kind = SweepKind("ald", cfg.ald.rule) if trainer.fixed_n_z is None else SweepKind("fixed")
    tags = {**kind.tags(), "ald_tune.runner": "train", "ald_tune.seed": str(cfg.train.seed),
            "ald_tune.out": out}
    params = {**filter_params(cfg), "n_z_init": trainer.history[0]["n_z"] if trainer.history
              else trainer.model.n_z}
    logger = TrialLogger(uri, exp_id, None, f"train-{os.path.basename(out)}", tags, params,
                         f"train-{os.path.basename(out)}", run_id=trainer.tracking_run_id)
    trainer.tracking_run_id = logger.run_id
    return logger


def cmd_train(args: argparse.Namespace) -> int:
    from .checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
    from .config import load_config
    from .loop import Trainer
    from .trainables import report_metrics

    if args.fixed_nz is not None and args.fixed_nz < 1:
        raise ConfigError(f"--fixed-nz must be a positive int. Got {args.fixed_nz} instead.")
    out = os.path.abspath(args.out or os.path.join("runs", time.strftime("train-%Y%m%d-%H%M%S")))
    if args.resume:
        trainer = Trainer.from_checkpoint(load_checkpoint(args.resume))
        if args.print_config:
            return print_config(trainer.cfg)
        print(f"resumed at epoch {trainer.epoch}, n_z={trainer.model.n_z}")
    else:
        cfg = load_config(resolve_space(args.space), args.preset, args.overrides)
        if args.print_config:
            return print_config(cfg)
        trainer = Trainer(cfg, fixed_n_z=args.fixed_nz)
    cfg = trainer.cfg
    logger = _train_logger(args, trainer, out) if args.tracking_uri else None
    print(f"ald-tune train: {trainer.mode} run on {cfg.data.name} "
          f"({trainer.train_data.n_samples} train / {trainer.val_data.n_samples} val), "
          f"n_z={trainer.model.n_z}, {cfg.train.epochs} epochs, device {trainer.device}, "
          f"FID features: {cfg.eval.fid_extractor}; output {out}")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        for result in trainer:
            print(result.line(), flush=True)
            if logger is not None:
                logger.log_epoch(result.epoch, report_metrics(result, trainer))
                if result.epoch % cfg.eval.image_every == 0 or result.done:
                    logger.log_images(trainer.images(), result.epoch)
            if args.checkpoint_every and (result.epoch + 1) % args.checkpoint_every == 0:
                if logger is not None:
                    logger.flush()
                save_checkpoint(trainer.checkpoint(), os.path.join(out, CHECKPOINT_FILE))
    save_checkpoint(trainer.checkpoint(), os.path.join(out, CHECKPOINT_FILE))
    paths = trainer.save_outputs(out)
    if logger is not None:
        logger.log_final(trainer)
        logger.finish()
    s = trainer.summary()
    print(f"final n_z = {s['final_n_z']} (stop epoch: {s['stop_epoch']}, "
          f"floor reached: {s['floor_reached']}); {s['trial_epochs']} trial-epochs in "
          f"{s['wall_time_s']:.1f} s (train {s['train_time_s']:.1f} s, eval {s['eval_time_s']:.1f} s)")
    print("wrote " + ", ".join(os.path.basename(p) for p in paths.values()) + f" to {out}")
    if logger is not None and logger.run_id:
        print(f"MLflow run {logger.run_id}; open it with `ald-tune ui`")
    return 0


def sweep_overrides(args: argparse.Namespace) -> list[str]:
    """CLI flags that are config fields become ``--set`` overrides (validated the same way)."""
    extra = []
    for flag, field in (("cpus_per_trial", "tune.cpus_per_trial"),
                        ("gpus_per_trial", "tune.gpus_per_trial"), ("scheduler", "tune.scheduler")):
        value = getattr(args, flag, None)
        if value is not None:
            extra.append(f"{field}={value}")
    return [*args.overrides, *extra]


def cmd_sweep(args: argparse.Namespace) -> int:
    from .config import load_config
    from .tracking import redact_uri
    from .tuners import SweepOptions, run_sweep

    if args.command == "ald" and args.scheduler is not None:
        raise ConfigError("--scheduler does nothing for ald sweeps (ALD trials end themselves; "
                          "ASHA applies to the grid). Fix: drop --scheduler, or use it with "
                          "`ald-tune grid` or `ald-tune compare`.")
    space = resolve_space(args.space)
    cfg = load_config(space, args.preset, sweep_overrides(args))
    if args.print_config:
        return print_config(cfg)
    opts = SweepOptions(mode=args.command, space=space, name=args.name, run_dir=args.run_dir,
                        storage=args.storage, tracking_uri=args.tracking_uri,
                        tracking=not args.no_tracking, experiment=args.experiment,
                        resume=args.resume, address=args.address)
    result = run_sweep(cfg, opts)
    print(result.table())
    print(f"{result.kind} sweep {result.name}: {len(result.trials)} trials in "
          f"{result.wall_s:.1f} s; Tune results in {result.path}")
    if result.tracking_uri:
        print(f"MLflow: {redact_uri(result.tracking_uri)} (parent run {result.parent_run_id}); "
              "open it with `ald-tune ui`")
    return 0 if all(t.finished or t.status == "STOPPED" for t in result.trials) else 1


def cmd_report(args: argparse.Namespace) -> int:
    from .comparison import log_comparison, render
    from .report_mlflow import comparison_from_mlflow, parse_pins
    from .tracking import check_tracking, resolve_tracking_uri

    pins = parse_pins(args.sweep)
    uri = resolve_tracking_uri(args.tracking_uri, args.run_dir)
    check_tracking(uri)
    comp = comparison_from_mlflow(uri, args.experiment, pins=pins)
    out = os.path.abspath(args.out or os.path.join(args.run_dir, "results", args.experiment))
    paths = comp.write(out)
    if not args.no_log:
        log_comparison(uri, comp, paths)
    print(comp.note)
    print(render(comp))
    print(f"report written to {out}")
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from .comparison import recommendation_text
    from .report_mlflow import parse_pins, recommend_from_mlflow
    from .tracking import check_tracking, resolve_tracking_uri

    uri = resolve_tracking_uri(args.tracking_uri, args.run_dir)
    check_tracking(uri)
    rec = recommend_from_mlflow(uri, args.experiment, pins=parse_pins(args.sweep), rule=args.rule)
    if args.json:
        print(json.dumps(rec))
    else:
        print(recommendation_text(rec))
        print(f"(from sweep {rec['sweep']} in experiment {args.experiment!r})")
    return 0


def cmd_optuna(args: argparse.Namespace) -> int:
    from .config import load_config
    from .optuna_objective import make_study, optimize

    cfg = load_config(resolve_space(args.space), args.preset, args.overrides)
    if args.print_config:
        return print_config(cfg)
    storage = absolute_sqlite(args.storage) if args.storage else None
    study = make_study(cfg, args.mode, study_name=args.study_name, storage=storage,
                       load_if_exists=bool(args.study_name))
    uri = None
    if not args.no_tracking:
        from .tracking import resolve_tracking_uri
        uri = resolve_tracking_uri(args.tracking_uri, args.run_dir)
    optimize(cfg, mode=args.mode, n_trials=args.n_trials, tracking_uri=uri, study=study,
             experiment=args.experiment)
    print(f"{'trial':>6} {'state':>10} {'seed':>5} {'final n_z':>9} {'value':>10}")
    for t in study.trials:
        print(f"{t.number:>6} {t.state.name:>10} {str(t.user_attrs.get('seed')):>5} "
              f"{str(t.user_attrs.get('final_n_z', t.params.get('n_z'))):>9} "
              f"{t.value if t.value is not None else float('nan'):>10.3f}")
    print(f"study {study.study_name}" + (f" in {storage}; open it with `optuna-dashboard "
                                          f"{storage}`" if storage else " (in memory)"))
    return 0


def absolute_sqlite(url: str) -> str:
    """``sqlite:///rel.db`` made absolute (relative paths depend on the working directory)."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        return "sqlite:///" + os.path.abspath(url[len("sqlite:///"):])
    return url


def experiment_links(uri: str, base: str, only: str | None = None) -> list[str]:
    """Deep links that open each experiment on MLflow 3's runs view (not the GenAI page)."""
    from .tracking import client

    exps = client(uri).search_experiments(max_results=200)
    return [f"{e.name}: {base}/#/experiments/{e.experiment_id}?workflowType=machine_learning"
            for e in exps if only is None or e.name == only]


def cmd_ui(args: argparse.Namespace) -> int:
    import signal
    import subprocess

    from .tracking import artifact_root, redact_uri, resolve_tracking_uri

    uri = resolve_tracking_uri(args.tracking_uri, args.run_dir)
    base = f"http://{args.host}:{args.port}"
    print(f"MLflow UI for {redact_uri(uri)} on {base} (Ctrl-C to stop)")
    # No job runner and its worker processes (MLflow 3 starts 7 unless told not to).
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true",
           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
           "--host", args.host, "--port", str(args.port), "--workers", "1"]
    root = artifact_root(uri)
    if root:
        cmd += ["--default-artifact-root", root]
    if uri.startswith("sqlite:///"):
        os.makedirs(os.path.dirname(uri[len("sqlite:///"):]), exist_ok=True)
    try:
        for line in experiment_links(uri, base, args.experiment):
            print("  " + line)
    except Exception:  # a new, empty store: MLflow creates its tables at server start
        pass
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)

    def stop(signum, frame):  # SIGTERM stops the server's whole process group with us
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop_group(proc)


def _stop_group(proc) -> None:
    import signal
    import subprocess

    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


COMMANDS: dict[str, Any] = {"train": cmd_train, "ald": cmd_sweep, "grid": cmd_sweep,
                            "ui": cmd_ui, "report": cmd_report, "recommend": cmd_recommend,
                            "optuna": cmd_optuna, "backfill": cmd_backfill}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ald-tune`` console command.

    Returns:
        The process exit code: 0 on success, 2 for bad configuration or data.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compare"]:
        from .run import main as run_main
        return run_main(argv[1:], prog="ald-tune compare", modes=False)
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, DataError) as exc:
        print(f"ald-tune: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
