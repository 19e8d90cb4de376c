"""The speed-versus-optimality comparison: how close ALD gets to the grid's n_z, at what cost.

Input: the per-trial dicts of finished sweeps (``SweepResult.trials``, or the same
dicts rebuilt from MLflow by :func:`ald_tune.report_mlflow.trials_from_mlflow`). Output: one JSON-ready
dict (:func:`build_report`), written as ``comparison.json``, ``comparison.csv``,
``comparison.md`` and two figures (:func:`write_report`), and logged to the
sweeps' parent MLflow runs under ``report/`` (:func:`log_report`).

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

**Cost**: trial-epochs (epochs run, summed over trials), CPU-seconds (the sum of
per-epoch ``cpu_time_s``; for trials without it, trial time x
``tune.cpus_per_trial``), GPU-seconds (trial time x ``tune.gpus_per_trial``) and
the sweep's wall time. Every trial that ran counts, errored ones included.
Speed-ups are grid / ALD; per ALD seed it is grid / (ALD / n_ald_trials), since
one ALD run is one seed.

Example:
    >>> rep = build_report(grid.trials, ald.trials, dataset="digits")  # doctest: +SKIP
    >>> paths = write_report(rep, "runs/report")                        # doctest: +SKIP
    >>> print(markdown(rep))                                            # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import math
import os
import statistics
import time
from typing import Any, Iterable, Sequence

#: Which direction is better, per metric the report can rank or use in the criterion.
DIRECTIONS = {"recon_loss": "min", "fid_gen": "min", "fid_recon": "min", "neg_elbo": "min",
              "silhouette": "max", "accuracy": "max"}
RANKED = ("recon_loss", "fid_gen", "fid_recon", "neg_elbo", "silhouette")
COLUMNS = (*RANKED, "kl", "accuracy", "active_units")          # averaged into the tables
CURVES = ("n_z", "recon_loss", "fid_gen", "fid_recon", "silhouette", "kl")
FILES = ("comparison.json", "comparison.csv", "comparison.md", "fig_metrics_vs_nz.png",
         "fig_ald_vs_epoch.png")
NAN = math.nan


# ---------------------------------------------------------------- small numeric helpers
def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return NAN


def _finite(vals: Iterable[Any]) -> list[float]:
    return [x for x in map(_num, vals) if math.isfinite(x)]


def _mean(vals: Iterable[Any]) -> float:
    xs = _finite(vals)
    return statistics.fmean(xs) if xs else NAN


def _std(vals: Iterable[Any]) -> float:
    """Sample standard deviation (ddof=1) of the finite values; NaN below two."""
    xs = _finite(vals)
    return statistics.stdev(xs) if len(xs) > 1 else NAN


def _ratio(a: Any, b: Any) -> float:
    a, b = _num(a), _num(b)
    return a / b if math.isfinite(a) and math.isfinite(b) and b > 0 else NAN


def _clean(obj: Any) -> Any:
    """JSON-ready: NaN/inf -> None, numpy scalars -> Python, tuples -> lists."""
    if hasattr(obj, "item") and not isinstance(obj, (dict, list, tuple)):
        obj = obj.item()  # numpy scalar
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


# ---------------------------------------------------------------- reading one trial
def _ok(t: dict) -> bool:
    return t.get("status", "TERMINATED") == "TERMINATED"


def _last(t: dict, key: str) -> float:
    hist = t.get("history") or []
    if hist and key in hist[-1]:
        return _num(hist[-1][key])
    return _num((t.get("metrics") or {}).get(key))


def _setting(t: dict, section: str, key: str, default: float) -> float:
    """A config value from MLflow params, Ray's flattened history or its nested config."""
    for v in ((t.get("params") or {}).get(f"{section}.{key}"),
              ((t.get("history") or [{}])[-1]).get(f"config/space/{section}/{key}"),
              ((t.get("metrics") or {}).get("config") or {}).get("space", {})
              .get(section, {}).get(key)):
        if math.isfinite(_num(v)):
            return _num(v)
    return default


def _trial_nz(t: dict) -> int:
    v = t.get("n_z_grid")
    return int(v) if v is not None else int(_num(t.get("final_n_z")))


