"""``ald-tune backfill``: log into MLflow what a sweep recorded while the server was down."""

from __future__ import annotations

import argparse
import os

from ald_tune.errors import ConfigError
from ald_tune.sweeps.backfill import backfill
from ald_tune.sweeps.tuner import SweepOptions, storage_path


def run(args: argparse.Namespace) -> int:
    """``ald-tune backfill --name SWEEP [--storage PATH] [--tracking-uri URI]``."""
    storage = storage_path(SweepOptions(run_dir=args.run_dir, storage=args.storage))
    if "://" in storage:
        raise ConfigError(
            f"--storage {storage!r} is remote; backfill reads a local folder. "
            "Fix: copy the sweep's folder here and pass its parent as --storage."
        )
    path = os.path.join(storage, args.name)
    added = backfill(path, args.tracking_uri)
    for trial_id, n in sorted(added.items()):
        print(f"{trial_id:<24} {n:>5} epochs added")
    print(
        f"backfill of {path}: {sum(added.values())} epochs added to "
        f"{sum(1 for n in added.values() if n)} of {len(added)} tracked trial run(s)."
    )
    return 0
