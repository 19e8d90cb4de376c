"""What every trainer shares: epochs run to the end by ``fit``, which tells each callback
how the run ended (FINISHED, KILLED or FAILED)."""

from __future__ import annotations

import pytest

from ald_tune.engine.callbacks import Cadence, Callback, EpochResult
from ald_tune.engine.epochs import EpochIterator
from ald_tune.engine.rules.base import Decision


class Stopped(Exception):
    """Stands in for a driver's stop (e.g. Tune stopping a trial)."""


class Counting(EpochIterator):
    """Three epochs of nothing; ``raise_at`` raises that exception in that epoch."""

    def __init__(self, raise_at: dict[int, BaseException] | None = None) -> None:
        self.cfg, self.history, self.fixed_n_z, self.done = None, [], 4, False
        self.raise_at = raise_at or {}

    def run_epoch(self) -> EpochResult:
        epoch = self.epoch
        if epoch in self.raise_at:
            raise self.raise_at[epoch]
        self.history.append({"epoch": epoch})
        self.done = epoch == 2
        return EpochResult(epoch, {}, Decision(reason="fixed"), 4, self.done)


class Ends(Callback):
    def __init__(self) -> None:
        self.epochs: list[int] = []
        self.checkpoints: list[int] = []
        self.status: str | None = None

    def on_epoch_end(self, trainer, result):
        self.epochs.append(result.epoch)

    def on_checkpoint(self, trainer, result):
        self.checkpoints.append(result.epoch)

    def on_run_end(self, trainer, status):
        self.status = status


def test_a_run_to_its_end_is_finished_with_a_checkpoint_at_the_last_epoch():
    run, ends = Counting(), Ends()
    run.fit([ends], Cadence(checkpoint_every=0, checkpoint_min_s=0.0, image_every=0))
    assert (ends.epochs, ends.checkpoints, ends.status) == ([0, 1, 2], [2], "FINISHED")
    assert run.mode == "fixed" and run.epoch == 3


@pytest.mark.parametrize(
    ("error", "stop_on", "status"),
    [
        (KeyboardInterrupt(), (), "KILLED"),
        (Stopped(), (Stopped,), "KILLED"),  # a driver's stop is not a failure
        (Stopped(), (), "FAILED"),  # not named as a stop: it is one
        (FloatingPointError("loss became nan"), (), "FAILED"),
    ],
)
def test_a_run_that_stops_early_says_how(error, stop_on, status):
    run, ends = Counting({1: error}), Ends()
    with pytest.raises(type(error)):
        run.fit(
            [ends],
            Cadence(checkpoint_every=1, checkpoint_min_s=0.0, image_every=0),
            stop_on=stop_on,
        )
    assert (ends.epochs, ends.checkpoints, ends.status) == ([0], [0], status)
