"""A new SQLite store as a copy of an empty one that MLflow made: 5 s saved per store.

MLflow gives a new SQLite store its schema by replaying every Alembic migration since
1.x: measured here, `MlflowClient(uri).search_experiments()` on a new file takes 5.1 s,
a copy of a store MLflow made and its first query 0.07 s. MLflow has no faster path for a
new store (its own test suite does the same: mlflow/mlflow pull request #18005 caches
one initialised SQLite file and copies it per test). So the empty store of each MLflow
version is made once, by MLflow, in ald-tune's cache (:func:`default_cache_dir`), and a
new store starts as a copy of it. The one row that names a place, the ``Default``
experiment's artifact location, is set to this store's ``mlartifacts/0`` (MLflow would
have put ``./mlruns/0`` under whatever the working directory was), its times to now.

This is a cache: whatever fails here (a read-only home, a full disk) leaves the new store
to MLflow, as before, and the store MLflow then opens is checked the same way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import time

from ald_tune.config.paths import default_cache_dir

log = logging.getLogger(__name__)

#: the cache's subfolder holding one empty store per MLflow version
FOLDER = "mlflow-stores"


def seed_new_store(path: str, artifact_root: str | None) -> bool:
    """Write a copy of MLflow's empty store to ``path`` (which does not exist yet).

    Call it under the store's lock. Returns False, leaving nothing at ``path``, when the
    copy could not be made; MLflow then creates the store itself.
    """
    part = f"{path}.part-{os.getpid()}"
    try:
        shutil.copyfile(empty_store(), part)
        _place(part, artifact_root)
        os.replace(part, path)
        return True
    except Exception as exc:  # a cache: any failure leaves the store to MLflow
        log.debug("new MLflow store %s not copied from the cache: %s", path, exc)
        with contextlib.suppress(OSError):
            os.remove(part)
        return False


def empty_store() -> str:
    """The path of this MLflow version's empty SQLite store, made by MLflow if missing."""
    import mlflow
    from filelock import FileLock
    from mlflow import MlflowClient

    folder = os.path.join(default_cache_dir(), FOLDER)
    path = os.path.join(folder, f"empty-mlflow-{mlflow.__version__}.db")
    if os.path.isfile(path):
        return path
    os.makedirs(folder, exist_ok=True)
    with FileLock(path + ".lock", timeout=120):
        if not os.path.isfile(path):
            part = f"{path}.part-{os.getpid()}"
            MlflowClient(f"sqlite:///{part}").search_experiments(max_results=1)  # the schema
            os.replace(part, path)
    return path


def _place(path: str, artifact_root: str | None) -> None:
    """Point the copy's Default experiment at this store's artifacts, created now."""
    now = int(time.time() * 1000)
    con = sqlite3.connect(path)
    try:
        with con:
            con.execute(
                "UPDATE experiments SET creation_time = ?, last_update_time = ?"
                + (", artifact_location = ?" if artifact_root else "")
                + " WHERE experiment_id = 0",
                (now, now, *([os.path.join(artifact_root, "0")] if artifact_root else [])),
            )
    finally:
        con.close()
