"""The speed-versus-optimality comparison: how close ALD gets to the grid's n_z, at what cost.

Input: the trial records of finished sweeps (``SweepRecord.trials``, from Ray Tune or
rebuilt from MLflow by :mod:`ald_tune.report.mlflow_rebuild`). Output: one typed
:class:`~ald_tune.report.record.Report` per ALD rule (:func:`build_report`), written as
``comparison.json``, ``comparison.csv``, ``comparison.md`` and three figures
(:func:`write_report`, from :mod:`ald_tune.report.files`, re-exported here). A whole
comparison (several rules against one grid) is assembled, printed, written and logged by
:mod:`ald_tune.report.comparison`.

The grid table, the optimal n_z, the best region and where ALD's n_z lies in it
are defined in :mod:`ald_tune.report.criterion`; the numbers read from each trial in
:mod:`ald_tune.sweeps.results`.

**Cost**: trial-epochs (epochs run, summed over trials), CPU-seconds (the sum of
per-epoch ``cpu_time_s``; for trials without it, trial time x
``tune.cpus_per_trial``), GPU-seconds (trial time x ``tune.gpus_per_trial``; a
trial's time is its epochs' training and evaluation seconds) and the sweep's wall time.
Every trial that ran counts, errored ones included.
Speed-ups are grid / ALD; per ALD seed it is grid / (ALD / n_ald_trials), since
one ALD run is one seed.

Example:
    >>> rep = build_report(grid.trials, ald.trials, dataset="digits")  # doctest: +SKIP
    >>> paths = write_report(rep, "runs/report")                        # doctest: +SKIP
    >>> print(markdown(rep))                                            # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ald_tune.config.vocabulary import CRITERION, CURVES, VOTING
from ald_tune.report.ald_seeds import ald_section, at_nz, versus
from ald_tune.report.criterion import criterion, grid_rows, mean_rank, optima
from ald_tune.report.files import FILES as FILES  # re-exported: the report's API in one place
from ald_tune.report.files import markdown as markdown
from ald_tune.report.files import write_report as write_report
from ald_tune.report.methods import rank_methods
from ald_tune.report.nested import nested_section
from ald_tune.report.numbers import (
    clean,
    num,
    ratio,
    trial_cost,
)
from ald_tune.report.record import Report
from ald_tune.sweeps.results import TrialRecord


# ---------------------------------------------------------------- the report
def build_report(
    grid: list[TrialRecord],
    ald: list[TrialRecord],
    *,
    asha: list[TrialRecord] | None = None,
    fixed: list[TrialRecord] | None = None,
    wall: dict[str, float] | None = None,
    dataset: str = "",
    rule: str | None = None,
    metric: str = "neg_elbo",
    criterion_metrics: Sequence[str] = ("recon_loss", "fid_gen", "fid_recon"),
    rel_floor: float = 0.02,
    intrinsic: dict | None = None,
    units_baseline: bool = True,
    nested: list[TrialRecord] | None = None,
) -> Report:
    """Compare ALD's chosen n_z and cost against a grid over fixed n_z.

    Args:
        grid: the grid sweep's trial records (``SweepRecord.trials``).
        ald: the ALD sweep's trial records (``final_n_z`` is ALD's choice per seed).
        asha: optional records of a grid + ASHA sweep (its answer and cost).
        fixed: optional fixed-n_z trials at ALD's chosen n_z values; without one at a
            seed's n_z, the grid trial at that exact n_z stands in, else "not run".
        wall: wall time of each sweep in seconds, keys ``grid``, ``ald``, ``asha``,
            ``nested``.
        dataset: the dataset's name, for the titles.
        rule: the ALD sweep's stop rule, for the titles and the recommendation.
        metric: what ASHA minimised (``tune.metric``): grid + ASHA's answer is the n_z of
            its best trial that ran to the end by this metric.
        criterion_metrics: the metrics the plateau edge must satisfy (module docstring).
        rel_floor: the relative tolerance floor (0.02 = 2 % of the best value).
        intrinsic: the intrinsic-dimension estimates of the training split
            (:func:`ald_tune.data.intrinsic.estimate_intrinsic_dim`), a baseline method.
        units_baseline: show the units in use of the grid's widest trial as a method.
        nested: optional records of a nested-dropout sweep (one wide run per seed with
            its prefix curve): its answers (:mod:`ald_tune.report.nested`) and cost.

    Returns:
        A :class:`~ald_tune.report.record.Report` (``to_dict()``: ``comparison.json``):
        ``grid`` (rows per n_z, optima, mean rank), ``criterion`` (tolerances, region,
        plateau edge), ``ald`` (per seed, summary), ``vs`` (final metrics against the grid
        optimum and the fixed run at ALD's n_z), ``cost``, ``speedup``, ``methods`` (each
        method's answer, distance and compute), ``nested`` (with ``nested``: each seed's
        prefix curve and answer), ``recommendation``, ``headline``, ``curves``.

    Raises:
        ValueError: no usable grid or ALD trials, an unknown criterion metric, a bad
            ``rel_floor``, or a criterion metric with no finite grid value.
    """
    sweeps = dict(grid=grid, asha=asha or [], ald=ald, fixed=fixed or [], nested=nested or [])
    g_ok, a_ok = _usable(grid, ald, criterion_metrics, rel_floor)
    grid_sec, crit = _grid_criterion(grid, g_ok, criterion_metrics, rel_floor)
    report: dict[str, Any] = {"dataset": dataset, "rule": rule, "grid": grid_sec, "criterion": crit}
    report.update(_measured(sweeps, g_ok, a_ok, grid_sec["rows"], crit, wall or {}, rule))
    report["methods"] = rank_methods(
        report, sweeps, wall or {}, metric, grid_sec["rows"], intrinsic, units_baseline
    )
    return Report.from_dict(_concluded(report, rule))


def _usable(
    grid: list[TrialRecord],
    ald: list[TrialRecord],
    criterion_metrics: Sequence[str],
    rel_floor: float,
) -> tuple[list[TrialRecord], list[TrialRecord]]:
    """The grid's and ALD's finished trials, after checking the criterion's arguments.

    Raises:
        ValueError: an unknown criterion metric, a bad ``rel_floor``, or no finished
            grid or ALD trial.
    """
    bad = [m for m in criterion_metrics if m not in CRITERION]
    if bad or not criterion_metrics:
        raise ValueError(
            f"criterion_metrics must be a non-empty subset of {sorted(CRITERION)}. "
            f"Got {list(criterion_metrics)!r} instead."
        )
    if not (isinstance(rel_floor, (int, float)) and 0 <= rel_floor < 1):
        raise ValueError(f"rel_floor must be a float in [0, 1). Got {rel_floor!r} instead.")
    g_ok, a_ok = [t for t in grid if t.finished], [t for t in ald if t.finished]
    for name, trials, kept in (("grid", grid, g_ok), ("ALD", ald, a_ok)):
        if not kept:
            raise ValueError(
                f"no finished {name} trials to compare ({len(trials)} given, "
                f"{len(trials) - len(kept)} errored). Fix: run the {name.lower()} "
                "sweep, or pass its experiment/sweep name."
            )
    return g_ok, a_ok


def _grid_criterion(
    grid: list[TrialRecord],
    g_ok: list[TrialRecord],
    criterion_metrics: Sequence[str],
    rel_floor: float,
) -> tuple[dict, dict]:
    """The report's ``grid`` and ``criterion`` sections: the grid's rows and optima, the
    plateau edge over the criterion metrics the runs record, and the optimum it gives.

    Raises:
        ValueError: no criterion metric recorded, or one with no finite grid value.
    """
    rows = grid_rows(g_ok)
    # The criterion uses the metrics the runs record (feature vectors have no FID).
    used = [m for m in criterion_metrics if recorded(g_ok, m)]
    if not used:
        raise ValueError(
            f"none of the criterion metrics {list(criterion_metrics)!r} is recorded by the "
            "grid trials. Fix: pick recorded ones (recon_loss always is)."
        )
    crit = criterion(rows, g_ok, used, rel_floor)
    crit["not_recorded"] = [m for m in criterion_metrics if m not in used]
    grid_sec = {
        "n_trials": len(grid),
        "n_errored": len(grid) - len(g_ok),
        "rows": rows,
        "n_seeds": len({t.seed for t in g_ok}),
        "optimum_by_metric": optima(rows),
        "mean_rank_nz": mean_rank(rows),
    }
    edge: Any = crit["plateau_edge"]
    rank_nz: Any = grid_sec["mean_rank_nz"]
    crit["optimum_nz"] = (
        int(edge) if edge is not None else (int(rank_nz) if rank_nz is not None else None)
    )
    crit["optimum_rule"] = (
        "plateau_edge"
        if crit["plateau_edge"] is not None
        else "mean_rank (no grid n_z is within tolerance on every criterion metric)"
    )
    return grid_sec, crit


def _measured(
    sweeps: dict[str, list[TrialRecord]],
    g_ok: list[TrialRecord],
    a_ok: list[TrialRecord],
    rows: list[dict],
    crit: dict,
    wall: dict[str, float],
    rule: str | None,
) -> dict[str, Any]:
    """The report's ``ald``, ``vs``, ``cost``, ``speedup``, ``curves`` and (with a nested
    sweep) ``nested`` sections, in that order."""
    opt, fixed = crit["optimum_nz"], sweeps["fixed"]
    ald_sec = ald_section(a_ok, len(sweeps["ald"]), rows, crit, fixed, g_ok)
    if rule == "paper":  # its votes fall back to the metrics that exist
        ald_sec["votes_not_recorded"] = [m for m in VOTING if not recorded(a_ok, m)]
    cost = {
        k: _cost(sweeps[k], wall.get(k)) for k in ("grid", "ald", "asha", "nested") if sweeps[k]
    }
    out: dict[str, Any] = {
        "ald": ald_sec,
        "vs": versus(ald_sec, rows, opt),
        "cost": cost,
        "speedup": _speedups(cost),
        "curves": _curves(a_ok, at_nz(fixed, opt) or at_nz(g_ok, opt), opt),
    }
    if sweeps["nested"]:
        out["nested"] = nested_section(sweeps["nested"], rows, crit, g_ok)
    return out


def _concluded(report: dict[str, Any], rule: str | None) -> dict[str, Any]:
    """The report with its ``recommendation`` and ``headline``, JSON-ready."""
    a = report["ald"]
    report["recommendation"] = recommend(
        a["n_z"], rule, a["seeds"], edge=report["criterion"]["plateau_edge"]
    )
    report["headline"] = _headline(report)
    return clean(report)


def recorded(trials: list[TrialRecord], metric: str) -> bool:
    """Some epoch of some trial holds ``metric`` (FID is not recorded for feature vectors)."""
    return any(metric in h for t in trials for h in t.history)


EDGE_FIELDS = ("in_region", "near_edge", "steps_above_edge", "nz_over_edge")


def recommend(
    n_zs: Sequence[int],
    rule: str | None = None,
    seeds: Sequence[dict] = (),
    edge: int | None = None,
) -> dict[str, Any]:
    """One n_z from ALD's per-seed answers: their median, ties broken upward.

    With an even number of seeds the upper of the two middle values is taken: a
    model one unit too wide costs little (its spare units die), one unit too narrow
    misses the plateau. The median is always one seed's answer, so where it lies
    against the grid is that seed's.

    Args:
        n_zs: each seed's final n_z, in seed order.
        rule: the stop rule that produced them.
        seeds: the report's per-seed entries (``in_region``, ``near_edge``,
            ``steps_above_edge``, ``nz_over_edge``), optional.
        edge: the grid's plateau edge, optional.

    Returns:
        ``{"n_z", "rule", "per_seed", "reason", "plateau_edge", "in_region",
        "near_edge", "steps_above_edge", "nz_over_edge", "per_seed_vs_edge"}``: the
        recommended n_z against the edge (None without a grid) and each seed's
        (``[{"seed", "n_z", "in_region", "near_edge", ...}]``, empty without a grid).

    Example:
        >>> recommend([5, 8, 5], "ald-tune")["n_z"], recommend([6, 4])["n_z"]
        (5, 6)
    """
    values = [int(n) for n in n_zs]
    per_seed = [{"seed": s.get("seed"), "n_z": s.get("n_z"), **_vs_edge(s)} for s in seeds]
    base = {"rule": rule, "per_seed": values, "plateau_edge": edge}
    if not values:
        return {
            "n_z": None,
            **base,
            **dict.fromkeys(EDGE_FIELDS),
            "reason": "no finished ALD seed",
            "per_seed_vs_edge": [],
        }
    ordered = sorted(values)
    pick = ordered[len(ordered) // 2]
    how = (
        "the only seed's final n_z"
        if len(values) == 1
        else f"the median of the {len(values)} seeds' final n_z"
        + (", ties broken upward" if len(values) % 2 == 0 else "")
    )
    at = next((s for s in per_seed if s["n_z"] == pick), {})
    return {
        "n_z": pick,
        **base,
        **_vs_edge(at),
        "reason": how,
        "per_seed_vs_edge": per_seed,
    }


def _vs_edge(seed: dict) -> dict[str, Any]:
    return {k: seed.get(k) for k in EDGE_FIELDS}


def _cost(trials: list[TrialRecord], wall: Any) -> dict:
    costs = [trial_cost(t) for t in trials]
    return {
        "n_trials": len(trials),
        "n_errored": sum(t.errored for t in trials),
        "n_stopped": sum(t.status == "STOPPED" for t in trials),
        "trial_epochs": sum(t.epochs for t in trials),
        "cpu_s": sum(c[0] for c in costs),
        "gpu_s": sum(c[1] for c in costs),
        "cpu_source": sorted({c[2] for c in costs}),
        "wall_s": num(wall),
        "nodes": sorted({n for t in trials for n in t.nodes}),
    }


def _speedups(cost: dict) -> dict:
    ald = cost["ald"]
    out = {}
    for base in ("grid", "asha"):
        if base in cost:
            b = cost[base]
            out[base] = {
                "compute": ratio(b["cpu_s"], ald["cpu_s"]),
                "compute_per_seed": ratio(b["cpu_s"], ald["cpu_s"] / ald["n_trials"]),
                "trial_epochs": ratio(b["trial_epochs"], ald["trial_epochs"]),
                "wall": ratio(b["wall_s"], ald["wall_s"]),
            }
    return out


def _curves(ald: list[TrialRecord], fixed: list[TrialRecord], opt: int | None) -> dict:
    def curve(t: TrialRecord) -> dict:
        return {
            "seed": t.seed,
            "epoch": [int(num(h.get("epoch", i))) for i, h in enumerate(t.history)],
            **{k: [num(h.get(k)) for h in t.history] for k in CURVES},
        }

    return {
        "ald": [curve(t) for t in ald],
        "fixed_optimum": [curve(t) for t in fixed],
        "fixed_optimum_nz": opt,
    }


def _headline(r: dict) -> dict:
    s, c, a = r["speedup"], r["criterion"], r["ald"]
    h = {
        "grid_plateau_nz": c["plateau_edge"],
        "grid_optimum_nz": c["optimum_nz"],
        "grid_mean_rank_nz": r["grid"]["mean_rank_nz"],
        "grid_region_min": min(c["best_region"], default=None),
        "grid_region_max": max(c["best_region"], default=None),
        "ald_nz_mean": a["n_z_mean"],
        "ald_nz_std": a["n_z_std"],
        "ald_in_region_fraction": a["n_in_region"] / max(1, len(a["seeds"])),
        "ald_distance_mean": a["distance_mean"],
        "near_edge_max_nz": c["near_edge_max_nz"],
        "ald_near_edge_fraction": (
            a["n_near_edge"] / max(1, len(a["seeds"])) if c["plateau_edge"] is not None else None
        ),
        "ald_steps_above_edge_mean": a["steps_above_edge_mean"],
        "ald_nz_over_edge_mean": a["nz_over_edge_mean"],
        "recommended_nz": r["recommendation"]["n_z"],
        "recommended_steps_above_edge": r["recommendation"]["steps_above_edge"],
        "recommended_nz_over_edge": r["recommendation"]["nz_over_edge"],
    }
    for base, tag in (("grid", ""), ("asha", "_vs_asha")):
        for k, v in s.get(base, {}).items():
            h[f"speedup_{k}{tag}"] = v
    return h
