"""``ald-tune compare`` and ``ald_tune/run.py``: grid sweep, ALD sweeps, fixed runs, report.

Modes: ``compare`` (default: grid, the baselines in ``--baselines`` (grid + ASHA, the
units in use of the grid's widest trial, the intrinsic dimension of the data, and on
request nested dropout: one wide run per seed, every grid-size prefix evaluated), one ALD
sweep per rule in ``--rules``, then fixed runs at ALD's chosen n_z, then one report
per rule, the side-by-side table and the recommended n_z), ``ald``, ``grid``.
``ray.init()`` joins a running cluster (``$RAY_ADDRESS`` or the one started by
``ray start`` on this node) or starts a local one. Search spaces are found by path,
else among the spaces bundled with the installed package (``--space mnist`` works
anywhere).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import replace

from ald_tune.cli.common import (
    print_config,
    resolve_space,
    run_command,
    sweep_args,
    sweep_overrides,
)
from ald_tune.cli.sweep import report_sweep, sweep_options, tracking_options
from ald_tune.config.constraints import check_name
from ald_tune.config.kinds import RULES, SweepKind
from ald_tune.config.schema import load_config
from ald_tune.errors import ConfigError
from ald_tune.report.comparison import BASELINES, DEFAULT_BASELINES, render
from ald_tune.report.workflow import CompareOptions, compare
from ald_tune.sweeps.run import run_sweep
from ald_tune.sweeps.tuner import prepare


def build_parser(prog: str = "ald_tune/run.py", modes: bool = True) -> argparse.ArgumentParser:
    """The comparison's options; ``modes`` adds the positional ``MODE`` of ``run.py``."""

    p = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Run the grid, the ALD sweeps (one per stop rule) and fixed runs at ALD's n_z from "
            "one search space; print and write one report per rule, the rules side by side and "
            "the recommended n_z, and log them to the sweeps' MLflow parent runs."
        ),
    )
    if modes:
        p.add_argument(
            "mode",
            nargs="?",
            default="compare",
            choices=("compare", "ald", "grid"),
            help="compare (default): everything; ald or grid: that sweep alone",
        )
    sweep_args(p, scheduler=True)
    p.add_argument(
        "--out", default=None, help="report folder (default: RUN_DIR/results/<dataset>-<time>)"
    )
    p.add_argument(
        "--rules",
        default=None,
        help="ALD rules (ald-tune, paper, units), comma-separated: one ALD sweep per rule "
        "(default: the space's ald.rule and paper for compare; that rule alone for ald)",
    )
    p.add_argument(
        "--baselines",
        default=",".join(DEFAULT_BASELINES),
        help="baselines run beside ALD, comma-separated, or none: asha (grid + ASHA), "
        "units (units in use in the grid's widest trial), id (intrinsic dimension, "
        "TwoNN and MLE), nested (nested dropout: one wide run per seed whose every "
        f"grid-size prefix is evaluated) (default: {','.join(DEFAULT_BASELINES)})",
    )
    p.add_argument(
        "--no-fixed",
        action="store_true",
        help="skip the fixed runs at ALD's chosen n_z (report uses grid points)",
    )
    return p


def parse_baselines(text: str) -> tuple[str, ...]:
    """The ``--baselines`` list, checked before anything starts."""

    items = [b.strip() for b in str(text).split(",") if b.strip()]
    if items == ["none"]:
        return ()
    bad = [b for b in items if b not in BASELINES]
    if bad or not items:
        raise ConfigError(
            f"--baselines must list {', '.join(BASELINES)} (comma-separated) or none. "
            f"Got {str(text)[:200]!r}. Fix: e.g. --baselines asha,id,nested."
        )
    return tuple(b for b in BASELINES if b in items)


def parse_rules(text: str | None, default: str) -> list[str]:
    """The ``--rules`` list, checked before anything starts."""

    rules = list(dict.fromkeys(r.strip() for r in (text or default).split(",") if r.strip()))
    bad = [r for r in rules if r not in RULES]
    if bad or not rules:
        raise ConfigError(
            f"--rules must list rules among {', '.join(repr(r) for r in RULES)}, "
            f"comma-separated. Got {str(text)[:200]!r}. Fix: e.g. --rules paper,ald-tune."
        )
    return rules


