"""A new SQLite store starts as a copy of the empty one MLflow made for its version."""

from __future__ import annotations

import os
import sqlite3
import time

from ald_tune.tracking import empty_store, store


def alembic_version(path) -> list:
    con = sqlite3.connect(str(path))
    try:
        return con.execute("SELECT version_num FROM alembic_version").fetchall()
    finally:
        con.close()


def tables(path) -> set[str]:
    con = sqlite3.connect(str(path))
    try:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        con.close()


def test_a_new_store_is_a_copy_of_mlflows_empty_one_placed_here(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.setenv("ALD_TUNE_CACHE", str(tmp_path / "cache"))
    store.check_tracking(f"sqlite:///{tmp_path}/a/mlflow.db")  # MLflow makes the empty one
    (empty,) = (tmp_path / "cache" / empty_store.FOLDER).glob("empty-mlflow-*.db")
    made = empty.stat().st_mtime_ns
    t0 = time.time() * 1000
    b = tmp_path / "b" / "mlflow.db"
    store.check_tracking(f"sqlite:///{b}")
    assert empty.stat().st_mtime_ns == made  # made once, copied since
    assert alembic_version(b) == alembic_version(empty) and len(alembic_version(b)) == 1
    assert tables(b) == tables(empty) and {"runs", "metrics", "logged_models"} <= tables(b)
    assert not [p for p in b.parent.iterdir() if ".part" in p.name]
    c = MlflowClient(f"sqlite:///{b}")
    default = c.get_experiment("0")
    # the one row that names a place: this store's artifacts, not the cache's folder
    assert default.artifact_location == os.path.join(tmp_path, "b", "mlartifacts", "0")
    assert default.creation_time >= t0 - 1000
    run = c.create_run(c.create_experiment("e")).info.run_id
    c.log_metric(run, "n_z", 4.0, step=0)
    assert c.get_run(run).data.metrics == {"n_z": 4.0}
    assert [
        e.name for e in MlflowClient(f"sqlite:///{tmp_path}/a/mlflow.db").search_experiments()
    ] == ["Default"]


def test_a_cache_that_cannot_be_written_leaves_the_new_store_to_mlflow(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("ALD_TUNE_CACHE", str(blocker))
    path = tmp_path / "s" / "mlflow.db"
    assert not empty_store.seed_new_store(str(path), None)
    assert not path.exists() and not list(path.parent.glob("*.part-*"))
    store.check_tracking(f"sqlite:///{path}")  # MLflow creates it, as before
    c = MlflowClient(f"sqlite:///{path}")
    assert c.get_experiment(c.create_experiment("e")).name == "e"
