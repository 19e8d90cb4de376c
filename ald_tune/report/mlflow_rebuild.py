"""Rebuild a comparison from MLflow alone (``ald-tune report``, ``recommend``, the notebook).

Sweeps are chosen by what they are, as their parent runs' tags say (written once when
each sweep started, :mod:`ald_tune.config.kinds`), never guessed from how their trials ran:

1. ``pins`` (``--sweep KIND=NAME``) name sweeps outright; several ``ald=NAME`` give one
   report each.
2. Otherwise the newest *complete* set made by one ``compare`` (every sweep of it
   finished: the tag :data:`ald_tune.tracking.COMPLETE_TAG`) supplies every kind not
   pinned: its grid, its ALD sweep of each rule, and its grid + ASHA, fixed runs and
   nested-dropout runs if it made them.
3. With no complete compare, the newest ended sweep of each kind (each rule) run on
   its own.

Each child run becomes a :class:`~ald_tune.sweeps.results.TrialRecord` with its
per-epoch history of the tracked metrics (and, for a nested-dropout run, its prefix
curve: the ``prefix.<metric>`` metrics, step = the prefix length); each sweep's wall
time is the sum of its ``sweep_wall_s`` values (one per fit). So the rebuilt report
equals the printed one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ald_tune.config.kinds import (
    COMPARE_TAG,
    DATASET_TAG,
    KINDS,
    MAIN_RULE_TAG,
    SWEEP_TAG,
    SweepKind,
)
from ald_tune.config.tags import SEED_TAG, STOPPED_BY_TAG
from ald_tune.config.vocabulary import PREFIX_METRICS, PREFIX_MLFLOW
from ald_tune.errors import ConfigError
from ald_tune.report.build import recommend
from ald_tune.report.comparison import (
    BASELINES_TAG,
    Comparison,
    baselines_from_tag,
    intrinsic_from_metrics,
    log_comparison,
)
from ald_tune.report.record import Report
from ald_tune.report.selection import select, sweep_kind
from ald_tune.sweeps.results import (
    SweepRecord,
    TrialRecord,
    history_row,
    num,
    prefix_curve,
    sort_trials,
)
from ald_tune.tracking.runs import (
    FINAL_NZ_TAG,
    NODES_TAG,
    PARENT_TAG,
    TRACKED_METRICS,
    TRIAL_TAG,
    WALL_METRIC,
    run_id_text,
    search_all,
)
from ald_tune.tracking.store import client, redact_uri

STATUS = {"FINISHED": "TERMINATED", "KILLED": "STOPPED", "FAILED": "ERROR"}


def parse_pins(items: Sequence[str]) -> dict[str, list[str]]:
    """``["grid=G", "ald=A", "ald=B"]`` -> ``{"grid": ["G"], "ald": ["A", "B"]}``.

    Raises:
        ConfigError: an item not of the form KIND=NAME, or an unknown kind.
    """
    pins: dict[str, list[str]] = {}
    for item in items:
        kind, sep, name = item.partition("=")
        if not sep or not name or kind not in KINDS:
            raise ConfigError(
                f"--sweep {item[:200]!r} must look like KIND=NAME with KIND one of "
                f"{', '.join(KINDS)}. Fix: e.g. --sweep grid=grid-digits-20261201-101500."
            )
        if kind != "ald" and kind in pins:
            raise ConfigError(
                f"--sweep {kind}= is given twice. Fix: pin one {kind} sweep "
                "(only ald= may repeat: one report per ALD sweep)."
            )
        pins.setdefault(kind, []).append(name)
    return pins


def _parents(c, exp_id: str) -> list:
    """Every sweep parent run that records its kind, newest first."""

    return [
        r
        for r in search_all(c, exp_id, order_by=["attributes.start_time DESC"])
        if r.data.tags.get(SWEEP_TAG)
        and PARENT_TAG not in r.data.tags
        and SweepKind.from_tags(r.data.tags) is not None
    ]


def _status(run) -> str:
    """The trial's status as Tune had it: a FINISHED run tagged with who ended it early
    (ASHA, or the ALD rule) was a STOPPED trial; stores before that tag had it KILLED."""
    if run.info.status == "FINISHED" and run.data.tags.get(STOPPED_BY_TAG):
        return "STOPPED"
    return STATUS.get(run.info.status, "ERROR")


def _child_record(c, run) -> TrialRecord:

    steps: dict[int, dict[str, Any]] = {}
    for key in TRACKED_METRICS:
        for m in sorted(c.get_metric_history(run.info.run_id, key), key=lambda m: m.timestamp):
            steps.setdefault(m.step, {})[key] = m.value
    history = [history_row(s, steps[s]) for s in sorted(steps)]
    tags, params = run.data.tags, run.data.params
    kind = SweepKind.from_tags(tags) or SweepKind("ald", params.get("ald.rule", "ald-tune"))
    curve: dict[str, dict[str, float]] = {}
    for m in PREFIX_METRICS if kind.kind == "nested" else ():  # step = the prefix length
        for x in c.get_metric_history(run.info.run_id, PREFIX_MLFLOW + m):
            curve.setdefault(str(x.step), {})[m] = x.value
    last_nz = history[-1].get("n_z") if history else None
    final = tags.get(FINAL_NZ_TAG, last_nz)
    seed = tags.get(SEED_TAG, params.get("train.seed"))
    nz_init = num(params.get("n_z_init", last_nz))
    return TrialRecord(
        trial_id=tags.get(TRIAL_TAG, run.info.run_id),
        kind=kind.kind,
        rule=kind.rule,
        seed=int(seed) if seed is not None else None,
        n_z_grid=int(nz_init) if kind.mode == "grid" and math.isfinite(nz_init) else None,
        final_n_z=int(num(final)) if final is not None else None,
        status=_status(run),
        history=history,
        cpus=float(num(params.get("tune.cpus_per_trial", 1.0))),
        gpus=float(num(params.get("tune.gpus_per_trial", 0.0))),
        nodes=tuple(n for n in tags.get(NODES_TAG, "").split(",") if n),
        run_id=run.info.run_id,
        path=run.info.artifact_uri,
        config={"kind": kind.kind, "seed": seed},
        prefixes=prefix_curve(curve),
    )


def sweep_from_mlflow(c, exp_id: str, parent, uri: str | None = None) -> SweepRecord:
    """One sweep's record from its parent run and child runs."""

    tags, pid = parent.data.tags, parent.info.run_id
    children = search_all(c, exp_id, f"tags.`{PARENT_TAG}` = '{run_id_text(pid)}'")
    walls = {m.step: m.value for m in c.get_metric_history(pid, WALL_METRIC)}
    wall = (
        sum(walls.values())
        if walls
        else (
            (parent.info.end_time - parent.info.start_time) / 1000
            if parent.info.end_time
            else math.nan
        )
    )
    return SweepRecord(
        kind=SweepKind.from_tags(tags),
        name=tags[SWEEP_TAG],
        trials=sort_trials(_child_record(c, ch) for ch in children),
        wall_s=wall,
        dataset=tags.get(DATASET_TAG, ""),
        compare=tags.get(COMPARE_TAG),
        main_rule=tags.get(MAIN_RULE_TAG),
        tracking_uri=uri,
        experiment_id=exp_id,
        parent_run_id=pid,
    )


