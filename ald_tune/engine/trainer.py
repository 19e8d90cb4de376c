"""The training loop: epochs, evaluation, decisions, surgery, checkpoints.

A :class:`Trainer` is an iterator of :class:`EpochResult`; :meth:`~EpochIterator.fit`
runs it to the end and calls the callbacks (:mod:`ald_tune.engine.callbacks`) that do
each epoch's side effects (print it, report it to Ray Tune, log it to MLflow), timed
by one :class:`~ald_tune.engine.callbacks.Cadence`::

    trainer = Trainer(load_config("search_spaces/digits.yaml"))
    trainer.fit([PrintEpochs()])
    trainer.save_outputs("runs/digits")

It knows nothing of Ray or MLflow. ``trainer.checkpoint()`` returns the one
versioned checkpoint dict; ``Trainer.from_checkpoint(ckpt)`` rebuilds the model
at the stored n_z and continues exactly where it stopped (same batches, same
noise, same decisions).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from ald_tune._version import __version__
from ald_tune.config.schema import Config, check_ald_schedule
from ald_tune.data.datasets import ImageData, load_dataset, train_val_split
from ald_tune.engine.artifacts import image_grids, save_run_outputs
from ald_tune.engine.callbacks import Cadence, Callback, CallbackList, EpochResult
from ald_tune.engine.evaluate import Evaluator, check_cache_dir, check_clusters, check_eval_sizes
from ald_tune.engine.model import build_model, make_optimizer
from ald_tune.engine.rules import make_controller
from ald_tune.errors import ConfigError, DataError, shown


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "The 'device' parameter of TrainConfig is 'cuda' but no CUDA device "
            "is available. Fix: use train.device=auto or cpu."
        )
    return torch.device(name)


def load_splits(cfg: Config) -> tuple[ImageData, ImageData]:
    """Load the configured dataset and split it (seeded)."""
    d = cfg.data
    data = load_dataset(
        d.name,
        path=d.path,
        root=d.root,
        download=d.download,
        limit=d.limit,
        manifold={"intrinsic_dim": d.intrinsic_dim, "ambient_dim": d.ambient_dim, "noise": d.noise},
    )
    return train_val_split(data, d.val_fraction, d.split_seed)


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


class Trainer(EpochIterator):
    """One ALD run (or, with ``fixed_n_z``, one fixed-size baseline run).

    Args:
        cfg: the run's configuration.
        fixed_n_z: train at this n_z without pruning (the grid baseline).
        splits: pre-loaded (train, val) data; loaded from ``cfg.data`` if None.
        controller: override the controller (tests use a scripted one).

    Raises:
        ConfigError, DataError: bad configuration or data, before any training.
    """

    def __init__(
        self,
        cfg: Config,
        *,
        fixed_n_z: int | None = None,
        splits: tuple[ImageData, ImageData] | None = None,
        controller=None,
    ) -> None:
        self.cfg, self.fixed_n_z = cfg, fixed_n_z
        if fixed_n_z is None and controller is None:
            check_ald_schedule(cfg)
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        self.device = resolve_device(cfg.train.device)
        self.train_data, self.val_data = splits or load_splits(cfg)
        check_clusters(cfg.eval, self.val_data)  # a silhouette that could only be NaN
        check_cache_dir(cfg.eval, self.train_data.is_image)
        self.evaluator = Evaluator(
            cfg.eval, self.train_data, self.val_data, cfg.train.seed, self.device
        )
        torch.manual_seed(cfg.train.seed)
        n_z = fixed_n_z if fixed_n_z is not None else cfg.ald.n_z_init
        self.model = build_model(cfg.model, self.train_data.image_shape, n_z).to(self.device)
        self.optimizer = make_optimizer(self.model, cfg.train)
        self.controller = controller or make_controller(cfg.ald, fixed_n_z, cfg.train.epochs)
        self.batches = torch.Generator().manual_seed(cfg.train.seed)
        self.train_x = self.train_data.x.to(self.device)
        self.history: list[dict[str, Any]] = []
        self.decisions: list[dict[str, Any]] = []
        self.timing = {"train_s": 0.0, "eval_s": 0.0, "wall_s": 0.0}
        self.tracking_run_id: str | None = None
        self.done = False

    @classmethod
    def check(cls, cfg: Config) -> tuple[ImageData, ImageData]:
        """What a sweep checks before any trial starts: the data loads and is large
        enough for the evaluation (:func:`ald_tune.engine.evaluate.check_eval_sizes`).

        Returns:
            The (train, val) splits it loaded, for a driver to reuse (``splits=``).

        Raises:
            ConfigError, DataError: naming the field or file and the fix.
        """
        splits = load_splits(cfg)
        check_clusters(cfg.eval, splits[1])  # first, as a trainer does: a split too small
        check_eval_sizes(cfg.eval, splits[1])  # for any silhouette says so, not "lower n_fid"
        check_cache_dir(cfg.eval, splits[0].is_image)
        n_z = max(cfg.ald.n_z_init, *cfg.grid.n_z)
        build_model(cfg.model, splits[0].image_shape, n_z)  # the net fits the data (seconds)
        return splits

    def run_epoch(self) -> EpochResult:
        """Train one epoch, evaluate, decide, apply the decision."""
        t0, cpu0 = time.perf_counter(), time.process_time()
        gpu = GPUClock(self.device)
        epoch, n_z = self.epoch, self.model.n_z
        train_loss = self._train_one_epoch(epoch)
        t1 = time.perf_counter()
        record, unit_kl = self.evaluator(self.model, epoch)
        t2 = time.perf_counter()
        threshold = self.cfg.ald.kl_threshold
        record = {
            "epoch": epoch,
            "n_z": n_z,
            "train_loss": train_loss,
            **record,
            # the same count the ald-tune rule follows, for every trial (grid ones too)
            "units_in_use": sum(1 for v in unit_kl if math.isfinite(v) and v >= threshold),
            "train_time_s": t1 - t0,
            "eval_time_s": t2 - t1,
            "cpu_time_s": time.process_time() - cpu0,
            "gpu_time_s": gpu.seconds(),
        }
        self.history.append(record)
        decision = self.controller.decide(
            self.history,
            n_z,
            unit_kl,
            probe=lambda units: self.evaluator.removal_cost(self.model, units),
        )
        if decision.units:
            self.model.remove_units(decision.units, self.optimizer)
        self.decisions.append({"epoch": epoch, "n_z": n_z, **decision.to_dict()})
        self.done = decision.end_run or epoch + 1 >= self.controller.run_length(
            self.cfg.train.epochs
        )
        self.timing["train_s"] += t1 - t0
        self.timing["eval_s"] += t2 - t1
        self.timing["wall_s"] += time.perf_counter() - t0
        return EpochResult(
            epoch, record, decision, self.model.n_z, self.done, self.evaluator.fid_extractor
        )

    def _train_one_epoch(self, epoch: int) -> float:
        self.model.train()
        bs, n = self.cfg.train.batch_size, len(self.train_x)
        order = torch.randperm(n, generator=self.batches).to(self.device)
        total = 0.0
        for b, idx in enumerate(order.split(bs)):
            loss, _, _ = self.model.loss(self.train_x[idx], self.cfg.train.beta)
            if not torch.isfinite(loss):
                raise TrainingDivergedError(
                    f"loss became {loss.item()} at epoch {epoch}, batch {b} "
                    f"(n_z={self.model.n_z}). "
                    "The last good checkpoint is kept. Fix: lower train.lr or train.beta."
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.item() * len(idx)
        # A step can leave NaN weights while the loss it was taken on was still finite.
        bad = [name for name, p in self.model.named_parameters() if not torch.isfinite(p).all()]
        if bad:
            raise TrainingDivergedError(
                f"weights became non-finite at epoch {epoch} ({bad[0]}, n_z={self.model.n_z}). "
                "The last good checkpoint is kept. Fix: lower train.lr or train.beta."
            )
        return total / n

    # -- checkpoint ---------------------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        """The versioned checkpoint dict (see :mod:`ald_tune.engine.checkpoint`)."""
        rng: dict[str, Any] = {"torch": torch.get_rng_state(), "batches": self.batches.get_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "config": self.cfg.to_dict(),
            "fixed_n_z": self.fixed_n_z,
            "n_z": self.model.n_z,
            "image_shape": list(self.train_data.image_shape),
            "stats": self.train_data.stats,
            "epoch": self.epoch - 1,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "controller": self.controller.state_dict(),
            "history": list(self.history),
            "decisions": list(self.decisions),
            "rng": rng,
            "timing": dict(self.timing),
            "done": self.done,
            "tracking_run_id": self.tracking_run_id,
            "package_version": __version__,
        }

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any], *, splits=None, controller=None) -> Trainer:
        """Rebuild a trainer from :meth:`checkpoint`'s dict: the model at the stored n_z first."""
        cfg = Config.from_dict(ckpt["config"], source="checkpoint config")
        self = cls(cfg, fixed_n_z=ckpt["fixed_n_z"], splits=splits, controller=controller)
        n_z = int(ckpt["n_z"])
        if n_z != self.model.n_z:
            self.model = build_model(cfg.model, tuple(ckpt["image_shape"]), n_z).to(self.device)
            self.optimizer = make_optimizer(self.model, cfg.train)
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.controller.load_state_dict(ckpt["controller"])
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise DataError(
                f"checkpoint: its weights, optimizer or controller state do not match its "
                f"config ({type(exc).__name__}: {shown(first)}). Fix: resume from the "
                "checkpoint.pt the run wrote, unedited."
            ) from None
        self.history, self.decisions = list(ckpt["history"]), list(ckpt["decisions"])
        self.timing = dict(ckpt.get("timing") or self.timing)
        self.tracking_run_id = ckpt.get("tracking_run_id")
        self.done = bool(ckpt.get("done", False))
        torch.set_rng_state(ckpt["rng"]["torch"])
        self.batches.set_state(ckpt["rng"]["batches"])
        if "cuda" in ckpt["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
        return self

    # -- outputs ------------------------------------------------------------------------
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
            "fid_extractor": self.evaluator.fid_extractor,
            "device": str(self.device),
            "trial_epochs": len(self.history),
            "wall_time_s": self.timing["wall_s"],
            "train_time_s": self.timing["train_s"],
            "eval_time_s": self.timing["eval_s"],
            "epochs": self.history,
            "decisions": self.decisions,
        }

    def images(self, n: int = 64) -> dict[str, torch.Tensor]:
        """Sample and reconstruction grids as (H, W, C) uint8 tensors (none for vectors)."""
        if not self.val_data.is_image:
            return {}
        return image_grids(self.model, self.val_data.x, n, self.cfg.train.seed)

    def save_outputs(self, out_dir: str) -> dict[str, str]:
        """Write history.json, samples.png, reconstructions.png, model.safetensors."""
        return save_run_outputs(self, out_dir)


