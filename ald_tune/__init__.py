"""ald-tune: choose a VAE's latent size with one self-shrinking run (ALD-VAE).

``import ald_tune`` is cheap: torch, Ray, MLflow and Optuna load only when a
name that needs them is used. The package is one subpackage per layer of the data
flow, each importing only the layers before it::

    config -> data -> engine -> tracking -> sweeps -> report -> (integrations) -> cli

with ``testing`` beside them (test doubles; imported by tests and benchmarks only).
See ``docs/architecture.md``.
"""

from __future__ import annotations

from typing import Any

from ald_tune import _compat
from ald_tune._version import __version__

_compat.install()  # the old module paths of 0.1 (one release; they warn)

_LAZY = {
    "Config": "ald_tune.config.schema",
    "load_config": "ald_tune.config.schema",
    "ALDController": "ald_tune.engine.rules",
    "FixedController": "ald_tune.engine.rules.base",
    "Decision": "ald_tune.engine.rules.base",
    "make_controller": "ald_tune.engine.rules",
    "Trainer": "ald_tune.engine.trainer",
    "EpochResult": "ald_tune.engine.trainer",
    "Callback": "ald_tune.engine.callbacks",
    "Cadence": "ald_tune.engine.callbacks",
    "VAE": "ald_tune.engine.model",
    "Pruner": "ald_tune.engine.pruner",
    "PruneStep": "ald_tune.engine.pruner",
    "check_protocol": "ald_tune.engine.protocol",
    "build_model": "ald_tune.engine.model",
    "load_checkpoint": "ald_tune.engine.checkpoint",
    "save_checkpoint": "ald_tune.engine.checkpoint",
    "load_model": "ald_tune.tracking.models",  # a file, or a models:/ or runs:/ URI
    "SweepOptions": "ald_tune.sweeps.tuner",
    "TrackingOptions": "ald_tune.tracking.tracker",
    "run_sweep": "ald_tune.sweeps.run",
    "build_report": "ald_tune.report.build",
    "recommend": "ald_tune.report.build",
    "compare": "ald_tune.report.workflow",
    "CompareOptions": "ald_tune.report.workflow",
    "Comparison": "ald_tune.report.comparison",
    "comparison_from_mlflow": "ald_tune.report.mlflow_rebuild",
    "ConfigError": "ald_tune.errors",
    "DataError": "ald_tune.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ald_tune' has no attribute {name!r}")
