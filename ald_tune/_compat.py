"""Old import paths (0.1's flat package, 0.2's flat rule modules and tracking's sweep and
backfill), kept for one release.

``import ald_tune`` installs :class:`OldPaths`, an import hook that answers for the old
module names listed in :data:`MOVED` (so the package folder holds no shim files): each
import warns (``DeprecationWarning``) and gives the module that holds the code now, so
``from ald_tune.tuners import run_sweep`` keeps working. A module split in two gets a
module with both halves' names. A test imports every old path.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings
from typing import Any

#: old module -> where its code lives now (the first is the one the shim becomes)
MOVED = {
    "ald_tune.backfill": ("ald_tune.sweeps.backfill", "ald_tune.tracking.fill"),
    "ald_tune.checkpoint": ("ald_tune.engine.checkpoint",),
    "ald_tune.config_docs": ("ald_tune.config.reference",),
    "ald_tune.constraints": ("ald_tune.config.constraints",),
    "ald_tune.controller": ("ald_tune.engine.rules.base", "ald_tune.engine.rules"),
    "ald_tune.criterion": ("ald_tune.report.criterion",),
    "ald_tune.evaluate": ("ald_tune.engine.evaluate",),
    "ald_tune.features": ("ald_tune.engine.features",),
    "ald_tune.loop": ("ald_tune.engine.trainer",),
    "ald_tune.metrics": ("ald_tune.engine.metrics",),
    "ald_tune.model": ("ald_tune.engine.model",),
    "ald_tune.optuna_objective": ("ald_tune.integrations.optuna",),
    "ald_tune.optuna_study": ("ald_tune.integrations.optuna.study",),
    "ald_tune.outputs": ("ald_tune.engine.artifacts",),
    "ald_tune.paired": ("ald_tune.testing.paired",),
    "ald_tune.pipeline": ("ald_tune.sweeps.report_ahead",),
    "ald_tune.plots": ("ald_tune.engine.artifacts",),
    "ald_tune.progress": ("ald_tune.sweeps.progress",),
    "ald_tune.report_mlflow": ("ald_tune.report.mlflow_rebuild",),
    "ald_tune.report_plots": ("ald_tune.report.figures", "ald_tune.report.tables"),
    "ald_tune.sources": ("ald_tune.data.sources",),
    "ald_tune.trainables": ("ald_tune.sweeps.trainable",),
    "ald_tune.trial_logger": ("ald_tune.tracking.trial_logger",),
    "ald_tune.trial_records": ("ald_tune.sweeps.results", "ald_tune.report.numbers"),
    "ald_tune.tune_logs": ("ald_tune.sweeps.result_logs",),
    "ald_tune.tuners": ("ald_tune.sweeps.tuner", "ald_tune.sweeps.run"),
    # 0.2's flat rule modules, moved into the engine's rules folder after 0.2.0
    "ald_tune.engine.controller": ("ald_tune.engine.rules.base",),
    "ald_tune.engine.rule_paper": ("ald_tune.engine.rules.paper",),
    "ald_tune.engine.rule_ald_tune": ("ald_tune.engine.rules.aldtune",),
    "ald_tune.engine.rule_units": ("ald_tune.engine.rules.units",),
    # 0.2's run_sweep and backfill in tracking/, moved to sweeps/ (tracking below sweeps)
    "ald_tune.tracking.sweep": ("ald_tune.sweeps.run", "ald_tune.tracking.tracker"),
    "ald_tune.tracking.backfill": ("ald_tune.sweeps.backfill", "ald_tune.tracking.fill"),
}

#: the release an old path was moved in (default 0.2); it goes in the release after
MOVED_IN = {
    "ald_tune.engine.controller": "0.3",
    "ald_tune.engine.rule_paper": "0.3",
    "ald_tune.engine.rule_ald_tune": "0.3",
    "ald_tune.engine.rule_units": "0.3",
    "ald_tune.tracking.sweep": "0.3",
    "ald_tune.tracking.backfill": "0.3",
}


class OldPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old module names and loads them as the modules that hold their code."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: Any) -> types.ModuleType:
        old = spec.name
        targets = MOVED[old]
        moved = MOVED_IN.get(old, "0.2")
        gone = f"0.{int(moved.split('.')[1]) + 1}"
        warnings.warn(
            f"{old} moved to {' and '.join(targets)} in ald-tune {moved}; the old path "
            f"goes in {gone}. Fix: import from {targets[0]}.",
            DeprecationWarning,
            stacklevel=2,
        )
        if len(targets) == 1:
            return importlib.import_module(targets[0])
        merged = types.ModuleType(old, f"{old}: now {' and '.join(targets)}.")
        for target in targets:
            for name, value in vars(importlib.import_module(target)).items():
                if not name.startswith("__"):
                    merged.__dict__.setdefault(name, value)
        return merged

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the module is the one that holds the code."""


def install() -> None:
    """Add the hook once (``import ald_tune`` does)."""
    if not any(isinstance(f, OldPaths) for f in sys.meta_path):
        sys.meta_path.append(OldPaths())
