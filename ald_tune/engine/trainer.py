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

import time
from typing import Any

import torch

from ald_tune.config.schema import Config, check_ald_schedule
from ald_tune.data.datasets import ImageData, load_dataset, train_val_split
from ald_tune.engine.artifacts import image_grids, save_run_outputs
from ald_tune.engine.budget import (
    check_fits,
    check_fits_on_driver,
    check_fixed_n_z,
    check_weights,
    meta_model,
    stored_shapes,
)
from ald_tune.engine.callbacks import EpochResult, TrainerView
from ald_tune.engine.checkpoint import restore_states
from ald_tune.engine.epochs import EpochIterator
from ald_tune.engine.evaluate import Evaluator, check_cache_dir, check_clusters, check_eval_sizes
from ald_tune.engine.model import build_model, check_likelihood, make_optimizer
from ald_tune.engine.nested_dropout import evaluate_prefixes, nested_loss, prefix_sizes
from ald_tune.engine.rules import make_controller
from ald_tune.engine.rules.aldtune import in_use
from ald_tune.engine.twin import Twin, apply_decision, evaluate_pair
from ald_tune.engine.user_code import Factory, allowed_factory
from ald_tune.errors import ConfigError, DataError


class TrainingDivergedError(RuntimeError):
    """The loss or the weights became NaN or infinite; the last good checkpoint is kept.

    Attributes:
        what: what became non-finite, where (``loss became nan at epoch E, batch B (n_z=K)``).
        fix: what to change.
    """

    fix = "Fix: lower train.lr or train.beta."

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"{what}. The last good checkpoint is kept. {self.fix}")

    def __reduce__(self):  # pickled by Ray: rebuilt from ``what``, not the whole message
        return type(self), (self.what,)


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


