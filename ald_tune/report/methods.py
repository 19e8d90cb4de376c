"""Every method's answer beside its compute: the ranking of the report's ``methods``.

Each method (the grid, grid + ASHA, the units in use of the grid's widest trial, the
intrinsic-dimension estimates, nested dropout, ALD) gets its n_z, whether it lies in the grid's best
region and its distance to it, the compute until its answer was known (``answer_*``:
trial-epochs, CPU-s, GPU-s, wall seconds) and in total (``total_*``). They are ranked by
distance, then by CPU-seconds to the answer. Used by :func:`ald_tune.report.build.build_report`.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from ald_tune.report.criterion import distance
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
    return {k: mean(r[k] for r in runs) for k in ("trial_epochs", "cpu_s", "gpu_s", "wall_s")}


def _method(
    name: str, nz: Any, where: tuple, answer: dict, total: dict, runs: float, note: str
) -> dict:
    inside, _, dist = where
    return {
        "method": name,
        "n_z": nz,
        "in_region": inside,
        "distance": dist,
        **{f"answer_{k}": v for k, v in answer.items()},
        **{f"total_{k}": v for k, v in total.items()},
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
    """Each method's answer beside the compute until it was known and its total compute:
    the data of the cost-versus-quality figure, ranked by distance to the best region,
    then compute to the answer (CPU-s).

    * grid: its optimum (distance 0 by definition), known when its last trial ends;
    * grid + ASHA: the n_z of its best surviving trial, known when the last one ends;
    * units in use: the last epoch's count of units with mean KL >= ``ald.kl_threshold``
      in the grid's widest trial(s) (the median over seeds), known when that trial ends
      (free within the grid; its compute is that one trial's);
    * TwoNN / MLE: the intrinsic dimension of the training split, rounded (no training);
    * nested dropout: each seed's answer from its wide run's prefix curve
      (:mod:`ald_tune.report.nested`), known when that run ends; total: plus one fixed
      run at the answer;
    * ALD: each seed's final n_z, known at its stop decision (its compute to the answer
      is the mean over seeds through that epoch; total: through its last epoch).
    """
    grid_nz, region = [x["n_z"] for x in rows], r["criterion"]["best_region"]

    def where(nz: Any) -> tuple:
        return distance(int(nz), grid_nz, region) if nz is not None else (None, None, None)

    grid = trials["grid"]
    g = _compute(grid, wall=wall.get("grid"))
    out = [
        _method(
            "grid",
            r["criterion"]["optimum_nz"],
            (bool(region), None, 0 if region else None),
            g,
            g,
            len(grid),
            "known when its last trial ends",
        )
    ]
    if trials.get("asha"):
        a = _compute(trials["asha"], wall=wall.get("asha"))
        nz = _asha_answer(trials["asha"], metric)
        out.append(
            _method(
                "grid + ASHA",
                nz,
                where(nz),
                a,
                a,
                len(trials["asha"]),
                f"best surviving trial by {metric}; known when the last one ends",
            )
        )
    widest = [t for t in grid if t.finished and t.nz == max(grid_nz, default=None)]
    counts = finite(last(t, "units_in_use") for t in widest)
    if counts and units_baseline:
        nz = math.ceil(statistics.median(counts))
        w = _per_run([_compute([t]) for t in widest])
        out.append(
            _method(
                f"units in use (grid n_z = {max(grid_nz)})",
                nz,
                where(nz),
                w,
                w,
                1,
                "free within the grid: its widest trial's last epoch",
            )
        )
    for key, est in (intrinsic or {}).items():
        c = {"trial_epochs": 0.0, "cpu_s": est["cpu_s"], "gpu_s": 0.0, "wall_s": est["wall_s"]}
        out.append(
            _method(
                f"intrinsic dimension ({INTRINSIC_NAMES.get(key, key)})",
                est["n_z"],
                where(est["n_z"]),
                c,
                c,
                0,
                f"estimate {est['dimension']:.2f} on {est['n_samples']} training samples",
            )
        )
    if r.get("nested", {}).get("seeds"):
        out.append(_nested_method(r["nested"], trials["nested"], grid))
    ald = [t for t in trials["ald"] if t.finished]
    seeds = r["ald"]["seeds"]
    out.append(
        _method(
            f"ALD ({r['rule']})" if r.get("rule") else "ALD",
            r["ald"]["n_z"],
            (
                r["ald"]["n_in_region"] == len(seeds),
                None,
                r["ald"]["distance_mean"],
            ),
            _per_run([_compute([t], answer_epochs) for t in ald]),
            _per_run([_compute([t]) for t in ald]),
            1,
            "one run per seed; known at its stop decision",
        )
    )
    ranked = sorted(
        range(len(out)),
        key=lambda i: (
            _nan_last(out[i]["distance"]),
            _nan_last(out[i]["answer_cpu_s"]),
        ),
    )
    for rank, i in enumerate(ranked, 1):
        out[i]["rank"] = rank
    return sorted(out, key=lambda m: m["rank"])


def _nested_method(n: dict, nested: list[TrialRecord], grid: list[TrialRecord]) -> dict:
    """Nested dropout: each seed's answer from its wide run's prefix curve, known when
    that run (and its prefix evaluations) ends; to a trained model, one fixed run at the
    answer more, its cost measured from the grid's trials at that n_z (per seed, then
    the mean over seeds, like ALD's)."""
    runs = {t.trial_id: t for t in nested}
    answer, trained = [], []
    for s in n["seeds"]:
        run = _compute([runs[s["trial_id"]]])
        at = [g for g in grid if g.finished and g.n_z_grid == s["n_z"]]
        fixed = _per_run([_compute([g]) for g in at]) if at else dict.fromkeys(run, NAN)
        answer.append(run)
        trained.append({k: run[k] + fixed[k] for k in run})
    width = n["seeds"][0]["width"]
    return _method(
        f"nested dropout (n_z = {width})",
        n["n_z"],
        (n["n_in_region"] == len(n["seeds"]), None, n["distance_mean"]),
        _per_run(answer),
        _per_run(trained),
        1,
        "one wide run per seed, every prefix evaluated at its end; total: plus one fixed "
        "run at its answer (a grid trial's cost)",
    )


def _nan_last(v: Any) -> float:
    x = num(v)
    return x if math.isfinite(x) else math.inf
