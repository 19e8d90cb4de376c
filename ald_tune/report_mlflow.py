"""Rebuild a comparison from MLflow alone (``ald-tune report --experiment NAME``).

Reads the newest finished parent run per sweep kind and each child run's metric
histories back into the trial dicts :func:`ald_tune.report.build_report` takes.
"""

from __future__ import annotations

from typing import Any

from .report import build_report, log_report, write_report
from .trial_records import NAN, num

def trials_from_mlflow(uri: str, experiment: str, *,
                       sweeps: dict[str, str] | None = None) -> dict[str, Any]:
    """Rebuild the trial dicts of finished sweeps from MLflow alone.

    Picks, per kind (``grid``, ``ald``, ``asha`` = a grid sweep run with
    ``tune.scheduler=asha``), the newest parent run that ended (FINISHED, or FAILED
    when a trial errored), or the sweep named in ``sweeps`` (``{kind: sweep name}``;
    also ``fixed``: a grid sweep of fixed runs at ALD's n_z values). Name the grid
    sweep when other grid sweeps share the experiment. Each child run becomes a dict
    in the ``SweepResult.trials`` format with its per-epoch metric history; a trial's
    time is its child run's duration, a sweep's wall time its parent run's (which
    includes any pause before a ``--resume``).

    Returns:
        ``{"grid", "ald", "asha", "fixed": [trial dicts], "wall": {kind: s},
        "parents": {kind: run_id}, "ald_rule": the ALD sweep's ald.rule, "dataset": str}``.

    Raises:
        ValueError: the experiment or a named sweep does not exist.
    """
    from .tracking import PARENT_TAG, SWEEP_TAG, client

    c = client(uri)
    exp = c.get_experiment_by_name(experiment)
    if exp is None:
        raise ValueError(f"MLflow experiment {experiment!r} not found at {uri!r}. Fix: pass "
                         "--experiment of a finished sweep (default: ald-tune-<dataset>).")
    runs = c.search_runs([exp.experiment_id], filter_string=f"tags.`{SWEEP_TAG}` != ''",
                         max_results=5000, order_by=["attributes.start_time DESC"])
    runs = [r for r in runs if PARENT_TAG not in r.data.tags]
    parents: dict[str, Any] = {}
    for kind, name in (sweeps or {}).items():
        found = [r for r in runs if r.data.tags.get(SWEEP_TAG) == name]
        if not found:
            raise ValueError(f"sweep {name!r} ({kind}) not found in experiment {experiment!r}.")
        parents[kind] = found[0]
    named = {p.info.run_id for p in parents.values()}
    for r in runs:
        mode = r.data.tags.get("ald_tune.mode")
        kind = "asha" if mode == "grid" and r.data.params.get("tune.scheduler") == "asha" else mode
        if kind in ("grid", "ald", "asha") and kind not in parents and \
                r.info.run_id not in named and r.info.status in ("FINISHED", "FAILED"):
            parents[kind] = r
    out: dict[str, Any] = {"grid": [], "ald": [], "asha": [], "fixed": [], "wall": {},
                           "parents": {k: p.info.run_id for k, p in parents.items()},
                           "ald_rule": parents["ald"].data.params.get("ald.rule")
                           if "ald" in parents else None,
                           "dataset": next((p.data.tags.get("ald_tune.dataset", "")
                                            for p in parents.values()), "")}
    for kind, p in parents.items():
        if p.info.end_time:
            out["wall"][kind] = (p.info.end_time - p.info.start_time) / 1000
        children = c.search_runs([exp.experiment_id], max_results=5000,
                                 filter_string=f"tags.`{PARENT_TAG}` = '{p.info.run_id}'")
        out[kind] = sorted((_child_trial(c, ch) for ch in children),
                           key=lambda t: (t["n_z_grid"] or 0, t["seed"] or 0, t["trial_id"]))
    return out


def _child_trial(c, run) -> dict[str, Any]:
    from .tracking import TRACKED_METRICS, TRIAL_TAG

    steps: dict[int, dict[str, Any]] = {}
    for key in TRACKED_METRICS:
        for m in sorted(c.get_metric_history(run.info.run_id, key), key=lambda m: m.timestamp):
            steps.setdefault(m.step, {"epoch": m.step})[key] = m.value
    history = [steps[s] for s in sorted(steps)]
    tags, params = run.data.tags, run.data.params
    fixed = tags.get("ald_tune.rule") == "fixed"
    last_nz = history[-1].get("n_z") if history else None
    final = tags.get("ald_tune.final_n_z", last_nz)
    seed = tags.get("ald_tune.seed", params.get("train.seed"))
    status = {"FINISHED": "TERMINATED", "FAILED": "ERROR", "KILLED": "ERROR"}
    return {"trial_id": tags.get(TRIAL_TAG, run.info.run_id),
            "seed": int(seed) if seed is not None else None,
            "n_z_grid": int(num(params.get("n_z_init", last_nz))) if fixed else None,
            "final_n_z": int(num(final)) if final is not None else None,
            "epochs": len(history), "status": status.get(run.info.status, run.info.status),
            "time_s": (run.info.end_time - run.info.start_time) / 1000 if run.info.end_time else NAN,
            "metrics": dict(history[-1]) if history else {}, "history": history,
            "config": {"mode": tags.get("ald_tune.mode"), "seed": seed}, "params": dict(params),
            "path": run.info.artifact_uri, "run_id": run.info.run_id}


def report_from_mlflow(uri: str, experiment: str, out_dir: str, *,
                       sweeps: dict[str, str] | None = None, log: bool = True,
                       **kwargs: Any) -> tuple[dict, dict[str, str]]:
    """Rebuild, write and (with ``log``) log the report from MLflow alone.

    ``kwargs`` go to :func:`build_report` (e.g. ``criterion_metrics``, ``rel_floor``).

    Returns:
        (report, paths of the files written)
    """
    found = trials_from_mlflow(uri, experiment, sweeps=sweeps)
    report = build_report(found["grid"], found["ald"], asha=found["asha"] or None,
                          fixed=found["fixed"] or None, wall=found["wall"],
                          dataset=kwargs.pop("dataset", found["dataset"]), **kwargs)
    if found["ald_rule"]:
        report["rule"] = found["ald_rule"]
    paths = write_report(report, out_dir)
    if log:
        log_report(uri, list(found["parents"].values()), paths, report)
    return report, paths
