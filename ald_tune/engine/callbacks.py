"""Per-epoch side effects as callbacks, and the one cadence policy that times them.

:meth:`ald_tune.engine.trainer.Trainer.fit` drives a run and calls, per epoch and in
list order:

1. :meth:`Callback.on_epoch_end` for every callback (the epoch's record and decision;
   ``result.images`` holds the image grids on the epochs the cadence says, when some
   callback :attr:`~Callback.wants_images`);
2. on the epochs the cadence makes checkpoint epochs, :meth:`Callback.on_checkpoint`
   for every callback (``result.checkpoint_due`` was already True in step 1);

and once at the end :meth:`Callback.on_run_end` with ``FINISHED``, ``FAILED`` or
``KILLED``. The drivers are thin: the Ray trainable adds the Tune reporter (and, through
the trial's config, the MLflow logger), the Optuna objective adds its reporter,
``ald-tune train`` a console printer and a checkpoint writer.

Example:
    >>> class Count(Callback):
    ...     def __init__(self):
    ...         self.epochs = self.checkpoints = 0
    ...     def on_epoch_end(self, trainer, result):
    ...         self.epochs += 1
    ...     def on_checkpoint(self, trainer, result):
    ...         self.checkpoints += 1
    >>> cadence = Cadence(checkpoint_every=5)
    >>> [cadence.checkpoint_due(e, done=e == 11, elapsed_s=0.0) for e in (3, 4, 9, 11)]
    [False, True, True, True]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ald_tune.engine.rules.base import Decision

if TYPE_CHECKING:
    from ald_tune.config.schema import Config
    from ald_tune.engine.rules.base import Controller
from ald_tune.errors import ConfigError, shown


@dataclass
class EpochResult:
    """One finished epoch: its record (metrics at the size it trained at) and decision.

    Attributes:
        checkpoint_due: :meth:`EpochIterator.fit` makes this a checkpoint epoch.
        images: the sample and reconstruction grids, on the cadence's image epochs when a
            callback wants them (else None).
    """

    epoch: int
    record: dict[str, Any]
    decision: Decision
    n_z_next: int
    done: bool
    fid_extractor: str = ""
    checkpoint_due: bool = False
    images: dict[str, Any] | None = None

    def line(self) -> str:
        """The per-epoch console line."""
        r = self.record
        fids = (
            f"fid_gen {r['fid_gen']:8.3f}  fid_recon {r['fid_recon']:8.3f}  "
            if "fid_gen" in r
            else ""  # feature vectors: no FID
        )
        text = (
            f"epoch {self.epoch:4d}  n_z {r['n_z']:3d}  recon {r['recon_loss']:8.3f}  "
            f"{fids}sil {r['silhouette']:6.3f}  | "
        )
        d = self.decision
        return text + f"{action_text(d.n_remove, self.n_z_next, d.stop)}: {d.reason}"


def action_text(n_removed: int, n_z_next: int, stop: bool) -> str:
    """What a decision did, as every per-epoch console line says it (the trainer's and
    :meth:`~ald_tune.engine.pruner.PruneStep.line`): ``remove 5 -> n_z 27``, ``keep``,
    with ``STOP`` when pruning stopped then."""
    act = f"remove {n_removed} -> n_z {n_z_next}" if n_removed else ""
    if stop:
        return f"STOP, {act}" if act else "STOP"
    return act or "keep"


class TrainerView(Protocol):
    """What a callback may use of the trainer it is called with (ald-tune's
    :class:`~ald_tune.engine.trainer.Trainer`, or any
    :class:`~ald_tune.engine.epochs.EpochIterator`: the test doubles too).

    Attributes:
        cfg: the run's configuration.
        model: the model (its ``n_z`` is the current size).
        controller: the stop rule deciding each epoch.
        history: one record per finished epoch.
        decisions: one decision per finished epoch (with its epoch and n_z).
        fixed_n_z: the fixed size of a grid run (None: an ALD run).
        timing: seconds spent training (``train_s``), evaluating and in all (``wall_s``).
        tracking_run_id: the MLflow run the trainer logs to, if any (kept in checkpoints).
        device: where it trains.
        done: the run is over.
    """

    cfg: Config
    model: Any
    controller: Controller
    history: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    fixed_n_z: int | None
    timing: dict[str, float]
    tracking_run_id: str | None
    device: Any
    done: bool

    @property
    def epoch(self) -> int: ...

    @property
    def mode(self) -> str: ...

    def checkpoint(self) -> dict[str, Any]: ...

    def summary(self) -> dict[str, Any]: ...

    def save_outputs(self, out_dir: str) -> dict[str, str]: ...


class Callback:
    """Base class: every hook does nothing; override the ones a side effect needs.

    Attributes:
        wants_images: ask the trainer for the sample and reconstruction grids on the
            cadence's image epochs (they cost a decode of 64 images).
    """

    wants_images = False

    def on_epoch_end(self, trainer: TrainerView, result: EpochResult) -> None:
        """After each epoch's evaluation and decision (the model is at its new size)."""

    def on_checkpoint(self, trainer: TrainerView, result: EpochResult) -> None:
        """On the cadence's checkpoint epochs (and the last), after every ``on_epoch_end``."""

    def on_run_end(self, trainer: TrainerView, status: str) -> None:
        """Once: ``FINISHED``, ``FAILED`` (an error) or ``KILLED`` (stopped from outside)."""

    def drain(self) -> None:
        """Wait until no work of this callback is in flight (a report sent from a thread)."""


