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
import os
import warnings
from collections.abc import Sequence
from dataclasses import replace

from ald_tune.cli.common import print_config, resolve_space, sweep_args, sweep_overrides
from ald_tune.cli.main import run_command
from ald_tune.config.constraints import check_name
from ald_tune.config.kinds import RULES, SweepKind, default_stamp, read_sweep_file
from ald_tune.config.schema import load_config
from ald_tune.data.intrinsic import estimate_intrinsic_dim
from ald_tune.engine.trainer import load_splits
from ald_tune.errors import ConfigError
from ald_tune.report.comparison import (
    BASELINE_NAMES,
    BASELINES,
    DEFAULT_BASELINES,
    Comparison,
    log_comparison,
    render,
)
from ald_tune.report.methods import INTRINSIC_NAMES
from ald_tune.sweeps.tuner import SweepOptions, prepare, storage_path
from ald_tune.tracking.store import redact_uri
from ald_tune.tracking.sweep import mark_complete, run_sweep


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


class Plan:
    """The sweeps of one ``compare``: their names, kinds and what resumes.

    Every sweep of a compare is tagged with its name (``ald_tune.compare``); the names of
    its sweeps derive from it, so ``--resume`` finds every stage again.
    """

    def __init__(self, args, cfg, space: str) -> None:

        self.args, self.cfg, self.space = args, cfg, space
        dataset = cfg.data.name
        self.storage = storage_path(SweepOptions(run_dir=args.run_dir, storage=args.storage))
        if args.name:
            self.compare, self.stamp = args.name, None
        elif args.resume:
            self.compare, self.stamp = self._newest(dataset)
        else:
            self.stamp = default_stamp()
            self.compare = f"compare-{dataset}-{self.stamp}"

    def _newest(self, dataset: str) -> tuple[str, str]:
        import glob

        found = []
        for folder in glob.glob(os.path.join(self.storage, f"*-{dataset}-*")):
            info = read_sweep_file(folder)
            if str(info.get("compare", "")).startswith(f"compare-{dataset}-"):
                found.append((os.path.getmtime(folder), info["compare"]))
        if not found:
            raise ConfigError(
                f"--resume: no compare on {dataset} under {self.storage!r}. Fix: "
                "pass --name of the compare, or the same --storage/--run-dir."
            )
        compare = max(found)[1]
        return compare, compare[len(f"compare-{dataset}-") :]

    def name(self, label: str) -> str:
        if self.stamp is None:
            return f"{self.compare}-{label}"
        return f"{label}-{self.cfg.data.name}-{self.stamp}"

    def options(self, mode: str, kind: str, label: str, main_rule: str):
        """The options of one stage; it resumes only if it had started."""

        a = self.args
        name = self.name(label)
        started = "://" in self.storage or os.path.isdir(os.path.join(self.storage, name))
        return SweepOptions(
            mode=mode,
            space=self.space,
            name=name,
            run_dir=a.run_dir,
            storage=a.storage,
            tracking_uri=a.tracking_uri,
            tracking=not a.no_tracking,
            experiment=a.experiment,
            resume=bool(a.resume) and started,
            address=a.address,
            kind=kind,
            compare=self.compare,
            main_rule=main_rule,
        )


def run_fixed_at(plan: Plan, n_zs: Sequence[int], main_rule: str):
    """Fixed-size runs at ALD's chosen sizes that the grid did not cover (one seed each)."""

    cfg = plan.cfg
    missing = sorted(set(int(n) for n in n_zs) - set(cfg.grid.n_z))
    if not missing:
        return None
    sub = cfg.replace(grid={"n_z": missing}, tune={"scheduler": "fifo", "grid_seeds": 1})
    return run_sweep(sub, plan.options("grid", "fixed", "fixed", main_rule))