def experiment_id(c, experiment: str, uri: str) -> str:
    """The experiment's id.

    Raises:
        ConfigError: no such experiment (naming the store and the fix).
    """

    exp = c.get_experiment_by_name(experiment)
    if exp is None:
        names = [e.name for e in c.search_experiments(max_results=20)]
        raise ConfigError(
            f"MLflow experiment {experiment[:200]!r} not found at {redact_uri(uri)!r}"
            f" (it holds {names}). Fix: pass --experiment of a finished sweep "
            "(default: ald-tune-<dataset>) and the --tracking-uri it used."
        )
    return exp.experiment_id


def comparison_from_mlflow(
    uri: str,
    experiment: str,
    *,
    pins: Mapping[str, list[str]] | None = None,
    build: bool = True,
    **kwargs: Any,
) -> Comparison:
    """Rebuild a :class:`~ald_tune.report.comparison.Comparison` from MLflow alone.

    Args:
        uri: the tracking URI.
        experiment: the MLflow experiment (e.g. ``ald-tune-digits``).
        pins: ``{kind: [sweep name, ...]}`` (``--sweep KIND=NAME``); see the module doc.
        build: build the reports (``kwargs`` go to ``build_report``).

    Raises:
        ConfigError: no such experiment or sweep, or no grid / ALD sweep to compare.
    """

    c = client(uri)
    exp_id = experiment_id(c, experiment, uri)
    sel = select(_parents(c, exp_id), pins, experiment)

    def rec(run):
        return sweep_from_mlflow(c, exp_id, run, uri) if run is not None else None

    grid = rec(sel.grid)
    metric = sel.grid.data.params.get("tune.metric", "neg_elbo")
    comp = Comparison(
        grid=grid,
        alds={k: rec(r) for k, r in sel.alds.items()},
        asha=rec(sel.asha),
        fixed=rec(sel.fixed),
        nested=rec(sel.nested),
        dataset=grid.dataset,
        compare=sel.compare,
        metric=metric,
        note=sel.note,
        intrinsic=intrinsic_from_metrics(dict(sel.grid.data.metrics)),
        baselines=baselines_from_tag(sel.grid.data.tags.get(BASELINES_TAG)),
    )
    return comp.build(**kwargs) if build else comp