def _trial_cost(t: dict) -> tuple[float, float, str]:
    """(CPU-s, GPU-s, source of the CPU figure) of one trial."""
    hist = t.get("history") or []
    secs = _num(t.get("time_s"))
    if not math.isfinite(secs):
        secs = sum(_finite(h.get("train_time_s", 0.0) for h in hist)) + \
            sum(_finite(h.get("eval_time_s", 0.0) for h in hist))
    gpu = secs * _setting(t, "tune", "gpus_per_trial", 0.0)
    cpu = [_num(h.get("cpu_time_s")) for h in hist]
    if cpu and all(math.isfinite(x) for x in cpu):
        return sum(cpu), gpu, "cpu_time_s"
    return secs * _setting(t, "tune", "cpus_per_trial", 1.0), gpu, "time_s x cpus_per_trial"


# ---------------------------------------------------------------- the report
def build_report(grid: list[dict], ald: list[dict], *, asha: list[dict] | None = None,
                 fixed: list[dict] | None = None, wall: dict[str, float] | None = None,
                 dataset: str = "", criterion_metrics: Sequence[str] = ("recon_loss", "fid_gen",
                                                                        "fid_recon"),
                 rel_floor: float = 0.02) -> dict[str, Any]:
    """Compare ALD's chosen n_z and cost against a grid over fixed n_z.

    Args:
        grid: the grid sweep's trial dicts (``SweepResult.trials``): ``n_z_grid``,
            ``seed``, ``status``, ``history`` (per-epoch metric dicts), ``time_s``.
        ald: the ALD sweep's trial dicts (``final_n_z`` is ALD's choice per seed).
        asha: optional trial dicts of a grid + ASHA sweep (cost comparison only).
        fixed: optional fixed-n_z trials at ALD's chosen n_z values; without one at a
            seed's n_z, the grid trial at that exact n_z stands in, else "not run".
        wall: wall time of each sweep in seconds, keys ``grid``, ``ald``, ``asha``.
        dataset: the dataset's name, for the titles.
        criterion_metrics: the metrics the plateau edge must satisfy (module docstring).
        rel_floor: the relative tolerance floor (0.02 = 2 % of the best value).

    Returns:
        A JSON-ready dict: ``grid`` (rows per n_z, optima, mean rank), ``criterion``
        (tolerances, region, plateau edge), ``ald`` (per seed, summary), ``vs`` (final
        metrics against the grid optimum and the fixed run at ALD's n_z), ``cost``,
        ``speedup``, ``headline`` and ``curves`` (for the figures).

    Raises:
        ValueError: no usable grid or ALD trials, an unknown criterion metric, a bad
            ``rel_floor``, or a criterion metric with no finite grid value.
    """
    bad = [m for m in criterion_metrics if m not in DIRECTIONS]
    if bad or not criterion_metrics:
        raise ValueError(f"criterion_metrics must be a non-empty subset of {sorted(DIRECTIONS)}. "
                         f"Got {list(criterion_metrics)!r} instead.")
    if not (isinstance(rel_floor, (int, float)) and 0 <= rel_floor < 1):
        raise ValueError(f"rel_floor must be a float in [0, 1). Got {rel_floor!r} instead.")
    g_ok, a_ok = [t for t in grid if _ok(t)], [t for t in ald if _ok(t)]
    for name, trials, ok in (("grid", grid, g_ok), ("ALD", ald, a_ok)):
        if not ok:
            raise ValueError(f"no finished {name} trials to compare ({len(trials)} given, "
                             f"{len(trials) - len(ok)} errored). Fix: run the {name.lower()} "
                             "sweep, or pass its experiment/sweep name.")
    rows = _grid_rows(g_ok)
    crit = _criterion(rows, g_ok, list(criterion_metrics), rel_floor)
    grid_sec = {"n_trials": len(grid), "n_errored": len(grid) - len(g_ok), "rows": rows,
                "n_seeds": len({t.get("seed") for t in g_ok}),
                "optimum_by_metric": _optima(rows), "mean_rank_nz": _mean_rank(rows)}
    edge: Any = crit["plateau_edge"]
    rank_nz: Any = grid_sec["mean_rank_nz"]
    opt: int | None = int(edge) if edge is not None else (
        int(rank_nz) if rank_nz is not None else None)
    crit["optimum_nz"] = opt
    crit["optimum_rule"] = "plateau_edge" if crit["plateau_edge"] is not None else \
        "mean_rank (no grid n_z is within tolerance on every criterion metric)"
    ald_sec = _ald_section(a_ok, len(ald), rows, crit["best_region"], fixed or [], g_ok)
    cost = {k: _cost(v, (wall or {}).get(k)) for k, v in
            (("grid", grid), ("ald", ald), ("asha", asha)) if v}
    report = {"dataset": dataset, "grid": grid_sec, "criterion": crit, "ald": ald_sec,
              "vs": _versus(ald_sec, rows, opt), "cost": cost, "speedup": _speedups(cost),
              "curves": _curves(a_ok, _at_nz(fixed or [], opt) or _at_nz(g_ok, opt), opt)}
    report["headline"] = _headline(report)
    return _clean(report)


