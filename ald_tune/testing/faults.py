"""Fault injection for tests, as trial callbacks: a trial that fails once at a given epoch,
a trial whose end is slow.

A sweep names it in :attr:`ald_tune.sweeps.tuner.SweepOptions.trial_callbacks` (see
:func:`fail_once`); the trainable builds it in each trial. A marker file records that
the failure happened, so the retry runs through.
"""

from __future__ import annotations

import os
import time
from typing import Any

from ald_tune.engine.callbacks import Callback, TrainerView


class FailOnce(Callback):
    """Raise once, at the end of epoch ``epoch`` (a marker file per trial says it did).

    Args:
        epoch: the epoch that fails (0-based).
        marker: a path; ``<marker>.<n_z or ald>.<seed>`` is created at the failure.
    """

    def __init__(self, epoch: int, marker: str) -> None:
        self.epoch, self.marker = int(epoch), marker

    def on_epoch_end(self, trainer: TrainerView, result: Any) -> None:
        if result.epoch != self.epoch:
            return
        if not os.path.exists(self.marker):
            open(self.marker, "w").close()
            raise RuntimeError(f"injected failure at epoch {result.epoch} (test hook)")


def fail_once_callback(info: Any, trainer: TrainerView, *, epoch: int, marker: str) -> FailOnce:
    """The trial-callback factory: one marker per trial (``<marker>.<n_z|ald>.<seed>``)."""
    p = info.params
    n_z = "ald" if p.n_z is None else p.n_z
    return FailOnce(epoch, f"{marker}.{n_z}.{0 if p.seed is None else p.seed}")


def fail_once(epoch: int, marker: str) -> tuple[str, dict]:
    """The :attr:`~ald_tune.sweeps.tuner.SweepOptions.trial_callbacks` entry that makes
    every trial of a sweep fail once at ``epoch``."""
    return ("ald_tune.testing.faults:fail_once_callback", {"epoch": epoch, "marker": marker})


class SlowEnd(Callback):
    """Take ``seconds`` at the run's end, as a large model's upload would."""

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)

    def on_run_end(self, trainer: TrainerView, status: str) -> None:
        time.sleep(self.seconds)


def slow_end_callback(info: Any, trainer: TrainerView, *, seconds: float) -> SlowEnd:
    """The trial-callback factory for :func:`slow_end`."""
    return SlowEnd(seconds)


def slow_end(seconds: float) -> tuple[str, dict]:
    """The :attr:`~ald_tune.sweeps.tuner.SweepOptions.trial_callbacks` entry that makes
    every trial's end take ``seconds`` (before its MLflow logging's end)."""
    return ("ald_tune.testing.faults:slow_end_callback", {"seconds": seconds})
