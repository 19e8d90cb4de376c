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


def test_parsing_a_uri_leaves_the_environment_alone(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    before = dict(os.environ)
    parsed = store.parse_tracking_uri("http://ana:s3cr3t@127.0.0.1:5000/", "x")
    assert parsed == ("http://127.0.0.1:5000", "ana", "s3cr3t") and dict(os.environ) == before


def test_mlflow_env_sets_credentials_inside_and_puts_back_what_was_there(monkeypatch):
    import threading

    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "theirs")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    before = dict(os.environ)
    inside = []
    with store.mlflow_env("ana", "s3cr3t"):
        worker = threading.Thread(target=lambda: inside.append(dict(os.environ)))
        with store.mlflow_env("ana", "s3cr3t"):  # nested (another thread's trial): shared
            worker.start()
            worker.join()
        assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "s3cr3t"  # the outer block still runs
    assert inside[0]["MLFLOW_TRACKING_USERNAME"] == "ana"
    assert inside[0]["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
    assert dict(os.environ) == before


def sqlite_uri(path) -> str:
    return f"sqlite:///{path}"


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda p: p.mkdir(), "names a folder, not a SQLite file"),
        (lambda p: p.write_text("name,value\n"), "is not a SQLite database"),
        (
            lambda p: p.write_bytes(store.SQLITE_MAGIC + b"\xff" * 4096),  # a damaged database
            "cannot be opened by MLflow",
        ),
    ],
    ids=["a folder", "a text file", "a damaged database"],
)
def test_a_store_that_is_not_a_sqlite_database_is_one_line(tmp_path, make, needle):
    path = tmp_path / "mlflow.db"
    make(path)
    with pytest.raises(ConfigError, match="Fix:") as err:
        store.check_tracking(sqlite_uri(path))
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_a_new_store_gets_its_schema_once_under_a_lock(tmp_path):
    """Two commands started together on a new store both tried to create MLflow's tables;
    the second died ("table datasets already exists"). The schema is made under a lock."""
    import sqlite3
    import threading

    from filelock import FileLock

    path = tmp_path / "mlflow.db"
    errors: list[BaseException] = []

    def check():
        try:
            store.check_tracking(sqlite_uri(path))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    with FileLock(f"{path}.lock"):  # another command is creating it
        waiting = threading.Thread(target=check)
        waiting.start()
        waiting.join(timeout=1.0)
        assert waiting.is_alive() and not path.exists()  # it waits; nothing is touched
    waiting.join(timeout=120)
    assert not waiting.is_alive() and not errors
    tables = {r[0] for r in sqlite3.connect(path).execute("select name from sqlite_master")}
    assert {"experiments", "runs", "datasets"} <= tables
    store.check_tracking(sqlite_uri(path))  # an existing store: nothing to create


def test_an_experiment_made_meanwhile_by_another_command_is_used():
    made = []

    class RacingClient:
        tracking_uri = "http://127.0.0.1:5000"

        def get_experiment_by_name(self, name):
            return type("Exp", (), {"experiment_id": "7"})() if made else None

        def create_experiment(self, name, artifact_location=None, tags=None):
            made.append(name)  # the other command won the race
            raise RuntimeError("RESOURCE_ALREADY_EXISTS: experiment exists")

    assert store.ensure_experiment(RacingClient(), "ald-tune-digits") == "7"


def test_a_new_experiment_opens_on_its_runs_in_mlflow_3s_ui(tmp_path):
    """MLflow 3's UI opens an experiment by its ``mlflow.experimentKind`` tag: on its runs
    for model training, else on pages for GenAI traces that a sweep never has."""
    from mlflow import MlflowClient

    c = MlflowClient(sqlite_uri(tmp_path / "mlflow.db"))
    exp_id = store.ensure_experiment(c, "ald-tune-digits")
    tags = c.get_experiment(exp_id).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
