"""``ald-tune optuna``: an ALD or grid sweep under plain Optuna (no Ray), optionally stored
in a file that ``optuna-dashboard`` opens (``--storage sqlite:///...``)."""

from __future__ import annotations

import argparse

from ald_tune.cli.common import absolute_sqlite, print_config, resolve_space
from ald_tune.config.schema import load_config
from ald_tune.integrations.optuna.study import make_study, optimize
from ald_tune.tracking.store import resolve_tracking_uri


def run(args: argparse.Namespace) -> int:
    """``ald-tune optuna``."""
    cfg = load_config(resolve_space(args.space), args.preset, args.overrides)
    if args.print_config:
        return print_config(cfg)
    storage = absolute_sqlite(args.storage) if args.storage else None
    study = make_study(
        cfg,
        args.mode,
        study_name=args.study_name,
        storage=storage,
        load_if_exists=bool(args.study_name),
    )
    uri = None
    if not args.no_tracking:
        uri = resolve_tracking_uri(args.tracking_uri, args.run_dir)
    optimize(
        cfg,
        mode=args.mode,
        n_trials=args.n_trials,
        tracking_uri=uri,
        study=study,
        experiment=args.experiment,
    )
    print(f"{'trial':>6} {'state':>10} {'seed':>5} {'final n_z':>9} {'value':>10}")
    for t in study.trials:
        print(
            f"{t.number:>6} {t.state.name:>10} {t.user_attrs.get('seed')!s:>5} "
            f"{t.user_attrs.get('final_n_z', t.params.get('n_z'))!s:>9} "
            f"{t.value if t.value is not None else float('nan'):>10.3f}"
        )
    print(
        f"study {study.study_name}"
        + (
            f" in {storage}; open it with `optuna-dashboard {storage}`"
            if storage
            else " (in memory)"
        )
    )
    return 0
