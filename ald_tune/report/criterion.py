"""The grid's optimal n_z and best region, and where an ALD n_z lies in it.

**Grid value of a metric at n_z**: the mean over grid seeds of each trial's
last-epoch value (NaN values ignored). Errored trials are left out and counted.

**Optimal n_z by one metric**: the grid n_z with the lowest mean (``recon_loss``,
``fid_gen``, ``fid_recon``, ``neg_elbo``) or the highest (``silhouette``); ties
go to the smaller n_z.

**The criterion: the plateau edge.** Past the size the data needs, the metrics
flatten into a noisy plateau, where picking the single best value picks noise.
For each criterion metric m (default ``recon_loss``, ``fid_gen``, ``fid_recon``,
the generative-quality metrics; silhouette is reported but not part of it):

* best(m) = the grid's best mean value of m over all grid n_z;
* spread(m) = the pooled standard deviation across grid seeds (the per-n_z
  sample variances pooled with weights n_seeds - 1) when the grid has at least
  two seeds at some n_z (``tune.grid_seeds`` >= 2, the quick MNIST and
  FashionMNIST presets); with one seed, the epoch-to-epoch noise of m at fixed
  n_z (the sd of first differences over each grid trial's last 10 epochs,
  pooled, divided by sqrt 2: a grid-only estimate, the same for every ALD rule);
  otherwise 0;
* tol(m) = max(rel_floor * |best(m)|, 2 * spread(m)), with rel_floor = 0.02.

A grid n_z is *within tolerance* when, for every criterion metric m, its mean
is at most best(m) + tol(m) (for a higher-is-better metric: at least
best(m) - tol(m)). The **plateau edge**, the smallest grid n_z within tolerance, is
the grid's optimal n_z. The **best region** is the plateau: every grid n_z from the
edge up to the largest n_z within tolerance. A grid n_z inside that span that misses
the tolerance on some metric is a *noise hole* (a plateau has no holes: on MNIST a
100-image-noisy FID missed at n_z 12 between 10 and 16); it is in the region and
listed in ``criterion.noise_holes``.
If no grid n_z is within tolerance on every metric, the region is empty and the
mean-rank choice stands in as the optimum (``criterion.optimum_rule`` says so).
The tolerances, spreads and their sources are recorded in the output.

**Mean rank**: each grid n_z is ranked per metric (1 = best, ties share the mean
rank) over recon_loss, fid_gen, fid_recon, neg_elbo and silhouette; the ranks are
averaged over the metrics; its argmin (smaller n_z on ties) is reported too.

**ALD against the region**: ALD's n_z is each seed's final n_z. A value on the
grid lies in the best region when it belongs to it; a value between two grid
points lies in it when both neighbouring grid points do. Its distance is 0 when
in the region, else |n_z - r| for the nearest region member r.

**Distance to the edge** (:func:`edge_distance`), for any answer n_z, beside "in the
region":

* *grid steps above the edge*: how many grid n_z values lie between the edge and
  n_z. On the grid it is the count of grid points g with edge < g <= n_z (the edge
  itself: 0). Off the grid, between grid points g_i < n_z < g_(i+1), it is that count
  plus the fraction of the way from g_i to g_(i+1), (n_z - g_i) / (g_(i+1) - g_i):
  the grid's index interpolated linearly, minus the edge's index. Below the edge it
  is negative (-1: one grid point below). Past either end of the grid the nearest
  gap is extended (a one-point grid counts steps of its point's size). Rounded to
  three decimals.
* *n_z / edge*: the answer as a multiple of the edge (1.0 at the edge).
* *near the edge*: in the best region and n_z <= max(edge + 2, 1.5 x edge)
  (:func:`near_edge_bound`). The region starts at the edge, so a near answer is
  never below it; an answer outside the region is never near, even a small one
  just below the edge or just past a region that ends early.

Without a region (no grid n_z within tolerance) all three are None.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Any

from ald_tune.config.vocabulary import COLUMNS, DIRECTIONS, RANKED
from ald_tune.report.numbers import NAN, finite, last, mean, num, std, trial_cost
from ald_tune.sweeps.results import TrialRecord


def grid_rows(trials: list[TrialRecord]) -> list[dict]:
    by_nz: dict[int, list[TrialRecord]] = {}
    for t in trials:
        by_nz.setdefault(t.nz, []).append(t)
    rows = []
    for nz in sorted(by_nz):
        row: dict[str, Any] = {
            "n_z": nz,
            "n_seeds": len(by_nz[nz]),
            "seeds": sorted((t.seed for t in by_nz[nz]), key=num),
        }
        for m in COLUMNS:
            vals = [last(t, m) for t in by_nz[nz]]
            row[m], row[m + "_std"], row[m + "_n"] = mean(vals), std(vals), len(finite(vals))
        row["epochs"] = mean(t.epochs for t in by_nz[nz])
        row["cpu_s"] = sum(trial_cost(t)[0] for t in by_nz[nz])
        rows.append(row)
    return rows


def best(rows: list[dict], m: str) -> tuple[int | None, float]:
    """(n_z, value) of the best grid mean of metric ``m``; smaller n_z on ties."""
    sign = 1.0 if DIRECTIONS[m] == "min" else -1.0
    cands = [(sign * r[m], r["n_z"]) for r in rows if math.isfinite(r[m])]
    if not cands:
        return None, NAN
    v, nz = min(cands)
    return nz, sign * v


def optima(rows: list[dict]) -> dict[str, dict]:
    return {m: dict(zip(("n_z", "value"), best(rows, m))) for m in RANKED}


def mean_rank(rows: list[dict]) -> int | None:
    for r in rows:
        r["ranks"] = {}
    for m in RANKED:
        sign = 1.0 if DIRECTIONS[m] == "min" else -1.0
        vals = sorted((sign * r[m], i) for i, r in enumerate(rows) if math.isfinite(r[m]))
        j = 0
        while j < len(vals):  # ties share the mean of their ranks
            k = j
            while k + 1 < len(vals) and vals[k + 1][0] == vals[j][0]:
                k += 1
            for _, i in vals[j : k + 1]:
                rows[i]["ranks"][m] = (j + k) / 2 + 1
            j = k + 1
    for r in rows:
        r["mean_rank"] = mean(r["ranks"].values())
    ranked = [(r["mean_rank"], r["n_z"]) for r in rows if math.isfinite(r["mean_rank"])]
    return min(ranked)[1] if ranked else None


NOISE_EPOCHS = 10  # the last epochs of each grid trial that the one-seed noise estimate uses


def epoch_noise(trials: list[TrialRecord], m: str) -> tuple[float, int]:
    """(sd, dof): the epoch-to-epoch noise of metric ``m`` at fixed n_z, pooled over the
    grid trials' last NOISE_EPOCHS epochs. First differences remove a slow trend; for
    independent noise of sd s they have sd s * sqrt(2)."""
    ss, dof = 0.0, 0
    for t in trials:
        vals = finite(h.get(m) for h in t.history[-NOISE_EPOCHS:])
        diffs = [b - a for a, b in zip(vals, vals[1:])]
        if len(diffs) >= 2:
            avg = sum(diffs) / len(diffs)
            ss += sum((d - avg) ** 2 for d in diffs)
            dof += len(diffs) - 1
    return (math.sqrt(ss / dof / 2), dof) if dof else (0.0, 0)


def criterion(
    rows: list[dict], grid: list[TrialRecord], metrics: list[str], rel_floor: float
) -> dict:
    """The report's ``criterion`` section: each metric's tolerance, the grid n_z within it
    on every metric, the best region (one span, noise holes included) and its plateau
    edge. Marks each row's ``within_tolerance`` and ``in_region``.

    Raises:
        ValueError: a criterion metric with no finite value in any grid trial.
    """
    tol = {m: _tolerance(rows, grid, m, metrics, rel_floor) for m in metrics}
    within = []
    for r in rows:
        r["within_tolerance"] = all(_within(r[m], t) for m, t in tol.items())
        if r["within_tolerance"]:
            within.append(r["n_z"])
    # The plateau is one span: a grid n_z between two that are within tolerance is on it
    # even if one noisy metric misses (a "noise hole"), so the region has no holes.
    region = [r["n_z"] for r in rows if within and within[0] <= r["n_z"] <= within[-1]]
    for r in rows:
        r["in_region"] = r["n_z"] in region
    return {
        "metrics": metrics,
        "rel_floor": rel_floor,
        "tolerances": tol,
        "within_tolerance": within,
        "noise_holes": sorted(set(region) - set(within)),
        "best_region": region,
        "plateau_edge": region[0] if region else None,
        "near_edge_max_nz": near_edge_bound(region[0]) if region else None,
    }


def _tolerance(
    rows: list[dict], grid: list[TrialRecord], m: str, metrics: list[str], rel_floor: float
) -> dict:
    """One metric's best grid value and tolerance: max(rel_floor x |best|, 2 x spread),
    the spread pooled over grid seeds, else from one seed's epoch-to-epoch noise."""
    best_nz, top = best(rows, m)
    if best_nz is None:
        raise ValueError(
            f"criterion metric {m!r} has no finite value in any grid trial. "
            f"Fix: drop it from criterion_metrics={metrics!r}."
        )
    dof = sum(r[m + "_n"] - 1 for r in rows if r[m + "_n"] >= 2)
    if dof > 0:
        spread = math.sqrt(
            sum((r[m + "_n"] - 1) * r[m + "_std"] ** 2 for r in rows if r[m + "_n"] >= 2) / dof
        )
        source = f"grid seeds (pooled sd, {dof} dof)"
    else:
        spread, n = epoch_noise(grid, m)
        source = (
            (f"one grid seed: epoch-to-epoch noise of the last {NOISE_EPOCHS} epochs ({n} dof)")
            if n
            else "none (relative floor only)"
        )
    floor = rel_floor * abs(top)
    return {
        "best": top,
        "best_nz": best_nz,
        "spread": spread,
        "spread_source": source,
        "rel_floor": floor,
        "tolerance": max(floor, 2 * spread),
        "direction": DIRECTIONS[m],
    }


