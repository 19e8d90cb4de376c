"""The MLflow store: URIs made absolute, credentials kept out of sight, runs found safely."""

from __future__ import annotations

import os

import pytest

from ald_tune.config.schema import Config
from ald_tune.errors import ConfigError
from ald_tune.tracking import runs, store


def test_uris_are_absolute_and_never_the_file_store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert store.resolve_tracking_uri(None, "runs") == f"sqlite:///{tmp_path}/runs/mlflow.db"
    assert store.resolve_tracking_uri("sqlite:///rel.db", "x") == f"sqlite:///{tmp_path}/rel.db"
    with pytest.raises(ConfigError, match="file store is deprecated"):
        store.resolve_tracking_uri(str(tmp_path / "mlruns"), "x")
    assert store.artifact_root(f"sqlite:///{tmp_path}/m.db") == os.path.join(
        tmp_path, "mlartifacts"
    )


def test_credentials_move_to_the_environment_and_out_of_messages(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    clean = store.resolve_tracking_uri("http://ana:s3cr3t@127.0.0.1:5000/", "x")
    assert clean == "http://127.0.0.1:5000"
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "s3cr3t"
    assert (
        store.redact_uri("see http://ana:s3cr3t@h:1 and s3cr3t") == "see http://ana:***@h:1 and ***"
    )


def test_run_ids_in_filter_strings_must_be_hex_and_params_are_few():
    assert runs.run_id_text("0a1b2c") == "0a1b2c"
    with pytest.raises(ConfigError, match="not an MLflow run id"):
        runs.run_id_text("x' or '1'='1")
    params = runs.filter_params(Config())
    assert set(params) == set(runs.FILTER_PARAMS) - {"model.factory"}  # None: not logged
    assert params["ald.rule"] == "ald-tune"
    own = runs.filter_params(Config().replace(model={"factory": "my_pkg.models:build_vae"}))
    assert own["model.factory"] == "my_pkg.models:build_vae"
    assert len(params) < 20  # the config itself is the parent's config.json
