"""Slow path: real tiny VAE trials on digits through Ray Tune into a real `mlflow server`,
checked through MLflow's REST API."""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request

import pytest

from ald_tune.config.schema import load_config
from ald_tune.engine.trainer import Trainer
from ald_tune.sweeps.run import run_sweep
from ald_tune.sweeps.tuner import SweepOptions
from ald_tune.testing.faults import fail_once
from ald_tune.tracking.tracker import TrackingOptions

pytestmark = pytest.mark.slow
EPOCHS = 10


def tiny(cache_dir, *extra):
    return load_config(
        "search_spaces/digits.yaml",
        overrides=[
            f"train.epochs={EPOCHS}",
            "ald.window=4",
            "ald.patience=2",
            "ald.n_z_init=12",
            "model.hidden=[64, 64]",
            "eval.n_fid=50",
            f"eval.cache_dir={cache_dir}",
            "grid.n_z=[2, 6]",
            "tune.num_samples=1",
            "tune.checkpoint_every=2",
            "tune.checkpoint_min_s=0",
            "ald.rule=paper",
            "tune.grid_seeds=1",  # one trial per grid n_z
            "ald.final_share=0",  # runs exactly EPOCHS long
            *extra,
        ],
    )  # the paper rule prunes on a fixed schedule: resizes to test


def rest(url, path, body=None):
    if body is None:
        req = urllib.request.Request(url + path)
    else:
        req = urllib.request.Request(
            url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def runs_of(url, result):
    runs = rest(
        url,
        "/api/2.0/mlflow/runs/search",
        {"experiment_ids": [result.experiment_id], "max_results": 1000},
    )["runs"]
    tags = lambda r: {t["key"]: t["value"] for t in r["data"].get("tags", [])}
    children = [r for r in runs if tags(r).get("mlflow.parentRunId") == result.parent_run_id]
    return runs, children, tags


def history(url, run_id, key="n_z"):
    q = urllib.parse.urlencode({"run_id": run_id, "metric_key": key, "max_results": 10000})
    ms = rest(url, f"/api/2.0/mlflow/metrics/get-history?{q}").get("metrics", [])
    return sorted((int(m.get("step", 0)), m["value"]) for m in ms)


def test_real_sweeps_into_an_mlflow_server(ray_session, mlflow_server, cache_dir, tmp_path):
    cfg = tiny(cache_dir)
    for mode in ("ald", "grid"):
        result = run_sweep(
            cfg,
            SweepOptions(
                mode=mode,
                run_dir=str(tmp_path),
                verbose=False,
            ),
            TrackingOptions(uri=mlflow_server, experiment="real"),
        )
        assert all(t.status == "TERMINATED" for t in result.trials)
        runs, children, tags = runs_of(mlflow_server, result)
        assert len(children) == (1 if mode == "ald" else 2)
        for child in children:
            rid = child["info"]["run_id"]
            steps = history(mlflow_server, rid)
            assert [s for s, _ in steps] == list(range(EPOCHS))
            values = [v for _, v in steps]
            if mode == "ald":
                assert (
                    values[0] == 12 and values[-1] < 12 and values == sorted(values, reverse=True)
                )
            else:
                assert len(set(values)) == 1
            q = urllib.parse.urlencode({"run_id": rid})
            files = {
                f["path"]
                for f in rest(mlflow_server, f"/api/2.0/mlflow/artifacts/list?{q}")["files"]
            }
            assert {"history.json", "history.png", "model.safetensors", "images"} <= files


def test_resized_trial_killed_after_a_prune_resumes_at_the_right_n_z(
    ray_session, mlflow_server, cache_dir, tmp_path
):
    cfg = tiny(cache_dir)
    marker = str(tmp_path / "failed")
    # Prunes happen at epochs 2, 4, ...; checkpoint after epoch 3; the failure hits after
    # epoch 4's prune, so the retry must restore n_z from the epoch-3 checkpoint.
    result = run_sweep(
        cfg,
        SweepOptions(
            mode="ald",
            run_dir=str(tmp_path),
            verbose=False,
            trial_callbacks=(fail_once(4, marker),),
        ),
        TrackingOptions(uri=mlflow_server, experiment="killed"),
    )
    assert os.path.exists(marker + ".ald.0") and result.trials[0].status == "TERMINATED"
    _, children, _ = runs_of(mlflow_server, result)
    assert len(children) == 1
    logged = history(mlflow_server, children[0]["info"]["run_id"])
    assert [s for s, _ in logged] == list(range(EPOCHS))
    # The same seed without Ray and without the failure: identical n_z path and metrics.
    clean = Trainer(cfg.replace(train={"threads": 1}))
    list(clean)
    assert [v for _, v in logged] == [h["n_z"] for h in clean.history]
    recon = history(mlflow_server, children[0]["info"]["run_id"], "recon_loss")
    assert [v for _, v in recon] == pytest.approx(
        [h["recon_loss"] for h in clean.history], rel=1e-6
    )