def _within(value: float, t: dict) -> bool:
    """A finite value within tolerance of the best, in the metric's direction."""
    return math.isfinite(value) and (
        value <= t["best"] + t["tolerance"]
        if t["direction"] == "min"
        else value >= t["best"] - t["tolerance"]
    )


def in_region(nz: int, grid_nz: list[int], region: list[int]) -> bool:
    if nz in grid_nz:
        return nz in region
    lo = max((g for g in grid_nz if g < nz), default=None)
    hi = min((g for g in grid_nz if g > nz), default=None)
    return lo in region and hi in region


def distance(nz: int, grid_nz: list[int], region: list[int]) -> tuple[bool, int | None, Any]:
    """(in the region, nearest region member, distance in n_z: 0 inside)."""
    inside = in_region(nz, grid_nz, region)
    near = min(region, key=lambda r: (abs(r - nz), r)) if region else None
    return inside, near, 0 if inside else (abs(nz - near) if near is not None else None)


#: Near the edge means n_z <= max(edge + NEAR_EDGE_STEPS, NEAR_EDGE_RATIO x edge).
NEAR_EDGE_STEPS, NEAR_EDGE_RATIO = 2, 1.5


def near_edge_bound(edge: int) -> float:
    """The largest n_z still near the plateau edge: max(edge + 2, 1.5 x edge).

    Example:
        >>> near_edge_bound(4), near_edge_bound(10), near_edge_bound(7)
        (6, 15.0, 10.5)
    """
    return max(edge + NEAR_EDGE_STEPS, NEAR_EDGE_RATIO * edge)