def compare(cfg, args, space: str, rules: list[str]) -> int:
    """Grid, ALD per rule, fixed runs at ALD's n_z, then the reports (printed, written, logged)."""

    plan, main = Plan(args, cfg, space), rules[0]
    baselines = parse_baselines(args.baselines)
    asha_cfg = cfg.replace(tune={"scheduler": "asha"}) if "asha" in baselines else None
    stages = [(cfg.replace(tune={"scheduler": "fifo"}), plan.options("grid", "grid", "grid", main))]
    if asha_cfg is not None:
        stages.append((asha_cfg, plan.options("grid", "asha", "asha", main)))
    nested = None
    if "nested" in baselines:  # one wide run per seed (as many as ALD's), every prefix evaluated
        nested = (
            cfg.replace(train={"nested_dropout": True}, tune={"scheduler": "fifo"}),
            plan.options("grid", "nested", "nested", main),
        )
        stages.append(nested)
    for rule in rules:
        stages.append(
            (
                cfg.replace(ald={"rule": rule}),
                plan.options("ald", "ald", SweepKind("ald", rule).label, main),
            )
        )
    for sub, opts in stages:  # every stage's input is checked before Ray starts
        prepare(sub, opts)
    print(
        f"compare {plan.compare}: grid, ALD with rule(s) {', '.join(rules)}"
        f"{'' if args.no_fixed else ', fixed runs at ALD n_z off the grid'}; baselines: "
        f"{', '.join(BASELINE_NAMES[b] for b in baselines) or 'none'}"
    )
    intrinsic = None
    if "id" in baselines:  # seconds, in this process, before any sweep
        intrinsic = estimate_intrinsic_dim(load_splits(cfg)[0].x, seed=cfg.train.seed)
        print(
            "intrinsic dimension of the training split: "
            + ", ".join(
                f"{INTRINSIC_NAMES[k]} {v['dimension']:.2f} "
                f"(n_z {v['n_z']}, {v['cpu_s']:.1f} CPU-s)"
                for k, v in intrinsic.items()
            )
        )
    grid = run_sweep(
        cfg.replace(tune={"scheduler": "fifo"}), plan.options("grid", "grid", "grid", main)
    )
    asha = (
        run_sweep(asha_cfg, plan.options("grid", "asha", "asha", main))
        if asha_cfg is not None
        else None
    )
    nested_sweep = run_sweep(*nested) if nested is not None else None
    alds = {}
    for rule in rules:
        kind = SweepKind("ald", rule)
        alds[rule] = run_sweep(
            cfg.replace(ald={"rule": rule}), plan.options("ald", "ald", kind.label, main)
        )
    fixed = (
        None
        if args.no_fixed
        else run_fixed_at(
            plan, [t.final_n_z for a in alds.values() for t in a.trials if t.final_n_z], main
        )
    )
    sweeps = [s for s in (grid, asha, nested_sweep, fixed, *alds.values()) if s is not None]
    mark_complete(sweeps)
    comp = Comparison(
        grid=grid,
        alds=alds,
        asha=asha,
        fixed=fixed,
        dataset=cfg.data.name,
        compare=plan.compare,
        metric=cfg.tune.metric,
        intrinsic=intrinsic,
        baselines=baselines,
        nested=nested_sweep,
    ).build()
    out = os.path.abspath(
        args.out
        or os.path.join(args.run_dir, "results", f"{cfg.data.name}-{plan.stamp or plan.compare}")
    )
    paths = comp.write(out)
    if grid.tracking_uri:
        try:
            log_comparison(grid.tracking_uri, comp, paths)
        except Exception as exc:  # the report is written; MLflow can have it later
            warnings.warn(
                f"the comparison could not be logged to MLflow ({redact_uri(exc)}); it "
                f"is in {out}. Fix: once the server is up, `ald-tune backfill --name "
                f"SWEEP` for each sweep, then `ald-tune report --experiment "
                f"ald-tune-{cfg.data.name}`.",
                RuntimeWarning,
                stacklevel=2,
            )
    print(render(comp))
    print(f"report written to {out}")
    return 0


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
        return compare(cfg, args, space, rules)
    base = SweepOptions(
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
    )
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
    for sub, opts in sweeps:
        print(run_sweep(sub, opts).table())
    return 0
