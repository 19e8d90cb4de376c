"""The comparison as one library call: :func:`compare` runs the grid, the baselines, one
ALD sweep per rule and the fixed runs at ALD's n_z, then builds, writes and logs the
report, and returns the :class:`~ald_tune.report.comparison.Comparison` (the same object
:func:`~ald_tune.report.mlflow_rebuild.comparison_from_mlflow` rebuilds from MLflow).

``ald-tune compare`` and ``ald_tune/run.py`` only parse their flags into a
:class:`CompareOptions` and call :func:`compare`; a notebook does the same::

    import ald_tune
    cfg = ald_tune.load_config("search_spaces/digits.yaml", overrides=["train.epochs=20"])
    comp = ald_tune.compare(cfg, ald_tune.CompareOptions(rules=("ald-tune", "paper")))
    comp.recommended
"""

from __future__ import annotations

import glob
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from ald_tune.config.kinds import RULES, SweepKind, default_stamp, read_sweep_file
from ald_tune.config.schema import Config
from ald_tune.data.intrinsic import estimate_intrinsic_dim
from ald_tune.engine.trainer import load_splits
from ald_tune.errors import ConfigError
from ald_tune.report.comparison import (
    BASELINE_NAMES,
    BASELINES,
    DEFAULT_BASELINES,
    Comparison,
    log_comparison,
)
from ald_tune.report.methods import INTRINSIC_NAMES
from ald_tune.sweeps.results import SweepRecord
from ald_tune.sweeps.run import DEFAULT_TRACKING, mark_complete, run_sweep
from ald_tune.sweeps.tuner import SweepOptions, prepare, storage_path
from ald_tune.tracking.store import redact_uri
from ald_tune.tracking.tracker import TrackingOptions


@dataclass(frozen=True)
class CompareOptions:
    """What a comparison runs and where (everything that is not the search space).

    Attributes:
        sweep: where and how each sweep runs (storage, Ray address, resume; its
            ``name`` is the compare's name, ``resume`` continues the compare of that
            name or the newest one on this dataset). ``mode``, ``kind``, ``compare`` and
            ``main_rule`` are set per sweep.
        tracking: where every sweep is logged in MLflow (default: the default store);
            None: untracked.
        rules: the ALD rules, one sweep each; the first one's report is the main one.
            Default: the config's ``ald.rule`` and ``paper``.
        baselines: run beside ALD (:data:`~ald_tune.report.comparison.BASELINES`).
        fixed: train fixed runs at ALD's chosen n_z that the grid lacks.
        out: the report folder; default ``<run_dir>/results/<dataset>-<time>``.
        log: where progress lines go (default ``print``).

    Raises:
        ConfigError: an unknown rule or baseline, naming it and the fix.
    """

    sweep: SweepOptions = field(default_factory=SweepOptions)
    tracking: TrackingOptions | None = DEFAULT_TRACKING
    rules: tuple[str, ...] | None = None
    baselines: tuple[str, ...] = DEFAULT_BASELINES
    fixed: bool = True
    out: str | None = None
    log: Callable[[str], None] = print

    def __post_init__(self) -> None:
        if self.rules is not None:
            object.__setattr__(self, "rules", tuple(dict.fromkeys(self.rules)))
            bad = [r for r in self.rules if r not in RULES]
            if bad or not self.rules:
                raise ConfigError(
                    f"rules must list rules among {', '.join(repr(r) for r in RULES)}. Got "
                    f"{list(self.rules)!r}. Fix: e.g. rules=('ald-tune', 'paper') "
                    "(--rules ald-tune,paper)."
                )
        bad = [b for b in self.baselines if b not in BASELINES]
        if bad:
            raise ConfigError(
                f"baselines must be among {', '.join(BASELINES)}. Got {list(self.baselines)!r}. "
                "Fix: e.g. baselines=('asha', 'id', 'nested') (--baselines asha,id,nested)."
            )
        object.__setattr__(self, "baselines", tuple(b for b in BASELINES if b in self.baselines))

    def rules_for(self, cfg: Config) -> list[str]:
        """The rules to run: as given, else the config's rule and the paper's."""
        return list(self.rules or dict.fromkeys([cfg.ald.rule, "paper"]))


