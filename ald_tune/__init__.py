"""ald-tune: choose a VAE's latent size with one self-shrinking run (ALD-VAE).

``import ald_tune`` is cheap: torch, Ray, MLflow and Optuna load only when a
name that needs them is used.
"""

from __future__ import annotations

from ._version import __version__

_LAZY = {
    "Config": "config", "load_config": "config",
    "ALDController": "controller", "FixedController": "controller", "Decision": "controller",
    "Trainer": "loop", "EpochResult": "loop",
    "VAE": "model", "build_model": "model",
    "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "load_model": "outputs",
    "ConfigError": "errors", "DataError": "errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'ald_tune' has no attribute {name!r}")