def _grid_rows(trials: list[dict]) -> list[dict]:
    by_nz: dict[int, list[dict]] = {}
    for t in trials:
        by_nz.setdefault(_trial_nz(t), []).append(t)
    rows = []
    for nz in sorted(by_nz):
        row: dict[str, Any] = {"n_z": nz, "n_seeds": len(by_nz[nz]),
                               "seeds": sorted((t.get("seed") for t in by_nz[nz]), key=_num)}
        for m in COLUMNS:
            vals = [_last(t, m) for t in by_nz[nz]]
            row[m], row[m + "_std"], row[m + "_n"] = _mean(vals), _std(vals), len(_finite(vals))
        row["epochs"] = _mean(len(t.get("history") or []) for t in by_nz[nz])
        row["cpu_s"] = sum(_trial_cost(t)[0] for t in by_nz[nz])
        rows.append(row)
    return rows


def _best(rows: list[dict], m: str) -> tuple[int | None, float]:
    """(n_z, value) of the best grid mean of metric ``m``; smaller n_z on ties."""
    sign = 1.0 if DIRECTIONS[m] == "min" else -1.0
    cands = [(sign * r[m], r["n_z"]) for r in rows if math.isfinite(r[m])]
    if not cands:
        return None, NAN
    v, nz = min(cands)
    return nz, sign * v


def _optima(rows: list[dict]) -> dict[str, dict]:
    return {m: dict(zip(("n_z", "value"), _best(rows, m))) for m in RANKED}


def _mean_rank(rows: list[dict]) -> int | None:
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
            for _, i in vals[j:k + 1]:
                rows[i]["ranks"][m] = (j + k) / 2 + 1
            j = k + 1
    for r in rows:
        r["mean_rank"] = _mean(r["ranks"].values())
    ranked = [(r["mean_rank"], r["n_z"]) for r in rows if math.isfinite(r["mean_rank"])]
    return min(ranked)[1] if ranked else None


NOISE_EPOCHS = 10  # the last epochs of each grid trial that the one-seed noise estimate uses


def _epoch_noise(trials: list[dict], m: str) -> tuple[float, int]:
    """(sd, dof): the epoch-to-epoch noise of metric ``m`` at fixed n_z, pooled over the
    grid trials' last NOISE_EPOCHS epochs. First differences remove a slow trend; for
    independent noise of sd s they have sd s * sqrt(2)."""
    ss, dof = 0.0, 0
    for t in trials:
        vals = _finite(h.get(m) for h in (t.get("history") or [])[-NOISE_EPOCHS:])
        diffs = [b - a for a, b in zip(vals, vals[1:])]
        if len(diffs) >= 2:
            mean = sum(diffs) / len(diffs)
            ss += sum((d - mean) ** 2 for d in diffs)
            dof += len(diffs) - 1
    return (math.sqrt(ss / dof / 2), dof) if dof else (0.0, 0)


def _criterion(rows: list[dict], grid: list[dict], metrics: list[str], rel_floor: float) -> dict:
    tol: dict[str, dict] = {}
    for m in metrics:
        best_nz, best = _best(rows, m)
        if best_nz is None:
            raise ValueError(f"criterion metric {m!r} has no finite value in any grid trial. "
                             f"Fix: drop it from criterion_metrics={metrics!r}.")
        dof = sum(r[m + "_n"] - 1 for r in rows if r[m + "_n"] >= 2)
        if dof > 0:
            spread = math.sqrt(sum((r[m + "_n"] - 1) * r[m + "_std"] ** 2
                                   for r in rows if r[m + "_n"] >= 2) / dof)
            source = f"grid seeds (pooled sd, {dof} dof)"
        else:
            spread, n = _epoch_noise(grid, m)
            source = (f"one grid seed: epoch-to-epoch noise of the last {NOISE_EPOCHS} epochs "
                      f"({n} dof)") if n else "none (relative floor only)"
        floor = rel_floor * abs(best)
        tol[m] = {"best": best, "best_nz": best_nz, "spread": spread, "spread_source": source,
                  "rel_floor": floor, "tolerance": max(floor, 2 * spread),
                  "direction": DIRECTIONS[m]}
    within = []
    for r in rows:
        r["within_tolerance"] = all(
            math.isfinite(r[m]) and (r[m] <= t["best"] + t["tolerance"] if t["direction"] == "min"
                                     else r[m] >= t["best"] - t["tolerance"])
            for m, t in tol.items())
        if r["within_tolerance"]:
            within.append(r["n_z"])
    # The plateau is one span: a grid n_z between two that are within tolerance is on it
    # even if one noisy metric misses (a "noise hole"), so the region has no holes.
    region = [r["n_z"] for r in rows if within and within[0] <= r["n_z"] <= within[-1]]
    for r in rows:
        r["in_region"] = r["n_z"] in region
    return {"metrics": metrics, "rel_floor": rel_floor, "tolerances": tol,
            "within_tolerance": within, "noise_holes": sorted(set(region) - set(within)),
            "best_region": region, "plateau_edge": region[0] if region else None}


