"""The report's ``ald`` and ``vs`` sections: ALD's seeds against the grid and the fixed runs.

Each ALD seed's final n_z against the grid's best region and its edge, its final metrics,
cost and the gap to a model trained from scratch at its n_z (with the same test applied to
two grid seeds as a control); ``vs``: ALD's mean final metrics against the grid optimum and
the fixed runs. Used by :func:`ald_tune.report.build.build_report`.
"""

from __future__ import annotations

import math
from typing import Any

from ald_tune.config.vocabulary import COLUMNS, RANKED
from ald_tune.report.criterion import distance, edge_distance
from ald_tune.report.numbers import (
    NAN,
    answer_epochs,
    last,
    mean,
    num,
    ratio,
    std,
    trial_cost,
)
from ald_tune.sweeps.results import TrialRecord


def at_nz(trials: list[TrialRecord], nz: Any) -> list[TrialRecord]:
    """The finished trials of a fixed-n_z sweep at exactly ``nz``."""
    return [t for t in trials if t.finished and t.n_z_grid is not None and int(t.n_z_grid) == nz]


def ald_section(
    trials: list[TrialRecord],
    n_all: int,
    rows: list[dict],
    crit: dict,
    fixed: list[TrialRecord],
    grid: list[TrialRecord],
) -> dict:
    """The report's ``ald`` section: one entry per finished seed, then their summary."""
    grid_nz, region = [r["n_z"] for r in rows], crit["best_region"]
    seeds = [
        _seed(t, grid_nz, region, fixed, grid, crit["tolerances"])
        for t in sorted(trials, key=lambda t: (num(t.seed), str(t.trial_id)))
    ]
    nzs = [s["n_z"] for s in seeds]
    gaps = [s["gap"]["within"] for s in seeds if s["gap"]]
    pairs = _seed_pairs(grid, crit["tolerances"])
    dists = [int(s["distance"]) for s in seeds if s["distance"] is not None]
    return {
        "n_trials": n_all,
        "n_errored": n_all - len(trials),
        "seeds": seeds,
        "n_z": nzs,
        "n_z_mean": mean(nzs),
        "n_z_std": std(nzs) if len(nzs) > 1 else 0.0,
        "n_in_region": sum(s["in_region"] for s in seeds),
        "distance_mean": mean(dists),
        "distance_max": max(dists) if dists else None,
        "n_near_edge": sum(bool(s["near_edge"]) for s in seeds),
        "steps_above_edge_mean": mean(s["steps_above_edge"] for s in seeds),
        "nz_over_edge_mean": mean(s["nz_over_edge"] for s in seeds),
        "final": {m: mean(s[m] for s in seeds) for m in COLUMNS},
        "n_fixed_compared": len(gaps),
        "n_as_good_as_fixed": sum(gaps),
        # the same test between two grid seeds at one n_z: how often noise alone fails it
        "control_pairs": len(pairs),
        "control_within": sum(pairs),
    }


def _seed(
    t: TrialRecord,
    grid_nz: list[int],
    region: list[int],
    fixed: list[TrialRecord],
    grid: list[TrialRecord],
    tolerances: dict,
) -> dict[str, Any]:
    """One ALD seed: its final n_z against the region, metrics, cost and the fixed run."""
    nz = num(t.final_n_z)
    nz = int(nz if math.isfinite(nz) else last(t, "n_z"))
    inside, near, dist = distance(nz, grid_nz, region)
    answer = answer_epochs(t)
    ref, src = (at_nz(fixed, nz), "fixed") if at_nz(fixed, nz) else (at_nz(grid, nz), "grid")
    seed = {
        "seed": t.seed,
        "trial_id": t.trial_id,
        "n_z": nz,
        "in_region": inside,
        "nearest_region_nz": near,
        "distance": dist,
        **edge_distance(nz, grid_nz, region),
        "epochs": t.epochs,
        "cpu_s": trial_cost(t)[0],
        **{m: last(t, m) for m in COLUMNS},
        "answer_epochs": answer,
        "answer_cpu_s": trial_cost(t, answer)[0],
        "epochs_at_final_size": t.epochs - answer,
        "fixed_source": src if ref else "not run",
        "fixed": {m: mean(last(f, m) for f in ref) for m in COLUMNS} if ref else None,
    }
    seed["gap"] = _gap(seed, tolerances)
    return seed


def _seed_pairs(grid: list[TrialRecord], tolerances: dict) -> list[bool]:
    """The final-model test applied to the grid's own seeds: for every n_z and every
    ordered pair of its seeds (a, b), is b within tolerance of a on every criterion
    metric? Two models of one size differ by seed and evaluation noise alone, so this
    is the rate at which a model as good as the fixed run passes the test."""
    by_nz: dict[Any, list[TrialRecord]] = {}
    for t in grid:
        by_nz.setdefault(t.n_z_grid, []).append(t)
    out = []
    for runs in by_nz.values():
        for a in runs:
            for b in runs:
                if a is not b:
                    seed = {
                        **{m: last(b, m) for m in COLUMNS},
                        "fixed": {m: last(a, m) for m in COLUMNS},
                    }
                    gap = _gap(seed, tolerances)
                    out.append(bool(gap and gap["within"]))
    return out


def _gap(seed: dict, tolerances: dict) -> dict | None:
    """ALD's final model against a model trained from scratch at its n_z, on each
    criterion metric: the difference (ALD - fixed; for a higher-is-better metric,
    fixed - ALD, so a positive gap is always ALD being worse) against the criterion's
    tolerance. ``within``: every metric's gap is at most its tolerance."""
    if not seed["fixed"]:
        return None
    metrics = {}
    for m, t in tolerances.items():
        sign = 1.0 if t["direction"] == "min" else -1.0
        diff = sign * (seed[m] - seed["fixed"][m])
        metrics[m] = {
            "ald": seed[m],
            "fixed": seed["fixed"][m],
            "gap": diff,
            "tolerance": t["tolerance"],
            "within": bool(math.isfinite(diff) and diff <= t["tolerance"]),
        }
    return {"metrics": metrics, "within": all(x["within"] for x in metrics.values())}


def versus(ald: dict, rows: list[dict], opt: int | None) -> dict:
    """The report's ``vs`` section: ALD's mean final metrics against the grid optimum's
    row and the fixed runs at ALD's n_z."""
    orow = next((r for r in rows if r["n_z"] == opt), None)
    with_fixed = [s for s in ald["seeds"] if s["fixed"]]
    metrics: dict[str, dict[str, float]] = {}
    out: dict[str, Any] = {"optimum_nz": opt, "n_fixed_seeds": len(with_fixed), "metrics": metrics}
    for m in RANKED:
        a = ald["final"][m]
        g = orow[m] if orow else NAN
        f = mean(s["fixed"][m] for s in with_fixed) if with_fixed else NAN
        metrics[m] = {
            "ald": a,
            "grid_optimum": g,
            "fixed_at_ald_nz": f,
            "ald_minus_optimum": a - g,
            "ald_minus_fixed": a - f,
            "ald_vs_optimum_rel": ratio(a - g, abs(g)) if g else NAN,
        }
    return out