def check_flags(args, mode: str) -> None:
    """Flags that would do nothing for this mode are refused, before anything starts."""

    useless = {
        "ald": [
            (
                "--scheduler",
                args.scheduler is not None,
                "the grid and compare modes",
                "ALD trials end themselves; ASHA stops grid trials",
            ),
            ("--out", args.out is not None, "the compare mode", "only it writes a report"),
            ("--no-fixed", args.no_fixed, "the compare mode", "only it runs fixed runs"),
            *_baselines_flag(args),
        ],
        "grid": [
            (
                "--rules",
                args.rules is not None,
                "the compare and ald modes",
                "the grid has no stop rule",
            ),
            ("--out", args.out is not None, "the compare mode", "only it writes a report"),
            ("--no-fixed", args.no_fixed, "the compare mode", "only it runs fixed runs"),
            *_baselines_flag(args),
        ],
    }
    for flag, given, where, why in useless.get(mode, []):
        if given:
            raise ConfigError(f"{flag} applies to {where}, not {mode} ({why}). Fix: drop {flag}.")


def _baselines_flag(args) -> list[tuple[str, bool, str, str]]:
    given = args.baselines != ",".join(DEFAULT_BASELINES)
    return [("--baselines", given, "the compare mode", "only it runs the baselines")]


def main(
    argv: Sequence[str] | None = None, prog: str = "ald_tune/run.py", modes: bool = True
) -> int:
    """Entry point of ``ald_tune/run.py`` (and, with ``modes=False``, ``ald-tune compare``).

    Returns:
        The exit code: 0 on success, 2 for bad input (before Ray starts), 130 when
        interrupted by Ctrl-C, 143 by SIGTERM.
    """
    args = build_parser(prog, modes).parse_args(argv)
    return run_command(lambda: _main(args, prog), prog, debug=args.debug)


def _main(args, prog: str) -> int:
    mode = getattr(args, "mode", "compare")
    check_flags(args, mode)
    if mode == "compare":
        parse_baselines(args.baselines)
    if args.name is not None:
        check_name(args.name, "--name")
    space = resolve_space(args.space)
    cfg = load_config(space, args.preset, sweep_overrides(args))
    if args.print_config:
        return print_config(cfg)
    # compare runs the configured rule and the paper's by default, the configured one first
    # (its report is the main one); the units rule (0.2's) only when asked
    both = ",".join(dict.fromkeys([cfg.ald.rule, "paper"]))
    rules = parse_rules(args.rules, both if mode == "compare" else cfg.ald.rule)
    if mode == "compare":
        return _compare(args, cfg, space, rules)
    base, tracking = sweep_options(args, mode, space), tracking_options(args)
    if mode == "grid":
        sweeps = [(cfg, replace(base, name=args.name and f"{args.name}-grid"))]
    else:  # one ALD sweep per rule, named as compare names them
        sweeps = [
            (
                cfg.replace(ald={"rule": r}),
                replace(base, name=args.name and f"{args.name}-{SweepKind('ald', r).label}"),
            )
            for r in rules
        ]
    for sub, opts in sweeps:  # every sweep's input is checked before the first starts
        prepare(sub, opts)
    return max(report_sweep(run_sweep(sub, opts, tracking), args.run_dir) for sub, opts in sweeps)


def _compare(args: argparse.Namespace, cfg, space: str, rules: list[str]) -> int:
    """The comparison (:func:`ald_tune.report.workflow.compare`), printed."""

    opts = CompareOptions(
        sweep=sweep_options(args, "grid", space),
        tracking=tracking_options(args),
        rules=tuple(rules),
        baselines=parse_baselines(args.baselines),
        fixed=not args.no_fixed,
        out=args.out,
    )
    comp = compare(cfg, opts)
    print(render(comp))
    print(f"report written to {comp.out}")
    return 0
