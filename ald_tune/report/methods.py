"""Every method's answer beside its compute: the ranking of the report's ``methods``.

Each method (the grid, grid + ASHA, the units in use of the grid's widest trial, the
intrinsic-dimension estimates, nested dropout, ALD) gets its n_z; whether it lies in the grid's best
region, its distance to it, and where it lies against the plateau edge (grid steps
above it, n_z / edge, near it: :func:`ald_tune.report.criterion.edge_distance`); the
compute until its answer was known (``answer_*``: trial-epochs, CPU-s, GPU-s, wall
seconds), in total (``total_*``), and until a **trained model at the answer** exists
(``trained_*``). They are ranked by: in the region, then near the edge, then CPU-seconds
to a trained model (:func:`rank_key`). Used by :func:`ald_tune.report.build.build_report`.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from ald_tune.report.criterion import distance, edge_distance
from ald_tune.report.numbers import (
    NAN,
    answer_epochs,
    finite,
    last,
    mean,
    num,
    trial_cost,
    trial_seconds,
)
from ald_tune.sweeps.results import TrialRecord

#: How the report names each intrinsic-dimension estimator.
INTRINSIC_NAMES = {"twonn": "TwoNN", "mle": "MLE"}
COMPUTE = ("trial_epochs", "cpu_s", "gpu_s", "wall_s")
ESTIMATED = "estimated by"  # how a model cost taken from another n_z's trial begins


def _asha_answer(asha: list[TrialRecord], metric: str) -> int | None:
    """Grid + ASHA's n_z: its best trial (lowest ``metric``) among those that ran to the end."""
    done = [(last(t, metric), t.nz) for t in asha if t.finished and math.isfinite(last(t, metric))]
    return min(done)[1] if done else None


def _compute(trials: list[TrialRecord], upto: Any = None, wall: Any = None) -> dict[str, float]:
    """Trial-epochs, CPU-s, GPU-s and wall seconds of these trials, each through its
    first ``upto(t)`` epochs (all of them without ``upto``); ``wall`` overrides the wall
    time (a sweep's own), else it is the longest trial's own seconds."""
    n = [upto(t) if upto else t.epochs for t in trials]
    costs = [trial_cost(t, k) for t, k in zip(trials, n)]
    return {
        "trial_epochs": float(sum(n)),
        "cpu_s": sum(c[0] for c in costs),
        "gpu_s": sum(c[1] for c in costs),
        "wall_s": num(wall)
        if wall is not None
        else max((trial_seconds(t.history[:k]) for t, k in zip(trials, n)), default=NAN),
    }