def grid_position(nz: float, grid_nz: list[int]) -> float:
    """The grid index of n_z, interpolated linearly between grid points (and past the
    ends along the nearest gap; a one-point grid: steps of its point's size)."""
    g = sorted(grid_nz)
    if len(g) == 1:
        return (nz - g[0]) / g[0]
    i = min(max(bisect_right(g, nz) - 1, 0), len(g) - 2)  # the segment [g_i, g_(i+1)]
    return i + (nz - g[i]) / (g[i + 1] - g[i])


def edge_distance(nz: int, grid_nz: list[int], region: list[int]) -> dict[str, Any]:
    """Where n_z lies against the plateau edge (the module docstring defines each field).

    Returns:
        ``{"near_edge": bool, "steps_above_edge": float, "nz_over_edge": float}``,
        every value None without a region.

    Example:
        >>> grid, region = [2, 4, 6, 8, 12, 16], [4, 6, 8, 12, 16]
        >>> edge_distance(11, grid, region)
        {'near_edge': False, 'steps_above_edge': 2.75, 'nz_over_edge': 2.75}
        >>> edge_distance(6, grid, region)["near_edge"], edge_distance(2, grid, region)
        (True, {'near_edge': False, 'steps_above_edge': -1.0, 'nz_over_edge': 0.5})
    """
    if not region:
        return {"near_edge": None, "steps_above_edge": None, "nz_over_edge": None}
    edge = region[0]
    steps = grid_position(nz, grid_nz) - grid_position(edge, grid_nz)
    return {
        "near_edge": in_region(nz, grid_nz, region) and nz <= near_edge_bound(edge),
        "steps_above_edge": round(steps, 3),
        "nz_over_edge": round(nz / edge, 3),
    }
