"""``ald-tune ald`` and ``ald-tune grid``: one sweep under Ray Tune, logged to MLflow."""

from __future__ import annotations

import argparse

from ald_tune.cli.common import print_config, resolve_space, sweep_overrides
from ald_tune.config.schema import load_config
from ald_tune.errors import ConfigError
from ald_tune.sweeps.tuner import SweepOptions
from ald_tune.tracking.store import redact_uri, ui_hint
from ald_tune.tracking.sweep import run_sweep


def sweep_options(args: argparse.Namespace, mode: str, space: str):
    """The :class:`~ald_tune.sweeps.tuner.SweepOptions` of the sweep flags, built in one
    place for ``ald-tune ald|grid``, ``compare`` and ``run.py``."""
    return SweepOptions(
        mode=mode,
        space=space,
        name=args.name,
        run_dir=args.run_dir,
        storage=args.storage,
        tracking_uri=args.tracking_uri,
        tracking=not args.no_tracking,
        experiment=args.experiment,
        resume=bool(args.resume),
        address=args.address,
        epoch_lines=bool(getattr(args, "verbose", False)),
    )


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
    return report_sweep(run_sweep(cfg, sweep_options(args, args.command, space)), args.run_dir)


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
