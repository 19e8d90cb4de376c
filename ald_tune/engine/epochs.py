"""What every trainer shares: an iterator of epochs, run to the end by :meth:`~EpochIterator.fit`
with the callbacks that do each epoch's side effects, timed by one cadence; the epoch's
bookkeeping (record, decide, book the decision, done?); the summary and the bookkeeping
part of the checkpoint. :class:`~ald_tune.engine.trainer.Trainer` and the test double
:class:`~ald_tune.testing.scripted.ScriptedTrainer` inherit it, so they cannot drift."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ald_tune._version import __version__
from ald_tune.engine.callbacks import Cadence, Callback, CallbackList, EpochResult, TrainerView
from ald_tune.engine.rules.base import Decision, Probe


class EpochIterator(TrainerView):
    """What every trainer shares: an iterator of epochs over ``run_epoch``.

    It declares the interface the callbacks see by subclassing
    :class:`~ald_tune.engine.callbacks.TrainerView` (the attributes are documented there);
    each trainer sets them in its ``__init__``.
    """

    @property
    def epoch(self) -> int:
        """The next epoch to train (0-based)."""
        return len(self.history)

    @property
    def mode(self) -> str:
        return "fixed" if self.fixed_n_z is not None else "ald"

    @property
    def fid_extractor(self) -> str:  # pragma: no cover - overridden
        """The FID feature extractor's name (in the summary and each epoch's result)."""
        raise NotImplementedError

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

    # -- the epoch's bookkeeping --------------------------------------------------------
    def decide(
        self,
        record: dict[str, Any],
        unit_kl: Sequence[float],
        probe: Probe,
        twin_kl: Sequence[float] | None = None,
    ) -> Decision:
        """Record the epoch, ask the rule, book its decision and whether the run is over.

        Args:
            record: the epoch's record (its ``epoch`` and ``n_z``: the size it trained at).
            unit_kl, probe, twin_kl: as :meth:`Controller.decide
                <ald_tune.engine.rules.base.Controller.decide>` takes them.

        Returns:
            The decision, for the trainer to carry out on its model.
        """
        epoch, n_z = record["epoch"], record["n_z"]
        self.history.append(record)
        decision = self.controller.decide(self.history, n_z, unit_kl, probe=probe, twin_kl=twin_kl)
        self.decisions.append({"epoch": epoch, "n_z": n_z, **decision.to_dict()})
        self.done = self.controller.run_over(decision, epoch, self.cfg.train.epochs)
        return decision

    def summary(self) -> dict[str, Any]:
        """The content of ``history.json``."""
        stop = next((d["epoch"] for d in self.decisions if d["stop"]), None)
        return {
            "mode": self.mode,
            "package_version": __version__,
            "config": self.cfg.to_dict(),
            "fixed_n_z": self.fixed_n_z,
            "final_n_z": self.model.n_z,
            "stop_epoch": stop,
            "floor_reached": self.controller.floor_reached,
            "fid_extractor": self.fid_extractor,
            "device": str(self.device),
            "trial_epochs": len(self.history),
            "wall_time_s": self.timing["wall_s"],
            "train_time_s": self.timing["train_s"],
            "eval_time_s": self.timing["eval_s"],
            "epochs": self.history,
            "decisions": self.decisions,
        }

    def book_state(self) -> dict[str, Any]:
        """The checkpoint's bookkeeping part (every trainer's checkpoint holds it; see
        :mod:`ald_tune.engine.checkpoint` for the whole layout)."""
        return {
            "config": self.cfg.to_dict(),
            "fixed_n_z": self.fixed_n_z,
            "n_z": self.model.n_z,
            "epoch": self.epoch - 1,
            "controller": self.controller.state_dict(),
            "history": list(self.history),
            "decisions": list(self.decisions),
            "timing": dict(self.timing),
            "done": self.done,
            "tracking_run_id": self.tracking_run_id,
            "package_version": __version__,
        }

    def load_book(self, ckpt: dict[str, Any]) -> None:
        """Take the bookkeeping back from a checkpoint (the controller's state is the
        trainer's to restore, with its model's)."""
        self.history, self.decisions = list(ckpt["history"]), list(ckpt["decisions"])
        if ckpt.get("timing"):
            self.timing = dict(ckpt["timing"])
        self.tracking_run_id = ckpt.get("tracking_run_id")
        self.done = bool(ckpt.get("done", False))

    # -- what each trainer does its own way ---------------------------------------------
    def checkpoint(self) -> dict[str, Any]:  # pragma: no cover - overridden
        """The versioned checkpoint dict."""
        raise NotImplementedError

    def save_outputs(self, out_dir: str) -> dict[str, str]:  # pragma: no cover - overridden
        """Write the run's files (``history.json``, the model...) and return their paths."""
        raise NotImplementedError

    def images(self, n: int = 64) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def run_epoch(self) -> EpochResult:  # pragma: no cover - overridden
        raise NotImplementedError