def report_from_mlflow(
    uri: str,
    experiment: str,
    out_dir: str,
    *,
    sweeps: Mapping[str, str] | None = None,
    log: bool = True,
    **kwargs: Any,
) -> tuple[Report, dict[str, str]]:
    """Rebuild, write and (with ``log``) log a comparison; returns its main report (a
    :class:`~ald_tune.report.record.Report`) and the paths of the files written for it
    (``sweeps``: ``{kind: name}`` pins)."""

    comp = comparison_from_mlflow(
        uri, experiment, pins={k: [v] for k, v in (sweeps or {}).items()}, **kwargs
    )
    paths = comp.write(out_dir)
    if log:
        log_comparison(uri, comp, paths)
    return comp.reports[comp.main], paths["comparison"]


def recommend_from_mlflow(
    uri: str,
    experiment: str,
    *,
    pins: Mapping[str, list[str]] | None = None,
    rule: str | None = None,
) -> dict[str, Any]:
    """The recommended n_z of the chosen comparison (or of ALD sweeps run without a grid).

    Args:
        rule: which ALD rule's answer; default the compare's main rule (else the newest).

    Returns:
        :func:`ald_tune.report.recommend`'s dict plus ``sweep`` (the ALD sweep's name),
        ``experiment`` and ``note`` (how the sweeps were chosen).

    Raises:
        ConfigError: no such experiment or rule, or no finished ALD sweep.
    """

    c = client(uri)
    exp_id = experiment_id(c, experiment, uri)
    sel = select(_parents(c, exp_id), pins, experiment, require_grid=False)
    keys = [k for k, r in sel.alds.items() if rule is None or sweep_kind(r).rule == rule]
    if not keys:
        have = sorted({str(sweep_kind(r).rule) for r in sel.alds.values()})
        raise ConfigError(
            f"--rule {str(rule)[:100]!r}: the chosen sweeps have ALD rules {have}. "
            f"Fix: pass one of them, or pin an ALD sweep with --sweep ald=NAME."
        )
    key = keys[0]
    if sel.grid is not None:
        comp = comparison_from_mlflow(
            uri,
            experiment,
            pins={
                **{
                    k: [r.data.tags[SWEEP_TAG]]
                    for k, r in (("grid", sel.grid), ("asha", sel.asha), ("fixed", sel.fixed))
                    if r is not None
                },
                "ald": [sel.alds[key].data.tags[SWEEP_TAG]],
            },
        )
        first = next(iter(comp.reports.values())).recommendation
        rec = first.to_dict() if first is not None else recommend([], rule)
    else:
        ald = sweep_from_mlflow(c, exp_id, sel.alds[key], uri)
        done = sorted(
            (t for t in ald.trials if t.finished), key=lambda t: (num(t.seed), t.trial_id)
        )
        rec = recommend([t.nz for t in done], ald.kind.rule)
    return {
        **rec,
        "sweep": sel.alds[key].data.tags[SWEEP_TAG],
        "experiment": experiment,
        "note": sel.note,
    }
