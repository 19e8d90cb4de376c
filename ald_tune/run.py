"""The speed-versus-optimality comparison: grid sweep, ALD sweep, report.

Runs as a script in a checkout, on any machine with ald-tune installed, and as
the target of the Ray cluster launcher, which copies only this one file to the
head node::

    python ald_tune/run.py                                  # digits, this machine
    python ald_tune/run.py --space search_spaces/mnist.yaml --preset quick
    ray submit cluster.yaml ald_tune/run.py -- --space search_spaces/mnist.yaml

Modes: ``compare`` (default: grid, then one ALD sweep per rule in ``--rules``,
then fixed runs at ALD's chosen n_z, then one report per rule and a side-by-side
table), ``ald``, ``grid``. ``ray.init()`` joins a running cluster
(``$RAY_ADDRESS`` or the one started by ``ray start`` on this node) or starts
a local one. Search spaces are found by path, else among the spaces bundled
with the installed package (``--space mnist`` works anywhere).
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":  # pragma: no cover - script start-up
    # Run as a file, Python puts this folder first on sys.path, where config.py,
    # metrics.py... would shadow top-level modules; the installed package is wanted.
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import argparse  # noqa: E402
from dataclasses import replace  # noqa: E402
import time  # noqa: E402
from typing import Sequence  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    from ald_tune.cli import _sweep_args

    p = argparse.ArgumentParser(prog="ald_tune/run.py", description=(
        "Run the grid and ALD sweeps from one search space and compare them."))
    p.add_argument("mode", nargs="?", default="compare", choices=("compare", "ald", "grid"))
    _sweep_args(p)
    p.add_argument("--out", default=None,
                   help="report folder (default: RUN_DIR/results/<dataset>-<time>)")
    p.add_argument("--rules", default=None,
                   help="ALD rules, comma-separated: one ALD sweep per rule (default: "
                        "both for compare, the space's ald.rule first; that rule alone for ald)")
    p.add_argument("--no-fixed", action="store_true",
                   help="skip the fixed runs at ALD's chosen n_z (report uses grid points)")
    return p


def _opts(args, mode: str, space: str, label: str | None = None, dataset: str = ""):
    from ald_tune.tuners import SweepOptions
    label = label or mode
    name = f"{args.name}-{label}" if args.name else None
    opts = SweepOptions(mode=mode, space=space, name=name, run_dir=args.run_dir,
                        storage=args.storage, tracking_uri=args.tracking_uri,
                        tracking=not args.no_tracking, experiment=args.experiment,
                        resume=False, address=args.address, label=label)
    # --resume continues the stages that had started; a stage the interrupted
    # comparison never reached starts fresh.
    return replace(opts, resume=bool(args.resume) and _started(opts, name, label, dataset))


def _started(opts, name: str | None, label: str, dataset: str) -> bool:
    import glob

    from ald_tune.tuners import storage_path
    storage = storage_path(opts)
    if "://" in storage:
        return True  # remote storage: let Tune decide (restore fails loudly if absent)
    pattern = name or f"{label}-{dataset}-*"
    return bool(glob.glob(os.path.join(storage, pattern)))


def run_fixed_at(cfg, args, space: str, n_zs: Sequence[int]):
    """Fixed-size runs at ALD's chosen sizes that the grid did not cover (one seed each)."""
    from ald_tune.tuners import run_sweep

    missing = sorted(set(int(n) for n in n_zs) - set(cfg.grid.n_z))
    if not missing:
        return None
    sub = cfg.replace(grid={"n_z": missing}, tune={"scheduler": "fifo", "grid_seeds": 1})
    return run_sweep(sub, _opts(args, "grid", space, "fixed", cfg.data.name))


def parse_rules(text: str | None, default: str) -> list[str]:
    """The ``--rules`` list, checked before anything starts."""
    from ald_tune.config import RULES
    from ald_tune.errors import ConfigError

    rules = list(dict.fromkeys(r.strip() for r in (text or default).split(",") if r.strip()))
    bad = [r for r in rules if r not in RULES]
    if bad or not rules:
        raise ConfigError(f"--rules must list 'paper' and/or 'ald-tune', comma-separated. "
                          f"Got {text!r}. Fix: e.g. --rules paper,ald-tune.")
    return rules