class Plan:
    """The sweeps of one comparison: their names, kinds and what resumes.

    Every sweep of a compare is tagged with its name (``ald_tune.compare``); the names of
    its sweeps derive from it, so a resume finds every stage again.
    """

    def __init__(self, opts: CompareOptions, cfg: Config) -> None:
        self.opts, self.cfg = opts, cfg
        base = opts.sweep
        dataset = cfg.data.name
        self.storage = storage_path(base)
        if base.name:
            self.compare, self.stamp = base.name, None
        elif base.resume:
            self.compare, self.stamp = self._newest(dataset)
        else:
            self.stamp = default_stamp()
            self.compare = f"compare-{dataset}-{self.stamp}"

    def _newest(self, dataset: str) -> tuple[str, str]:
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

    def options(
        self, mode: str, kind: str, label: str, main_rule: str, old_labels: Sequence[str] = ()
    ) -> SweepOptions:
        """The options of one stage; it resumes only if it had started (under its name,
        or under a name an older version gave it: ``old_labels``)."""
        name = self.name(label)
        for old in old_labels if self.opts.sweep.resume else ():
            if not self._started(name) and self._started(self.name(old)):
                name = self.name(old)
        started = "://" in self.storage or self._started(name)
        return replace(
            self.opts.sweep,
            mode=mode,
            name=name,
            resume=self.opts.sweep.resume and started,
            kind=kind,
            compare=self.compare,
            main_rule=main_rule,
        )

    def _started(self, name: str) -> bool:
        return os.path.isdir(os.path.join(self.storage, name))

    def out(self) -> str:
        """The report folder."""
        default = os.path.join(
            self.opts.sweep.run_dir,
            "results",
            f"{self.cfg.data.name}-{self.stamp or self.compare}",
        )
        return os.path.abspath(self.opts.out or default)


def compare(cfg: Config, opts: CompareOptions | None = None) -> Comparison:
    """Grid, baselines, ALD per rule, fixed runs at ALD's n_z, then the report: built,
    written to ``opts.out`` and logged to the sweeps' MLflow parent runs.

    Every stage's input is checked before Ray starts. Ray joins a running cluster
    (``opts.sweep.address``, ``$RAY_ADDRESS`` or one started by ``ray start``) or starts
    a local one.

    Args:
        cfg: the search space and every setting of the trials.
        opts: what runs beside the grid and where (default: every default).

    Returns:
        The comparison, built and written (``render(comp)`` prints it; ``comp.out`` is
        the report folder, ``comp.paths`` its files).

    Raises:
        ConfigError: bad input, before any sweep starts.
        Interrupted: Ctrl-C or SIGTERM (every run it opened is marked KILLED).

    Example:
        >>> import ald_tune
        >>> opts = ald_tune.CompareOptions(rules=("paper",), baselines=("units",))
        >>> opts.rules, opts.fixed
        (('paper',), True)
    """
    opts = opts or CompareOptions()
    rules = opts.rules_for(cfg)
    plan, main = Plan(opts, cfg), rules[0]
    stages = _stages(cfg, plan, rules, opts.baselines, main)
    for sub, stage in stages.values():  # every stage's input is checked before Ray starts
        prepare(sub, stage)
    opts.log(
        f"compare {plan.compare}: grid, ALD with rule(s) {', '.join(rules)}"
        f"{', fixed runs at ALD n_z off the grid' if opts.fixed else ''}; baselines: "
        f"{', '.join(BASELINE_NAMES[b] for b in opts.baselines) or 'none'}"
    )
    intrinsic = _intrinsic(cfg, opts) if "id" in opts.baselines else None
    ran = {key: run_sweep(sub, stage, opts.tracking) for key, (sub, stage) in stages.items()}
    alds = {rule: ran[f"ald:{rule}"] for rule in rules}
    fixed = (
        _run_fixed_at(plan, [t.final_n_z for a in alds.values() for t in a.trials], main)
        if opts.fixed
        else None
    )
    mark_complete([*ran.values(), *([fixed] if fixed is not None else [])])
    return _reported(cfg, plan, opts, ran, alds, fixed, intrinsic)


