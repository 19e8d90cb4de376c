"""Slow path: a real tiny tracked grid sweep (Ray Tune, SQLite store) leaves one MLflow
logged model per trial; the best one with n_z <= 8 is one search, and it loads back by
its ``models:/`` URI, through ald-tune and through MLflow's own pyfunc loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import ONE_AT_A_TIME

import ald_tune
from ald_tune.config.schema import load_config
from ald_tune.config.tags import FINAL_NZ_TAG
from ald_tune.sweeps.run import run_sweep
from ald_tune.sweeps.tuner import SweepOptions
from ald_tune.tracking.store import client
from ald_tune.tracking.tracker import TrackingOptions

pytestmark = pytest.mark.slow


def test_the_best_small_model_of_a_sweep_is_one_search_and_loads_by_uri(
    ray_session, cache_dir, tmp_path
):
    import mlflow
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    cfg = load_config(
        "search_spaces/digits.yaml",
        overrides=[
            "train.epochs=3",
            "model.hidden=[32, 32]",
            "eval.n_fid=40",
            f"eval.cache_dir={cache_dir}",
            "grid.n_z=[4, 12]",
            "tune.num_samples=1",
            "tune.grid_seeds=1",
            ONE_AT_A_TIME,
            "ald.final_share=0",
        ],
    )
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = run_sweep(
        cfg,
        SweepOptions(mode="grid", run_dir=str(tmp_path), verbose=False),
        TrackingOptions(uri=uri, experiment="m"),
    )
    assert all(t.status == "TERMINATED" for t in result.trials)
    c = client(uri)
    assert len(c.search_logged_models([result.experiment_id])) == 2  # one per trial
    (best,) = c.search_logged_models(
        [result.experiment_id],
        filter_string="metrics.final_n_z <= 8",
        order_by=[{"field_name": f"metrics.{cfg.tune.metric}", "ascending": True}],
        max_results=1,
    )
    run = c.get_run(best.source_run_id)
    assert best.params["n_z"] == run.data.tags[FINAL_NZ_TAG] == "4"
    vae = ald_tune.load_model(f"models:/{best.model_id}", tracking_uri=uri)
    assert vae.n_z == 4 and vae.decode(torch.zeros(3, 4)).shape == (3, 1, 8, 8)
    with _use_tracking_uri(uri):  # as an MLflow user loads it (runs the logged code file)
        pm = mlflow.pyfunc.load_model(f"models:/{best.model_id}")
    assert pm.predict(np.zeros((5, 64))).shape == (5, 4)
