"""Nested dropout's answer: the grid's criterion applied to each nested run's own curve.

A nested-dropout trial (:mod:`ald_tune.engine.nested_dropout`) ends with its metrics at every
grid n_z prefix: the whole metrics-against-n_z curve from one run. Its answer is that
curve's plateau edge, found with the grid's criterion (:mod:`ald_tune.report.criterion`):

* best(m) = the **curve's own** best value of criterion metric m over its prefixes;
* tol(m) = max(rel_floor x |best(m)|, 2 x spread(m)), with the **grid's** spread (the
  seed-to-seed sd the grid's own criterion measured) and the grid's rel_floor;
* the answer is the smallest prefix within tolerance of the curve's best on every
  criterion metric (none: the curve's mean-rank choice, as the grid falls back).

Why the curve's best and not the grid's: the prefixes share one decoder, so the curve
sits above what a model trained at each size reaches (the report shows both bests), and
anchoring to the grid's best would judge that level, not where the curve flattens; it
would also leave the method without an answer wherever no grid was run, and a one-run
method must answer from its own run. Why the grid's spread: one curve per seed cannot
measure its own seed-to-seed noise, and this is the noise the grid's own edge is judged
by, so both edges come from the same test. What the plateau test with the grid's best
and tolerance would have answered is kept beside it (``answer_by_grid_best``).
"""

from __future__ import annotations

import math
from typing import Any

from ald_tune.config.vocabulary import COLUMNS, DIRECTIONS, RANKED
from ald_tune.report.criterion import distance, edge_distance, mean_rank
from ald_tune.report.numbers import NAN, finite, mean, trial_cost
from ald_tune.sweeps.results import TrialRecord


def _within(vals: dict[str, float], m: str, best: float, tol: float) -> bool:
    v = vals.get(m, NAN)
    if not math.isfinite(v):
        return False
    return v <= best + tol if DIRECTIONS[m] == "min" else v >= best - tol


def _passing(curve: dict[int, dict[str, float]], tols: dict[str, dict]) -> list[int]:
    """The prefixes within every metric's tolerance of its best."""
    return [
        k
        for k, c in curve.items()
        if all(_within(c, m, t["best"], t["tolerance"]) for m, t in tols.items())
    ]


def curve_edge(curve: dict[int, dict[str, float]], crit: dict) -> dict[str, Any]:
    """The answer of one prefix curve under the grid's criterion ``crit`` (see the
    module docstring).

    Args:
        curve: ``{k: metrics}`` of one nested run (:attr:`TrialRecord.prefixes`).
        crit: the report's ``criterion`` section (its metrics, rel_floor, tolerances).

    Returns:
        ``{"n_z", "rule", "within", "tolerances", "answer_by_grid_best"}``: the answer
        (None for an empty curve), how it was chosen, the prefixes within tolerance on
        every metric, the tolerances used per metric and the alternative answer.

    Example:
        >>> crit = {"metrics": ["recon_loss"], "rel_floor": 0.02,
        ...         "tolerances": {"recon_loss": {"best": 9.0, "spread": 0.1, "tolerance": 0.2}}}
        >>> curve_edge({2: {"recon_loss": 14.0}, 4: {"recon_loss": 10.1},
        ...             8: {"recon_loss": 10.0}}, crit)["n_z"]
        4
    """
    tols: dict[str, dict[str, float]] = {}
    for m in crit["metrics"]:
        vals = finite(c.get(m) for c in curve.values())
        sign = 1.0 if DIRECTIONS[m] == "min" else -1.0
        best = sign * min(sign * v for v in vals) if vals else NAN
        spread = crit["tolerances"][m]["spread"]
        tols[m] = {
            "best": best,
            "grid_best": crit["tolerances"][m]["best"],
            "spread": spread,
            "tolerance": max(crit["rel_floor"] * abs(best), 2 * spread) if vals else NAN,
        }
    within, by_grid = _passing(curve, tols), _passing(curve, crit["tolerances"])
    nz: int | None
    if within:
        nz, rule = min(within), "plateau_edge"
    else:
        rows = [{"n_z": k, **{m: c.get(m, NAN) for m in RANKED}} for k, c in curve.items()]
        nz = mean_rank(rows)
        rule = "mean_rank (no prefix is within tolerance on every criterion metric)"
    return {
        "n_z": nz,
        "rule": rule,
        "within": within,
        "tolerances": tols,
        "answer_by_grid_best": min(by_grid) if by_grid else None,
    }