class Trainer(EpochIterator):
    """One ALD run (or, with ``fixed_n_z``, one fixed-size baseline run).

    Args:
        cfg: the run's configuration.
        fixed_n_z: train at this n_z without pruning (the grid baseline: a sweep's trial
            passes its grid point's size, :attr:`ald_tune.config.trial.TrialParams.n_z`); with
            ``train.nested_dropout`` a nested run (:mod:`ald_tune.engine.nested_dropout`) whose
            last epoch's record holds its prefix curve under ``prefixes``.
        splits: pre-loaded (train, val) data; loaded from ``cfg.data`` if None.
        controller: override the controller (tests use a scripted one).
        factory: the callable to build the model with in place of importing
            ``cfg.model.factory`` (see :func:`~ald_tune.engine.model.build_model`).

    Raises:
        ConfigError, DataError: bad configuration or data, or a model that cannot fit in
            the device's free memory, before anything is built.
    """

    def __init__(
        self,
        cfg: Config,
        *,
        fixed_n_z: int | None = None,
        splits: tuple[ImageData, ImageData] | None = None,
        controller=None,
        factory: Factory | None = None,
    ) -> None:
        check_fixed_n_z(fixed_n_z)
        fixed_n_z = None if fixed_n_z is None else int(fixed_n_z)  # a plain int in checkpoints
        self.cfg, self.fixed_n_z, self.factory = cfg, fixed_n_z, factory
        if fixed_n_z is None and cfg.train.nested_dropout:
            raise ConfigError(
                "train.nested_dropout=true trains one fixed-size run, but this is an ALD run "
                "(it resizes itself). Fix: give it a fixed n_z (ald-tune train --fixed-nz N), "
                "or run it as `ald-tune compare --baselines nested`."
            )
        if fixed_n_z is None and controller is None:
            check_ald_schedule(cfg)
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        self.device = resolve_device(cfg.train.device)
        self.train_data, self.val_data = splits or load_splits(cfg)
        check_likelihood(cfg.model, self.train_data)
        check_clusters(cfg.eval, self.val_data)  # a silhouette that could only be NaN
        check_cache_dir(cfg.eval, self.train_data.is_image)
        n_z = fixed_n_z if fixed_n_z is not None else cfg.ald.n_z_init
        check_fits(cfg, self.train_data.image_shape, n_z, self.device, factory=factory)
        self.evaluator = Evaluator(
            cfg.eval, self.train_data, self.val_data, cfg.train.seed, self.device
        )
        torch.manual_seed(cfg.train.seed)
        shape = self.train_data.image_shape
        self.model = build_model(cfg.model, shape, n_z, factory=factory).to(self.device)
        # nested dropout: the prefix lengths it trains and evaluates (None: a plain run)
        self.prefixes = prefix_sizes(cfg.grid.n_z, n_z) if cfg.train.nested_dropout else None
        self.optimizer = make_optimizer(self.model, cfg.train)
        self.controller = controller or make_controller(cfg.ald, fixed_n_z, cfg.train.epochs)
        self.batches = torch.Generator().manual_seed(cfg.train.seed)
        self.train_x = self.train_data.x.to(self.device)
        self.history: list[dict[str, Any]] = []
        self.decisions: list[dict[str, Any]] = []
        self.timing = {"train_s": 0.0, "eval_s": 0.0, "wall_s": 0.0}
        self.tracking_run_id: str | None = None
        self.twin: Twin | None = None  # during a paired trial (engine/twin.py)
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
        check_likelihood(cfg.model, splits[0])
        check_clusters(cfg.eval, splits[1])  # first, as a trainer does: a split too small
        check_eval_sizes(cfg.eval, splits[1])  # for any silhouette says so, not "lower n_fid"
        check_cache_dir(cfg.eval, splits[0].is_image)
        n_z = max(cfg.ald.n_z_init, *cfg.grid.n_z)
        # Bounded by this machine's memory (a cluster's driver: its own).
        check_fits_on_driver(cfg, splits[0].image_shape, n_z)
        build_model(cfg.model, splits[0].image_shape, n_z)  # the net fits the data (seconds)
        return splits

    def run_epoch(self) -> EpochResult:
        """Train one epoch, evaluate, decide, apply the decision."""
        t0, cpu0 = time.perf_counter(), time.process_time()
        gpu = GPUClock(self.device)
        epoch, n_z = self.epoch, self.model.n_z
        order = torch.randperm(len(self.train_x), generator=self.batches).to(self.device)
        train_loss = self._train_one_epoch(epoch, self.model, self.optimizer, order)
        if self.twin is not None:  # the paired trial's twin: the same batches
            self._train_one_epoch(epoch, self.twin.model, self.twin.optimizer, order)
        t1 = time.perf_counter()
        twin_model = None if self.twin is None else self.twin.model
        record, unit_kl, twin_kl = evaluate_pair(self.evaluator, self.model, twin_model, epoch)
        t2 = time.perf_counter()
        record = {
            "epoch": epoch,
            "n_z": n_z,
            "train_loss": train_loss,
            **record,
            # the count the rules follow, for every trial (grid ones too)
            "units_in_use": in_use(unit_kl, self.cfg.ald.kl_threshold),
            "train_time_s": t1 - t0,
            "eval_time_s": t2 - t1,
            "cpu_time_s": time.process_time() - cpu0,
            "gpu_time_s": gpu.seconds(),
        }
        decision = self.decide(
            record, unit_kl, lambda units: self.evaluator.removal_cost(self.model, units), twin_kl
        )
        self.twin = apply_decision(decision, self.model, self.optimizer, self.twin)
        self.timing["train_s"] += t1 - t0
        self.timing["eval_s"] += t2 - t1
        if self.prefixes and self.done:  # the curve, once, counted as this epoch's evaluation
            self._prefix_curve(record, epoch)
        self.timing["wall_s"] += time.perf_counter() - t0
        return EpochResult(epoch, record, decision, self.model.n_z, self.done, self.fid_extractor)

    def _train_one_epoch(self, epoch: int, model, optimizer, order: torch.Tensor) -> float:
        """One pass over the training split in ``order``; the mean training loss."""
        model.train()
        bs, n = self.cfg.train.batch_size, len(self.train_x)
        total = 0.0
        for b, idx in enumerate(order.split(bs)):
            if self.prefixes:  # prefix lengths drawn from the batch generator (resumable)
                loss, _, _ = nested_loss(
                    model, self.train_x[idx], self.cfg.train.beta, self.prefixes, self.batches
                )
            else:
                loss, _, _ = model.loss(self.train_x[idx], self.cfg.train.beta)
            if not torch.isfinite(loss):
                raise TrainingDivergedError(
                    f"loss became {loss.item()} at epoch {epoch}, batch {b} (n_z={model.n_z})"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        # A step can leave NaN weights while the loss it was taken on was still finite.
        bad = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
        if bad:
            raise TrainingDivergedError(
                f"weights became non-finite at epoch {epoch} ({bad[0]}, n_z={model.n_z})"
            )
        return total / n

    def _prefix_curve(self, record: dict[str, Any], epoch: int) -> None:
        """Evaluate every prefix of a nested run (its last epoch): the curve goes into the
        record, its seconds into the epoch's evaluation and CPU time."""
        t0, cpu0, gpu = time.perf_counter(), time.process_time(), GPUClock(self.device)
        curve = evaluate_prefixes(
            self.model, self.evaluator, self.prefixes or (), epoch, self.cfg.ald.kl_threshold
        )
        record["prefixes"] = {str(k): v for k, v in curve.items()}
        dt = time.perf_counter() - t0
        record["eval_time_s"] += dt
        record["cpu_time_s"] += time.process_time() - cpu0
        record["gpu_time_s"] += gpu.seconds()
        self.timing["eval_s"] += dt

    # -- checkpoint ---------------------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        """The versioned checkpoint dict (see :mod:`ald_tune.engine.checkpoint`)."""
        rng: dict[str, Any] = {"torch": torch.get_rng_state(), "batches": self.batches.get_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            **self.book_state(),
            "image_shape": list(self.train_data.image_shape),
            "stats": self.train_data.stats,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": rng,
            "twin": None if self.twin is None else self.twin.state_dict(),
        }

    @classmethod
    def from_checkpoint(
        cls,
        ckpt: dict[str, Any],
        *,
        factory: Factory | None = None,
        splits=None,
        controller=None,
        source: str = "checkpoint",
    ) -> Trainer:
        """Rebuild a trainer from :meth:`checkpoint`'s dict: the model at the stored n_z,
        checked weight by weight on the meta device before anything is allocated.

        Args:
            ckpt: what :func:`~ald_tune.engine.checkpoint.load_checkpoint` returned.
            factory: a checkpoint whose config names a ``model.factory`` is rebuilt only
                when the caller names it here: that path, or the callable itself (a file
                never chooses the code that runs).
            splits, controller: as for :class:`Trainer`.
            source: the file, as messages name it.

        Raises:
            DataError: a factory the caller did not name, or weights, optimizer state or
                data that do not match the stored config.
        """
        cfg = Config.from_dict(ckpt["config"], source=f"{source} config")
        allowed = allowed_factory(
            cfg.model.factory,
            factory,
            source,
            "`ald-tune train --resume ... --set model.factory=PATH` (or "
            "Trainer.from_checkpoint(ckpt, factory='PATH'))",
        )
        n_z, shape = int(ckpt["n_z"]), tuple(ckpt["image_shape"])
        meta = meta_model(cfg.model, shape, n_z, allowed)
        if meta is not None:
            check_weights(meta, stored_shapes(ckpt["model"]), source)
        self = cls(
            cfg, fixed_n_z=ckpt["fixed_n_z"], splits=splits, controller=controller, factory=allowed
        )
        if tuple(self.train_data.image_shape) != shape:
            raise DataError(
                f"{source} was trained on samples of shape {shape}; its config's data "
                f"({cfg.data.name}) now give {tuple(self.train_data.image_shape)}. Fix: restore "
                "the data the run was trained on."
            )
        if n_z != self.model.n_z:
            self.model = build_model(cfg.model, shape, n_z, factory=allowed).to(self.device)
            self.optimizer = make_optimizer(self.model, cfg.train)
        check_weights(self.model, stored_shapes(ckpt["model"]), source)  # a user's net too
        restore_states(self.model, self.optimizer, self.controller, ckpt, source)
        if ckpt.get("twin") is not None:  # a paired trial in progress
            self.twin = Twin.from_state(ckpt["twin"], self.model, self.optimizer)
        self.load_book(ckpt)
        torch.set_rng_state(ckpt["rng"]["torch"])
        self.batches.set_state(ckpt["rng"]["batches"])
        if "cuda" in ckpt["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
        return self

    # -- outputs ------------------------------------------------------------------------
    @property
    def fid_extractor(self) -> str:
        """The FID feature extractor's name (``summary()``, each epoch's result)."""
        return self.evaluator.fid_extractor

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


def epoch_metrics(result: EpochResult, trainer: TrainerView) -> dict[str, Any]:
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
