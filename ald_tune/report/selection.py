"""Which sweeps one comparison uses, chosen from their parent runs' tags alone.

The rules (pins first, then the newest complete compare, then the newest ended sweep of
each kind) are those of :mod:`ald_tune.report.mlflow_rebuild`, which reads the parent
runs from MLflow and hands them here; nothing here talks to MLflow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ald_tune.config.kinds import COMPARE_TAG, MAIN_RULE_TAG, SWEEP_TAG, SweepKind
from ald_tune.errors import ConfigError
from ald_tune.tracking.runs import COMPLETE_TAG

ENDED = ("FINISHED", "FAILED")


@dataclass
class Selection:
    """The parent runs chosen for one comparison, and why."""

    grid: Any = None
    alds: dict[str, Any] = field(default_factory=dict)  # key -> parent run
    asha: Any = None
    fixed: Any = None
    nested: Any = None
    compare: str | None = None
    note: str = ""


def _key(kind: SweepKind, name: str, rules: Sequence[str | None]) -> str:
    return str(kind.rule) if rules.count(kind.rule) == 1 else f"{kind.rule} ({name})"


def select(
    parents: list,
    pins: Mapping[str, list[str]] | None = None,
    experiment: str = "",
    require_grid: bool = True,
) -> Selection:
    """Choose the sweeps of one comparison among ``parents`` (newest first; see the module
    docstring). Returns a :class:`Selection` whose ``note`` says what was chosen and why.

    Raises:
        ConfigError: a pinned sweep that does not exist, or no grid / no ALD sweep.
    """

    pins = dict(pins or {})
    pinned = _pinned(parents, pins, experiment)
    chosen, pool = _pool(parents, pinned)
    sel = Selection(compare=chosen)
    for kind in ("grid", "asha", "fixed", "nested"):
        runs = pinned.get(kind) or [r for r in pool if sweep_kind(r).kind == kind]
        setattr(sel, kind, runs[0] if runs else None)
    if sel.fixed is not None and chosen is None and "fixed" not in pinned:
        sel.fixed = None  # fixed runs belong to one compare; apart from it, only when named
    sel.alds = _keyed_alds(
        pinned.get("ald") or _newest_per_rule([r for r in pool if sweep_kind(r).kind == "ald"])
    )
    if (require_grid and sel.grid is None) or not sel.alds:
        missing = "ALD" if not sel.alds else "grid"
        raise ConfigError(
            f"experiment {experiment!r} has no finished {missing} sweep to compare "
            f"({len(parents)} sweep parent run(s) record their kind). Fix: run `ald-tune compare`"
            f" (or `ald-tune {'grid' if missing == 'grid' else 'ald'}`), or pin one with "
            f"--sweep {'grid' if missing == 'grid' else 'ald'}=NAME."
        )
    sel.note = _note(sel, parents, pins)
    return sel


def _pinned(parents: list, pins: dict[str, list[str]], experiment: str) -> dict[str, list]:
    """The parent runs ``pins`` name, by kind.

    Raises:
        ConfigError: a pinned sweep that does not exist, or is of another kind.
    """
    by_name: dict[str, Any] = {}
    for r in parents:
        by_name.setdefault(r.data.tags[SWEEP_TAG], r)
    pinned: dict[str, list] = {}
    for kind, names in pins.items():
        for name in names:
            run = by_name.get(name)
            if run is None:
                raise ConfigError(
                    f"sweep {name[:200]!r} ({kind}) not found in experiment "
                    f"{experiment!r}. Fix: pass a name from `ald-tune report "
                    f"--experiment {experiment}` (its notes list the sweeps)."
                )
            if sweep_kind(run).kind != kind:
                raise ConfigError(
                    f"sweep {name!r} is a {SweepKind.from_tags(run.data.tags)} "
                    f"sweep, not {kind}. Fix: --sweep "
                    f"{sweep_kind(run).kind}={name}."
                )
            pinned.setdefault(kind, []).append(run)
    return pinned


def _pool(parents: list, pinned: dict[str, list]) -> tuple[str | None, list]:
    """The compare that supplies the kinds not pinned (the one a pinned sweep belongs to,
    else the newest complete one; None without one) and the runs to pick from: its
    sweeps, or without a compare every ended sweep."""
    groups: dict[str, list] = {}
    for r in parents:
        if r.data.tags.get(COMPARE_TAG):
            groups.setdefault(r.data.tags[COMPARE_TAG], []).append(r)
    # A compare's set is complete when every one of its sweeps ended and says so.
    groups = {
        g: rs
        for g, rs in groups.items()
        if all(r.data.tags.get(COMPLETE_TAG) == "true" and r.info.status in ENDED for r in rs)
    }
    anchor = next(
        (
            r.data.tags.get(COMPARE_TAG)
            for rs in pinned.values()
            for r in rs
            if r.data.tags.get(COMPARE_TAG) in groups
        ),
        None,
    )
    chosen = anchor or next(iter(groups), None)  # parents are newest first
    pool = groups.get(chosen, []) if chosen else []
    if chosen is None:  # sweeps run on their own: the newest ended one of each kind
        pool = [r for r in parents if r.info.status in ENDED]
    return chosen, pool


def _keyed_alds(alds: list) -> dict[str, Any]:
    """The ALD parent runs by report key, the compare's main rule first."""
    main = next(
        (r.data.tags.get(MAIN_RULE_TAG) for r in alds if r.data.tags.get(MAIN_RULE_TAG)), None
    )
    alds = sorted(alds, key=lambda r: sweep_kind(r).rule != main)
    rules = [sweep_kind(r).rule for r in alds]
    return {_key(sweep_kind(r), r.data.tags[SWEEP_TAG], rules): r for r in alds}


def _note(sel: Selection, parents: list, pins: dict[str, list[str]]) -> str:
    """What was chosen and why, for the report's notes."""
    chosen = sel.compare
    chosen_runs = {
        "grid": sel.grid,
        "asha": sel.asha,
        "fixed": sel.fixed,
        "nested": sel.nested,
        **{f"ald ({k})": r for k, r in sel.alds.items()},
    }
    listed = ", ".join(
        f"{k}={r.data.tags[SWEEP_TAG]}" for k, r in chosen_runs.items() if r is not None
    )
    if chosen:
        why = (
            f"compare {chosen!r}, with the pinned sweeps"
            if pins
            else f"the newest complete compare, {chosen!r}"
        )
    else:
        why = (
            "the pinned sweeps; for the other kinds " if pins else ""
        ) + "the newest finished sweep of each kind (no complete compare in the experiment)"
    others = len({r.data.tags.get(COMPARE_TAG) for r in parents if r.data.tags.get(COMPARE_TAG)})
    return (
        f"sweeps used ({why}; the experiment holds {len(parents)} sweep(s) from "
        f"{others} compare run(s)): {listed}"
    )


def sweep_kind(run) -> SweepKind:
    """The kind a sweep parent run records (every run here was chosen for having one)."""
    kind = SweepKind.from_tags(run.data.tags)
    if kind is None:
        raise ConfigError(f"MLflow run {run.info.run_id} records no sweep kind.")
    return kind


def _newest_per_rule(runs: list) -> list:
    out: dict[str | None, Any] = {}
    for r in runs:  # newest first
        out.setdefault(sweep_kind(r).rule, r)
    return list(out.values())
