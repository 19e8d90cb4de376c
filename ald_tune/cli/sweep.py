"""``ald-tune ald`` and ``ald-tune grid``: one sweep under Ray Tune, logged to MLflow."""

from __future__ import annotations

import argparse

from ald_tune.cli.common import print_config, resolve_space, sweep_overrides
from ald_tune.config.schema import load_config
from ald_tune.errors import ConfigError
from ald_tune.sweeps.run import run_sweep
from ald_tune.sweeps.tuner import SweepOptions
from ald_tune.tracking.store import redact_uri, ui_hint
from ald_tune.tracking.tracker import TrackingOptions


def sweep_options(args: argparse.Namespace, mode: str, space: str) -> SweepOptions:
    """The :class:`~ald_tune.sweeps.tuner.SweepOptions` of the sweep flags, built in one
    place for ``ald-tune ald|grid``, ``compare`` and ``run.py``."""
    return SweepOptions(
        mode=mode,
        space=space,
        name=args.name,
        run_dir=args.run_dir,
        storage=args.storage,
        resume=bool(args.resume),
        address=args.address,
        epoch_lines=bool(getattr(args, "verbose", False)),
    )


def tracking_options(args: argparse.Namespace) -> TrackingOptions | None:
    """The :class:`~ald_tune.tracking.tracker.TrackingOptions` of the tracking flags
    (None with ``--no-tracking``), built beside :func:`sweep_options` for the same
    commands."""
    if args.no_tracking:
        return None
    return TrackingOptions(uri=args.tracking_uri, experiment=args.experiment)


def run(args: argparse.Namespace) -> int:
    """``ald-tune ald|grid``: 0 when every trial ran through, 1 when one errored."""
    if args.command == "ald" and args.scheduler is not None:
        raise ConfigError(
            "--scheduler does nothing for ald sweeps (ALD trials end themselves; "
            "ASHA applies to the grid). Fix: drop --scheduler, or use it with "
            "`ald-tune grid` or `ald-tune compare`."
        )
    space = resolve_space(args.space)
    cfg = load_config(space, args.preset, sweep_overrides(args))
    if args.print_config:
        return print_config(cfg)
    opts = sweep_options(args, args.command, space)
    return report_sweep(run_sweep(cfg, opts, tracking_options(args)), args.run_dir)


def report_sweep(result, run_dir: str = "runs") -> int:
    """What every command prints after one sweep (``ald-tune ald|grid``, ``run.py
    ald|grid``): its table, where its results are; 0 when every trial ran through, 1
    when one errored."""
    print(result.table())
    print(
        f"{result.kind} sweep {result.name}: {len(result.trials)} trials in "
        f"{result.wall_s:.1f} s; Tune results in {result.path}"
    )
    if result.tracking_uri:
        print(
            f"MLflow: {redact_uri(result.tracking_uri)} (parent run {result.parent_run_id}); "
            + ui_hint(result.tracking_uri, run_dir)
        )
    return 0 if all(not t.errored for t in result.trials) else 1