@dataclass(frozen=True)
class Cadence:
    """When a run checkpoints and draws image grids: the one policy every driver uses.

    Attributes:
        checkpoint_every: epochs between checkpoints (and the last epoch); 0: the last only.
        checkpoint_min_s: seconds of training at least between two checkpoints (bounds
            their cost on short epochs); 0: no floor.
        image_every: epochs between image grids (and the last epoch); 0: none.
        clock: what measures those seconds (a trainer that runs other work between its
            epochs passes its own).
    """

    checkpoint_every: int = 5
    checkpoint_min_s: float = 0.0
    image_every: int = 10
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    def __post_init__(self) -> None:
        for name in ("checkpoint_every", "image_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(
                    f"Cadence.{name} must be an int >= 0 (0: only at the end / never). "
                    f"Got {shown(value)} instead."
                )
        if not self.checkpoint_min_s >= 0:  # NaN too
            raise ConfigError(
                f"Cadence.checkpoint_min_s must be >= 0. Got {shown(self.checkpoint_min_s)}."
            )

    @classmethod
    def from_config(cls, cfg: Any, **changes: Any) -> Cadence:
        """``tune.checkpoint_every``, ``tune.checkpoint_min_s``, ``eval.image_every``."""
        base = {
            "checkpoint_every": cfg.tune.checkpoint_every,
            "checkpoint_min_s": cfg.tune.checkpoint_min_s,
            "image_every": cfg.eval.image_every,
        }
        return cls(**{**base, **changes})

    def checkpoint_due(self, epoch: int, done: bool, elapsed_s: float) -> bool:
        """The last epoch always; else every ``checkpoint_every`` epochs, once at least
        ``checkpoint_min_s`` seconds have passed since the previous checkpoint."""
        if done:
            return True
        every = self.checkpoint_every
        return bool(every) and (epoch + 1) % every == 0 and elapsed_s >= self.checkpoint_min_s

    def images_due(self, epoch: int, done: bool) -> bool:
        """Epoch 0, every ``image_every`` epochs after it, and the last."""
        return bool(self.image_every) and (epoch % self.image_every == 0 or done)


class CallbackList(Callback):
    """Several callbacks called in order as one."""

    def __init__(self, callbacks: Sequence[Callback] = ()) -> None:
        self.callbacks = list(callbacks)
        self.wants_images = any(c.wants_images for c in self.callbacks)

    def on_epoch_end(self, trainer: TrainerView, result: EpochResult) -> None:
        for c in self.callbacks:
            c.on_epoch_end(trainer, result)

    def on_checkpoint(self, trainer: TrainerView, result: EpochResult) -> None:
        for c in self.callbacks:
            c.on_checkpoint(trainer, result)

    def on_run_end(self, trainer: TrainerView, status: str) -> None:
        errors = []
        for c in self.callbacks:  # every callback gets to close, even if one fails
            try:
                c.on_run_end(trainer, status)
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def drain(self) -> None:
        for c in self.callbacks:
            c.drain()