def _in_region(nz: int, grid_nz: list[int], region: list[int]) -> bool:
    if nz in grid_nz:
        return nz in region
    lo = max((g for g in grid_nz if g < nz), default=None)
    hi = min((g for g in grid_nz if g > nz), default=None)
    return lo in region and hi in region


def _at_nz(trials: list[dict], nz: Any) -> list[dict]:
    return [t for t in trials if _ok(t) and t.get("n_z_grid") is not None
            and int(t["n_z_grid"]) == nz]


def _ald_section(trials: list[dict], n_all: int, rows: list[dict], region: list[int],
                 fixed: list[dict], grid: list[dict]) -> dict:
    grid_nz = [r["n_z"] for r in rows]
    seeds: list[dict[str, Any]] = []
    for t in sorted(trials, key=lambda t: (_num(t.get("seed")), str(t.get("trial_id")))):
        nz = _num(t.get("final_n_z"))
        nz = int(nz if math.isfinite(nz) else _last(t, "n_z"))
        inside = _in_region(nz, grid_nz, region)
        near = min(region, key=lambda r: (abs(r - nz), r)) if region else None
        ref, src = (_at_nz(fixed, nz), "fixed") if _at_nz(fixed, nz) else (_at_nz(grid, nz), "grid")
        cpu = _trial_cost(t)[0]
        seeds.append({"seed": t.get("seed"), "trial_id": t.get("trial_id"), "n_z": nz,
                      "in_region": inside, "nearest_region_nz": near,
                      "distance": 0 if inside else (abs(nz - near) if near is not None else None),
                      "epochs": len(t.get("history") or []) or t.get("epochs"), "cpu_s": cpu,
                      **{m: _last(t, m) for m in COLUMNS},
                      "fixed_source": src if ref else "not run",
                      "fixed": {m: _mean(_last(f, m) for f in ref) for m in COLUMNS} if ref else None})
    nzs = [s["n_z"] for s in seeds]
    dists = [int(s["distance"]) for s in seeds if s["distance"] is not None]
    return {"n_trials": n_all, "n_errored": n_all - len(trials), "seeds": seeds, "n_z": nzs,
            "n_z_mean": _mean(nzs), "n_z_std": _std(nzs) if len(nzs) > 1 else 0.0,
            "n_in_region": sum(s["in_region"] for s in seeds),
            "distance_mean": _mean(dists), "distance_max": max(dists) if dists else None,
            "final": {m: _mean(s[m] for s in seeds) for m in COLUMNS}}


def _versus(ald: dict, rows: list[dict], opt: int | None) -> dict:
    orow = next((r for r in rows if r["n_z"] == opt), None)
    with_fixed = [s for s in ald["seeds"] if s["fixed"]]
    metrics: dict[str, dict[str, float]] = {}
    out: dict[str, Any] = {"optimum_nz": opt, "n_fixed_seeds": len(with_fixed), "metrics": metrics}
    for m in RANKED:
        a = ald["final"][m]
        g = orow[m] if orow else NAN
        f = _mean(s["fixed"][m] for s in with_fixed) if with_fixed else NAN
        metrics[m] = {"ald": a, "grid_optimum": g, "fixed_at_ald_nz": f,
                             "ald_minus_optimum": a - g, "ald_minus_fixed": a - f,
                             "ald_vs_optimum_rel": _ratio(a - g, abs(g)) if g else NAN}
    return out


def _cost(trials: list[dict], wall: Any) -> dict:
    costs = [_trial_cost(t) for t in trials]
    return {"n_trials": len(trials), "n_errored": sum(not _ok(t) for t in trials),
            "trial_epochs": sum(len(t.get("history") or []) or int(t.get("epochs") or 0)
                                for t in trials),
            "cpu_s": sum(c[0] for c in costs), "gpu_s": sum(c[1] for c in costs),
            "cpu_source": sorted({c[2] for c in costs}), "wall_s": _num(wall),
            "nodes": sorted({str(h["node_id"]) for t in trials for h in t.get("history") or []
                             if h.get("node_id")})}  # Ray node ids, when the trials reported them