def _per_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The mean over runs of each compute figure (one ALD run answers for one seed)."""
    return {k: mean(r[k] for r in runs) for k in COMPUTE}


def _plus(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    """One computation after the other: every figure adds, wall seconds too."""
    return {k: a[k] + b[k] for k in COMPUTE}


def model_cost(
    nz: int, grid: list[TrialRecord], fixed: list[TrialRecord]
) -> tuple[dict[str, float], str]:
    """The compute of one fixed run at ``nz``, and where the figure comes from.

    A grid trial at ``nz`` (the mean over the grid's seeds) when ``nz`` is on the grid,
    else ``compare``'s fixed run at ``nz``, else the grid trial at the nearest grid n_z
    (ties: the larger) as an estimate. Only trials that ran to the end count.
    """
    for source, pool in (("a grid trial", grid), ("the fixed run", fixed)):
        at = [t for t in pool if t.finished and t.n_z_grid is not None and t.nz == nz]
        if at:
            return _per_run([_compute([t]) for t in at]), f"{source} at n_z {nz}"
    done = [t for t in grid if t.finished and t.n_z_grid is not None]
    if not done:
        return dict.fromkeys(COMPUTE, NAN), f"unknown (no run at n_z {nz})"
    near = min({t.nz for t in done}, key=lambda g: (abs(g - nz), -g))
    at = [t for t in done if t.nz == near]
    return (
        _per_run([_compute([t]) for t in at]),
        f"{ESTIMATED} the grid trial at the nearest n_z {near} (no run at n_z {nz})",
    )


def _method(key: str, name: str, nz: Any, vs: dict, cost: dict, runs: float, note: str) -> dict:
    """One method's entry; ``vs``: where its answer lies, ``cost``: answer/total/trained
    (``trained_estimated``: the trained model's cost is another n_z's, see the note)."""
    return {
        "key": key,
        "method": name,
        "n_z": nz,
        **vs,
        **{f"{k}_{c}": v for k in ("answer", "total", "trained") for c, v in cost[k].items()},
        "trained_estimated": f"model: {ESTIMATED}" in note,
        "runs": runs,
        "note": note,
    }


def rank_methods(
    r: dict,
    trials: dict[str, list[TrialRecord]],
    wall: dict[str, Any],
    metric: str,
    rows: list[dict],
    intrinsic: dict | None,
    units_baseline: bool,
) -> list[dict]:
    """Each method's answer, where it lies against the best region and its edge, the
    compute until it was known, in total and until a trained model at it exists; ranked
    by :func:`rank_key`. ``trials``: ``grid``, ``asha``, ``ald``, ``fixed`` and
    ``nested`` records.

    * grid: its optimum, the edge (grid steps 0), known when its last trial ends; its
      trained model is one of its trials (trained compute = the grid's total);
    * grid + ASHA: the n_z of its best surviving trial, known when the last one ends
      (trained compute = its total);
    * units in use: the last epoch's count of units with mean KL >= ``ald.kl_threshold``
      in the grid's widest trial(s) (the median over seeds), known when that trial ends
      (its compute is that one trial's), then one fixed run at that n_z;
    * TwoNN / MLE: the intrinsic dimension of the training split, rounded (no training),
      then one fixed run at that n_z;
    * nested dropout: each seed's answer from its wide run's prefix curve
      (:mod:`ald_tune.report.nested`), known when that run ends (total: that run), then
      one fixed run at the answer (per seed, then the mean over seeds, like ALD's);
    * ALD: each seed's final n_z, known at its stop decision (its compute to the answer
      is the mean over seeds through that epoch); its run ends with a trained model at
      the answer (trained compute = one run's total).

    A fixed run's cost is :func:`model_cost`'s; the method's note says which.
    """
    grid_nz, region = [x["n_z"] for x in rows], r["criterion"]["best_region"]
    grid = trials["grid"]
    out = _grid_methods(r, trials, wall, metric, grid_nz, region)
    out += _then_fixed(
        grid,
        trials.get("fixed", []),
        grid_nz,
        region,
        intrinsic if intrinsic else {},
        units_baseline,
    )
    if r.get("nested", {}).get("seeds"):
        out.append(_nested_method(r["nested"], trials, region))
    out.append(_ald_method(r, [t for t in trials["ald"] if t.finished]))
    for rank, m in enumerate(sorted(out, key=rank_key), 1):
        m["rank"] = rank
    return sorted(out, key=lambda m: m["rank"])


def _grid_methods(
    r: dict,
    trials: dict[str, list[TrialRecord]],
    wall: dict[str, Any],
    metric: str,
    grid_nz: list[int],
    region: list[int],
) -> list[dict]:
    """The grid's entry and, with an ASHA sweep, grid + ASHA's: each trained its answer
    itself, so the answer, the total and a trained model cost the same."""
    grid = trials["grid"]
    g = _compute(grid, wall=wall.get("grid"))
    opt = r["criterion"]["optimum_nz"]
    out = [
        _method(
            "grid",
            "grid",
            opt,
            {**_where(opt, grid_nz, region), "distance": 0 if region else None},
            {"answer": g, "total": g, "trained": g},
            len(grid),
            "known when its last trial ends; its trial at the answer is the trained model",
        )
    ]
    if trials.get("asha"):
        a = _compute(trials["asha"], wall=wall.get("asha"))
        nz = _asha_answer(trials["asha"], metric)
        out.append(
            _method(
                "asha",
                "grid + ASHA",
                nz,
                _where(nz, grid_nz, region),
                {"answer": a, "total": a, "trained": a},
                len(trials["asha"]),
                f"best surviving trial by {metric}; known when the last one ends",
            )
        )
    return out


def _where(nz: Any, grid_nz: list[int], region: list[int]) -> dict:
    """Where an answer lies against the best region and its edge (all None: no answer)."""
    if nz is None:
        return dict.fromkeys(
            ("in_region", "distance", "near_edge", "steps_above_edge", "nz_over_edge")
        )
    inside, _, dist = distance(int(nz), grid_nz, region)
    return {"in_region": inside, "distance": dist, **edge_distance(int(nz), grid_nz, region)}


def _then_fixed(
    grid: list[TrialRecord],
    fixed: list[TrialRecord],
    grid_nz: list[int],
    region: list[int],
    intrinsic: dict,
    units_baseline: bool,
) -> list[dict]:
    """The baselines whose answer needs one fixed run after it: units in use, and the
    intrinsic-dimension estimates."""

    def cost(nz: int, answer: dict) -> tuple[dict, str]:
        model, source = model_cost(nz, grid, fixed)
        return {"answer": answer, "total": answer, "trained": _plus(answer, model)}, source

    out = []
    widest = [t for t in grid if t.finished and t.nz == max(grid_nz, default=None)]
    counts = finite(last(t, "units_in_use") for t in widest)
    if counts and units_baseline:
        nz = math.ceil(statistics.median(counts))
        c, source = cost(nz, _per_run([_compute([t]) for t in widest]))
        note = f"free within the grid: its widest trial's last epoch; model: {source}"
        name = f"units in use (grid n_z = {max(grid_nz)})"
        out.append(_method("units", name, nz, _where(nz, grid_nz, region), c, 1, note))
    for key, est in intrinsic.items():
        answer = {"trial_epochs": 0.0, "cpu_s": est["cpu_s"], "gpu_s": 0.0, "wall_s": est["wall_s"]}
        c, source = cost(int(est["n_z"]), answer)
        note = (
            f"estimate {est['dimension']:.2f} on {est['n_samples']} training samples; "
            f"model: {source}"
        )
        name = f"intrinsic dimension ({INTRINSIC_NAMES.get(key, key)})"
        out.append(
            _method(f"id_{key}", name, est["n_z"], _where(est["n_z"], grid_nz, region), c, 0, note)
        )
    return out


def _ald_method(r: dict, ald: list[TrialRecord]) -> dict:
    """ALD's entry: per-seed values as lists; in the region / near the edge when every
    seed is, with the counts beside them for the ranking."""
    a, seeds = r["ald"], r["ald"]["seeds"]
    total = _per_run([_compute([t]) for t in ald])
    vs = {
        "in_region": a["n_in_region"] == len(seeds),
        "distance": a["distance_mean"],
        "near_edge": None if not r["criterion"]["best_region"] else a["n_near_edge"] == len(seeds),
        "steps_above_edge": [s["steps_above_edge"] for s in seeds],
        "nz_over_edge": [s["nz_over_edge"] for s in seeds],
        "n_seeds": len(seeds),
        "n_in_region": a["n_in_region"],
        "n_near_edge": a["n_near_edge"],
    }
    return _method(
        "ald",
        f"ALD ({r['rule']})" if r.get("rule") else "ALD",
        a["n_z"],
        vs,
        {
            "answer": _per_run([_compute([t], answer_epochs) for t in ald]),
            "total": total,
            "trained": total,
        },
        1,
        "one run per seed; known at its stop decision; the run ends trained at its answer",
    )


def _nested_method(n: dict, trials: dict[str, list[TrialRecord]], region: list[int]) -> dict:
    """Nested dropout's entry, per seed like ALD's: the wide run is the answer's compute
    (and the method's total), one fixed run at the answer more (:func:`model_cost`) is
    the trained model's."""
    runs = {t.trial_id: t for t in trials.get("nested", [])}
    answer, trained, sources = [], [], []
    for s in n["seeds"]:
        run = _compute([runs[s["trial_id"]]])
        model, source = (
            model_cost(int(s["n_z"]), trials["grid"], trials.get("fixed", []))
            if s["n_z"] is not None
            else (dict.fromkeys(COMPUTE, NAN), "no answer")
        )
        answer.append(run)
        trained.append(_plus(run, model))
        sources.append(source)
    seeds = n["seeds"]
    vs = {
        "in_region": n["n_in_region"] == len(seeds),
        "distance": n["distance_mean"],
        "near_edge": None if not region else n["n_near_edge"] == len(seeds),
        "steps_above_edge": [s["steps_above_edge"] for s in seeds],
        "nz_over_edge": [s["nz_over_edge"] for s in seeds],
        "n_seeds": len(seeds),
        "n_in_region": n["n_in_region"],
        "n_near_edge": n["n_near_edge"],
    }
    a = _per_run(answer)
    note = "one wide run per seed, every prefix evaluated at its end; " + "; ".join(
        f"model: {x}" for x in dict.fromkeys(sources)
    )
    name = f"nested dropout (n_z = {seeds[0]['width']})"
    cost = {"answer": a, "total": a, "trained": _per_run(trained)}
    return _method("nested", name, n["n_z"], vs, cost, 1, note)


def _share(m: dict, flag: str, count: str) -> float:
    """The share of a method's answers with ``flag`` (ALD, nested dropout: of their
    seeds; others: 0 or 1)."""
    if "n_seeds" in m:
        return m[count] / m["n_seeds"] if m["n_seeds"] else 0.0
    return 1.0 if m[flag] else 0.0


def rank_key(m: dict) -> tuple:
    """The ranking: methods with an answer first; then the larger share of answers in the
    best region; then the larger share near the edge; then the fewer CPU-seconds to a
    trained model at the answer (ties keep the order the report lists the methods in).

    For ALD and nested dropout the shares are over their seeds (2 of 3 seeds in the
    region ranks after every method in it and before every method outside it); for every
    other method they are 0 or 1.
    """
    return (
        m["n_z"] is None,
        -_share(m, "in_region", "n_in_region"),
        -_share(m, "near_edge", "n_near_edge"),
        _nan_last(m["trained_cpu_s"]),
    )


def _nan_last(v: Any) -> float:
    x = num(v)
    return x if math.isfinite(x) else math.inf
