"""What every trainer shares: an iterator of epochs, run to the end by :meth:`~EpochIterator.fit`
with the callbacks that do each epoch's side effects, timed by one cadence."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ald_tune.config.schema import Config
from ald_tune.engine.callbacks import Cadence, Callback, CallbackList, EpochResult


class EpochIterator:
    """What every trainer shares: an iterator of epochs over ``run_epoch``."""

    cfg: Config
    history: list[dict[str, Any]]
    fixed_n_z: int | None
    done: bool

    @property
    def epoch(self) -> int:
        """The next epoch to train (0-based)."""
        return len(self.history)

    @property
    def mode(self) -> str:
        return "fixed" if self.fixed_n_z is not None else "ald"

    callbacks: CallbackList = CallbackList()

    def __iter__(self) -> Iterator[EpochResult]:
        while not self.done:
            yield self.run_epoch()

    def fit(
        self,
        callbacks: Sequence[Callback] = (),
        cadence: Cadence | None = None,
        *,
        stop_on: tuple[type[BaseException], ...] = (),
    ) -> None:
        """Train to the end, calling ``callbacks`` each epoch (see
        :mod:`ald_tune.engine.callbacks` for the order).

        Args:
            callbacks: the run's side effects, called in order.
            cadence: when to checkpoint and draw images; default from the config.
            stop_on: exceptions that stop the run from outside (besides Ctrl-C and
                ``SystemExit``): the callbacks' run end says ``KILLED`` (``FINISHED`` when
                the last epoch was done), not ``FAILED``.

        Raises:
            Whatever a callback or the training raises, after every callback's
            ``on_run_end``.
        """
        cadence = cadence or Cadence.from_config(self.cfg)
        self.callbacks = cbs = CallbackList(callbacks)
        last = cadence.clock()
        status = "FINISHED"
        try:
            for result in self:
                result.checkpoint_due = cadence.checkpoint_due(
                    result.epoch, result.done, cadence.clock() - last
                )
                if cbs.wants_images and cadence.images_due(result.epoch, result.done):
                    result.images = self.images()
                cbs.on_epoch_end(self, result)
                if result.checkpoint_due:
                    cbs.on_checkpoint(self, result)
                    last = cadence.clock()
        except (KeyboardInterrupt, SystemExit, *stop_on):  # type: ignore[misc]
            # Stopped at the report of its last epoch (ASHA stops every trial that reaches
            # max_t there): the run did finish.
            status = "FINISHED" if self.done else "KILLED"
            raise
        except BaseException:
            status = "FAILED"
            raise
        finally:
            self.callbacks = CallbackList()
            cbs.on_run_end(self, status)

    def images(self, n: int = 64) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def run_epoch(self) -> EpochResult:  # pragma: no cover - overridden
        raise NotImplementedError