def _speedups(cost: dict) -> dict:
    ald = cost["ald"]
    out = {}
    for base in ("grid", "asha"):
        if base in cost:
            b = cost[base]
            out[base] = {"compute": _ratio(b["cpu_s"], ald["cpu_s"]),
                         "compute_per_seed": _ratio(b["cpu_s"], ald["cpu_s"] / ald["n_trials"]),
                         "trial_epochs": _ratio(b["trial_epochs"], ald["trial_epochs"]),
                         "wall": _ratio(b["wall_s"], ald["wall_s"])}
    return out


def _curves(ald: list[dict], fixed: list[dict], opt: int | None) -> dict:
    def curve(t: dict) -> dict:
        hist = t.get("history") or []
        return {"seed": t.get("seed"), "epoch": [int(_num(h.get("epoch", i)))
                                                 for i, h in enumerate(hist)],
                **{k: [_num(h.get(k)) for h in hist] for k in CURVES}}
    return {"ald": [curve(t) for t in ald], "fixed_optimum": [curve(t) for t in fixed],
            "fixed_optimum_nz": opt}


def _headline(r: dict) -> dict:
    s, c, a = r["speedup"], r["criterion"], r["ald"]
    h = {"grid_plateau_nz": c["plateau_edge"], "grid_optimum_nz": c["optimum_nz"],
         "grid_mean_rank_nz": r["grid"]["mean_rank_nz"], "grid_region_min": min(
             c["best_region"], default=None), "grid_region_max": max(c["best_region"], default=None),
         "ald_nz_mean": a["n_z_mean"], "ald_nz_std": a["n_z_std"],
         "ald_in_region_fraction": a["n_in_region"] / max(1, len(a["seeds"])),
         "ald_distance_mean": a["distance_mean"]}
    for base, tag in (("grid", ""), ("asha", "_vs_asha")):
        for k, v in s.get(base, {}).items():
            h[f"speedup_{k}{tag}"] = v
    return h


# ---------------------------------------------------------------- outputs
def markdown(report: dict) -> str:
    """The report as Markdown tables (the printed summary and ``comparison.md``)."""
    from .report_plots import markdown_text
    return markdown_text(report)


def write_report(report: dict, out_dir: str) -> dict[str, str]:
    """Write comparison.json/.csv/.md and both figures into ``out_dir``.

    Returns:
        ``{"json", "csv", "md", "fig_metrics", "fig_epochs"}`` -> absolute paths.
    """
    from .report_plots import plot_ald_vs_epoch, plot_metrics_vs_nz

    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    paths = dict(zip(("json", "csv", "md", "fig_metrics", "fig_epochs"),
                     (os.path.join(out_dir, f) for f in FILES)))
    with open(paths["json"], "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=1, allow_nan=False)
    _write_csv(report, paths["csv"])
    with open(paths["md"], "w", encoding="utf-8") as fh:
        fh.write(markdown(report))
    plot_metrics_vs_nz(report, paths["fig_metrics"])
    plot_ald_vs_epoch(report, paths["fig_epochs"])
    return paths


def _write_csv(report: dict, path: str) -> None:
    head = ["method", "n_z", "seed", "n_seeds", *COLUMNS, "mean_rank", "in_region", "distance",
            "epochs", "cpu_s"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, head, extrasaction="ignore", restval="")
        w.writeheader()
        for r in report["grid"]["rows"]:
            w.writerow({**r, "method": "grid", "seed": "", "distance": 0 if r["in_region"] else ""})
        for s in report["ald"]["seeds"]:
            w.writerow({**s, "method": "ald", "n_seeds": 1})


def log_report(uri: str, run_ids: list[str], paths: dict[str, str], report: dict) -> None:
    """Attach the files under ``report/`` and the headline numbers as ``report.*`` metrics."""
    from mlflow.entities import Metric

    from .tracking import client

    c, now = client(uri), int(time.time() * 1000)
    nums = {k: v for k, v in report["headline"].items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for run_id in dict.fromkeys(r for r in run_ids if r):
        for p in paths.values():
            c.log_artifact(run_id, p, artifact_path="report")
        c.log_batch(run_id, metrics=[Metric(f"report.{k}", float(v), now, 0)
                                     for k, v in sorted(nums.items())])