class GPUClock:
    """GPU time of one epoch, measured on the device with CUDA events (not estimated).

    Events recorded on the current stream at the start and at :meth:`seconds` time the
    GPU's own span of the epoch's work (kernels queued in between included: the end
    event is waited for). On a CPU-only run the GPU time is 0.
    """

    def __init__(self, device: torch.device) -> None:
        self.start = self.end = None
        if device.type == "cuda":
            self.start = torch.cuda.Event(enable_timing=True)
            self.end = torch.cuda.Event(enable_timing=True)
            self.start.record()

    def seconds(self) -> float:
        if self.start is None or self.end is None:
            return 0.0
        self.end.record()
        self.end.synchronize()
        return self.start.elapsed_time(self.end) / 1000.0  # ms -> s


def epoch_metrics(result: EpochResult, trainer: Any) -> dict[str, Any]:
    """What one epoch reports (to Tune, MLflow, Optuna): the record plus the decision.

    ``run_over`` marks the last epoch (Tune reserves ``done``: reporting it ends the
    trial function at once, before the final artifacts are logged).
    """
    d = result.decision
    out = {k: v for k, v in result.record.items() if v is not None}
    out.update(
        n_z_next=result.n_z_next,
        removed=d.n_remove,
        stop=d.stop,
        run_over=result.done,
        stopped=trainer.controller.stopped,
        decision=d.reason,
        fid_extractor=result.fid_extractor,
    )
    if result.done:
        out["final_n_z"] = trainer.model.n_z
    return out