def _ald_label(rule: str) -> str:
    return "ald" if rule == "paper" else "aldtune"


def compare(cfg, args, space: str, rules: list[str]) -> int:
    """Grid, ALD per rule, fixed runs at ALD's n_z, then the reports (printed and written)."""
    from ald_tune import report as rep
    from ald_tune.tuners import run_sweep

    stamp = time.strftime("%Y%m%d-%H%M%S")
    grid = run_sweep(cfg.replace(tune={"scheduler": "fifo"}),
                     _opts(args, "grid", space, None, cfg.data.name))
    # With tune.scheduler=asha, the grid + ASHA baseline runs as well (the stronger baseline).
    asha = run_sweep(cfg, _opts(args, "grid", space, "asha", cfg.data.name)) \
        if cfg.tune.scheduler == "asha" else None
    alds = {rule: run_sweep(cfg.replace(ald={"rule": rule}),
                            _opts(args, "ald", space, _ald_label(rule), cfg.data.name))
            for rule in rules}
    fixed = None if args.no_fixed else run_fixed_at(
        cfg, args, space, [t["final_n_z"] for a in alds.values() for t in a.trials])
    out = os.path.abspath(args.out or os.path.join(args.run_dir, "results",
                                                   f"{cfg.data.name}-{stamp}"))
    reports = {}
    for i, (rule, ald) in enumerate(alds.items()):
        report = rep.build_report(
            grid.trials, ald.trials, asha=asha.trials if asha else None,
            fixed=fixed.trials if fixed else None,
            wall={"grid": grid.wall_time_s, "ald": ald.wall_time_s,
                  **({"asha": asha.wall_time_s} if asha else {})},
            dataset=cfg.data.name)
        report["rule"] = rule
        reports[rule] = report
        for folder in ([out] if i == 0 else []) + [os.path.join(out, rule)]:
            paths = rep.write_report(report, folder)
        if grid.tracking_uri:
            runs = [r.parent_run_id for r in (grid, ald, fixed, asha)
                    if r is not None and r.parent_run_id]
            rep.log_report(grid.tracking_uri, runs, paths, report)
        print(f"# rule: {rule}\n" + rep.markdown(report))
    print(rep.write_rules_table(reports, out))
    print(f"report written to {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ald_tune/run.py`` (and ``ald-tune compare``)."""
    from ald_tune.cli import resolve_space, sweep_overrides
    from ald_tune.config import RULES, load_config
    from ald_tune.errors import ConfigError, DataError
    from ald_tune.tuners import init_ray, run_sweep

    args = build_parser().parse_args(argv)
    try:
        space = resolve_space(args.space)
        cfg = load_config(space, args.preset, sweep_overrides(args))
        # compare runs both rules by default, the configured one first (its report is the main one)
        both = ",".join(dict.fromkeys([cfg.ald.rule, *RULES]))
        rules = parse_rules(args.rules, both if args.mode == "compare" else cfg.ald.rule)
        if args.mode == "grid" and args.rules:
            raise ConfigError("--rules applies to the compare and ald modes, not grid. "
                              "Fix: drop --rules.")
        init_ray(args.address)
        if args.mode == "compare":
            return compare(cfg, args, space, rules)
        if args.mode == "grid":
            sweeps = [(cfg, _opts(args, "grid", space, None, cfg.data.name))]
        else:  # one ALD sweep per rule; one rule keeps the plain "ald" label when it is paper
            sweeps = [(cfg.replace(ald={"rule": r}),
                       _opts(args, "ald", space, _ald_label(r), cfg.data.name)) for r in rules]
        for sub, opts in sweeps:
            result = run_sweep(sub, replace(opts, resume=bool(args.resume)))
            print(result.table())
        return 0
    except (ConfigError, DataError) as exc:
        print(f"ald_tune/run.py: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
