"""Shared test set-up: one torch thread, absolute temp paths, offline MLflow."""

from __future__ import annotations

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    import torch
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> str:
    """One cache for the classifier FID extractor across the session."""
    return str(tmp_path_factory.mktemp("ald_cache"))


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray runtime for the whole test session (2 CPUs, no dashboard)."""
    import ray
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