def _reported(
    cfg: Config,
    plan: Plan,
    opts: CompareOptions,
    ran: dict[str, SweepRecord],
    alds: dict[str, SweepRecord],
    fixed: SweepRecord | None,
    intrinsic: dict | None,
) -> Comparison:
    """The comparison of the finished sweeps: built, written to the report folder and
    logged to the sweeps' MLflow parent runs."""
    grid = ran["grid"]
    comp = Comparison(
        grid=grid,
        alds=alds,
        asha=ran.get("asha"),
        fixed=fixed,
        dataset=cfg.data.name,
        compare=plan.compare,
        metric=cfg.tune.metric,
        intrinsic=intrinsic,
        baselines=opts.baselines,
        nested=ran.get("nested"),
    ).build()
    comp.write(plan.out())
    if grid.tracking_uri:
        _log(comp, grid.tracking_uri)
    return comp


def _log(comp: Comparison, uri: str) -> None:
    """The written comparison logged to its sweeps' parent runs; a store that cannot take
    it now loses nothing (the files are written) and the warning says how to add it later."""
    try:
        log_comparison(uri, comp, comp.paths)
    except Exception as exc:  # the report is written; MLflow can have it later
        warnings.warn(
            f"the comparison could not be logged to MLflow ({redact_uri(exc)}); it "
            f"is in {comp.out}. Fix: once the server is up, `ald-tune backfill --name "
            f"SWEEP` for each sweep, then `ald-tune report --log --experiment "
            f"ald-tune-{comp.dataset}`.",
            RuntimeWarning,
            stacklevel=3,
        )


def _stages(
    cfg: Config, plan: Plan, rules: Sequence[str], baselines: Sequence[str], main: str
) -> dict[str, tuple[Config, SweepOptions]]:
    """The sweeps a comparison runs, in order: grid, the baselines that are sweeps
    (ASHA; nested dropout: one wide run per seed, every prefix evaluated), ALD per rule."""
    fifo = cfg.replace(tune={"scheduler": "fifo"})
    stages = {"grid": (fifo, plan.options("grid", "grid", "grid", main))}
    if "asha" in baselines:
        asha = cfg.replace(tune={"scheduler": "asha"})
        stages["asha"] = (asha, plan.options("grid", "asha", "asha", main))
    if "nested" in baselines:
        nested = cfg.replace(train={"nested_dropout": True}, tune={"scheduler": "fifo"})
        stages["nested"] = (nested, plan.options("grid", "nested", "nested", main))
    for rule in rules:
        kind = SweepKind("ald", rule)
        stage = plan.options("ald", "ald", kind.label, main, kind.old_labels)
        stages[f"ald:{rule}"] = (cfg.replace(ald={"rule": rule}), stage)
    return stages


def _intrinsic(cfg: Config, opts: CompareOptions) -> dict:
    """The intrinsic-dimension baseline: seconds, in this process, before any sweep."""

    intrinsic = estimate_intrinsic_dim(load_splits(cfg)[0].x, seed=cfg.train.seed)
    opts.log(
        "intrinsic dimension of the training split: "
        + ", ".join(
            f"{INTRINSIC_NAMES[k]} {v['dimension']:.2f} (n_z {v['n_z']}, {v['cpu_s']:.1f} CPU-s)"
            for k, v in intrinsic.items()
        )
    )
    return intrinsic


def _run_fixed_at(plan: Plan, n_zs: Sequence[int | None], main_rule: str):
    """Fixed-size runs at ALD's chosen sizes that the grid did not cover (one seed each)."""
    cfg = plan.cfg
    missing = sorted(set(int(n) for n in n_zs if n) - set(cfg.grid.n_z))
    if not missing:
        return None
    sub = cfg.replace(grid={"n_z": missing}, tune={"scheduler": "fifo", "grid_seeds": 1})
    return run_sweep(sub, plan.options("grid", "fixed", "fixed", main_rule), plan.opts.tracking)
