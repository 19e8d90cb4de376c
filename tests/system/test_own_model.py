"""The user's own model and non-image data through the whole tool, as a user runs it:
``ald-tune compare`` in its own process, a real Ray runtime, a real MLflow store."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ONE_AT_A_TIME, ROOT

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def compare(tmp_path, *sets: str, space: str = "digits", rules: str = "ald-tune") -> dict:
    """Run ``ald-tune compare`` with ``user_models`` importable (PYTHONPATH, as a user puts
    their package there), and return the recommendation the report wrote."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([TESTS, ROOT])}
    env.pop("RAY_ADDRESS", None)
    argv = [sys.executable, "-m", "ald_tune.cli", "compare"]
    argv += ["--space", os.path.join(ROOT, "search_spaces", f"{space}.yaml")]
    argv += ["--run-dir", str(tmp_path), "--out", str(tmp_path / "report"), "--rules", rules]
    argv += ["--no-fixed", "--baselines", "none", "--set", "tune.num_samples=1"]
    argv += ["--set", "tune.checkpoint_min_s=0", "--set", "tune.grid_seeds=1"]
    argv += ["--set", ONE_AT_A_TIME]
    argv += ["--set", "ald.final_share=0"]  # every run exactly train.epochs long
    for s in sets:
        argv += ["--set", s]
    done = subprocess.run(argv, cwd=str(tmp_path), env=env, capture_output=True, text=True)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    return json.loads((tmp_path / "report" / "recommendation.json").read_text())


def mlflow_runs(tmp_path, experiment: str):
    from mlflow import MlflowClient

    client = MlflowClient("sqlite:///" + str(tmp_path / "mlflow.db"))
    exp = client.get_experiment_by_name(experiment)
    return client, client.search_runs([exp.experiment_id], max_results=100)


@pytest.mark.slow
def test_a_user_conv_vae_goes_through_ray_tune_mlflow_and_the_report(tmp_path, cache_dir):
    rec = compare(
        tmp_path,
        "model.factory=user_models:conv_vae",
        "model.kwargs={width: 4, hidden: 32}",
        "train.optimizer=adamw",
        "train.epochs=8",
        "grid.n_z=[2, 6]",
        "ald.n_z_init=12",
        "ald.window=4",
        "ald.patience=2",
        "eval.n_fid=40",
        f"eval.cache_dir={cache_dir}",
    )
    assert 1 <= rec["n_z"] <= 12
    client, runs = mlflow_runs(tmp_path, "ald-tune-digits")
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 3  # two grid trials, one ALD trial
    for run in children:
        assert run.data.params["model.factory"] == "user_models:conv_vae"
        assert run.info.status == "FINISHED"
        n_z = [m.value for m in client.get_metric_history(run.info.run_id, "n_z")]
        assert len(n_z) == 8
    (ald,) = [r for r in children if r.data.tags.get("ald_tune.kind") == "ald"]
    # The ALD trial's model, saved by the trial, loads back as the user's class.
    from ald_tune.engine.artifacts import load_model

    local = client.download_artifacts(ald.info.run_id, "model.safetensors", str(tmp_path))
    model = load_model(local, factory="user_models:conv_vae")  # named: the file alone may not
    assert type(model.nets).__name__ == "ConvVAE" and model.n_z == rec["n_z"]


@pytest.mark.slow
def test_feature_vectors_compare_without_fid_and_say_so(tmp_path):
    rec = compare(
        tmp_path,
        "data.intrinsic_dim=2",
        "data.ambient_dim=12",
        "data.limit=800",
        "model.hidden=[32, 32]",
        "train.epochs=10",
        "grid.n_z=[1, 2, 4]",
        "ald.n_z_init=8",
        "ald.window=4",
        "ald.patience=2",
        "eval.n_silhouette=100",
        space="manifold",
        rules="ald-tune,paper",
    )
    assert 1 <= rec["n_z"] <= 8
    report = json.loads((tmp_path / "report" / "paper" / "comparison.json").read_text())
    assert report["criterion"]["metrics"] == ["recon_loss"]
    assert report["criterion"]["not_recorded"] == ["fid_gen", "fid_recon"]
    assert report["ald"]["votes_not_recorded"] == ["fid_gen", "fid_recon"]
    text = (tmp_path / "report" / "paper" / "comparison.md").read_text()
    assert "Not recorded: fid_gen, fid_recon" in text
    client, runs = mlflow_runs(tmp_path, "ald-tune-manifold")
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert children and all("fid_gen" not in r.data.metrics for r in children)
    assert all("recon_loss" in r.data.metrics for r in children)