def nested_section(
    trials: list[TrialRecord], rows: list[dict], crit: dict, grid: list[TrialRecord]
) -> dict[str, Any]:
    """The report's ``nested`` section: each seed's curve, answer and where it lies.

    Args:
        trials: the nested sweep's trial records (errored ones are counted, not used).
        rows: the grid's rows (:func:`ald_tune.report.criterion.grid_rows`).
        crit: the report's ``criterion`` section.
        grid: the grid's finished trials (a fixed run's cost at each answer).
    """
    done = sorted(
        (t for t in trials if t.finished and t.prefixes), key=lambda t: (t.seed or 0, t.trial_id)
    )
    grid_nz, region = [r["n_z"] for r in rows], crit["best_region"]
    seeds = [_seed(t, grid_nz, region, crit, grid) for t in done]
    nzs = [s["n_z"] for s in seeds if s["n_z"] is not None]
    dists = [int(s["distance"]) for s in seeds if s["distance"] is not None]
    sizes = sorted({int(k) for s in seeds for k in s["curve"]})
    return {
        "n_trials": len(trials),
        "n_errored": sum(t.errored for t in trials),
        "seeds": seeds,
        "n_z": nzs,
        "n_in_region": sum(bool(s["in_region"]) for s in seeds),
        "distance_mean": mean(dists),
        "n_near_edge": sum(bool(s["near_edge"]) for s in seeds),
        "steps_above_edge_mean": mean(s["steps_above_edge"] for s in seeds),
        "nz_over_edge_mean": mean(s["nz_over_edge"] for s in seeds),
        # the curve's mean over seeds at each prefix, beside the grid's row at that n_z
        "curve_mean": [{"n_z": k, **_mean_at(seeds, str(k))} for k in sizes],
    }


def _seed(
    t: TrialRecord, grid_nz: list[int], region: list[int], crit: dict, grid: list[TrialRecord]
) -> dict[str, Any]:
    """One nested-dropout seed: its curve's answer against the region, its cost and the
    cost of a fixed run at the answer."""
    edge = curve_edge(t.prefixes, crit)
    nz = edge["n_z"]
    inside, near, dist = (
        distance(int(nz), grid_nz, region) if nz is not None else (False, None, None)
    )
    vs_edge = (
        edge_distance(int(nz), grid_nz, region)
        if nz is not None
        else dict.fromkeys(("near_edge", "steps_above_edge", "nz_over_edge"))
    )
    at = [g for g in grid if g.finished and g.n_z_grid == edge["n_z"]]
    return {
        "seed": t.seed,
        "trial_id": t.trial_id,
        "width": t.nz,
        **{k: edge[k] for k in ("n_z", "rule", "within", "answer_by_grid_best")},
        "in_region": inside,
        "nearest_region_nz": near,
        "distance": dist,
        **vs_edge,
        "epochs": t.epochs,
        "cpu_s": trial_cost(t)[0],
        "prefix_eval_s": sum(finite(c.get("eval_time_s") for c in t.prefixes.values())),
        "fixed_cpu_s": mean(trial_cost(g)[0] for g in at) if at else NAN,
        "tolerances": edge["tolerances"],
        "curve": {str(k): {m: c.get(m, NAN) for m in COLUMNS} for k, c in t.prefixes.items()},
    }


def _mean_at(seeds: list[dict], k: str) -> dict[str, float]:
    return {m: mean(s["curve"].get(k, {}).get(m) for s in seeds) for m in COLUMNS}
