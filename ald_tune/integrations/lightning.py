"""PyTorch Lightning: :class:`ALDPruning`, a callback that chooses n_z while ``fit`` runs.

``pip install ald-tune[lightning]``. The ``LightningModule`` follows the latent-layer
protocol itself (:mod:`ald_tune.engine.protocol`: ``encode``, ``decode`` and three named
``nn.Linear`` latent layers)::

    from ald_tune.integrations.lightning import ALDPruning

    trainer = L.Trainer(max_epochs=100, callbacks=[ALDPruning(likelihood="bernoulli")])
    trainer.fit(module, train_loader, val_loader)
    trainer.fit(module, train_loader, val_loader, ckpt_path="last.ckpt")  # resumes exactly

At the end of each validation epoch the callback evaluates the units on the batches
that epoch validated on, decides with the rule (:class:`ald_tune.engine.pruner.Pruner`),
resizes the module and the Lightning optimizer's parameters and state in place, logs
``ald/n_z``, ``ald/units_removed``, ``ald/units_added`` (an undone trial, spare units) and
``ald/stopped`` through the module's logger, and
ends ``fit`` when the rule says the run is over. Its state is saved in Lightning's
checkpoint; on resume the module is cut to the checkpoint's n_z before its weights load.

One process only: data-parallel strategies keep copies of the parameters that a resize
would leave behind, so the callback refuses ``world_size > 1``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import torch

from ald_tune.config.sections import ALDConfig, EvalConfig
from ald_tune.engine.protocol import check_protocol, latent_layers
from ald_tune.engine.pruner import Pruner, PruneStep
from ald_tune.engine.surgery import resize_on_load
from ald_tune.errors import ConfigError


class ALDPruning(pl.Callback):
    """Prune the latent units of a ``LightningModule`` at the end of each validation epoch.

    Args:
        ald: the rule and its settings (:class:`ald_tune.config.sections.ALDConfig` or a
            mapping; ``n_z_init`` is the module's).
        likelihood: ``bernoulli`` (decoder logits), ``gaussian`` (means of standardised
            data) or a module with ``nll(out, x)`` (see :class:`~ald_tune.engine.pruner.Pruner`).
        eval_cfg: evaluation settings (``n_silhouette``, ``n_clusters``, ...).
        max_samples: validation samples kept per epoch for the evaluation.
        seed: seeds the evaluation (per epoch).
        log_prefix: prefix of the logged keys.
        beta: the KL weight the twin of a paired trial trains with (it trains on each
            training batch beside the module: :meth:`Pruner.train_twin
            <ald_tune.engine.pruner.Pruner.train_twin>`).
    """

    def __init__(
        self,
        ald: ALDConfig | Mapping[str, Any] | None = None,
        *,
        likelihood: str | torch.nn.Module = "bernoulli",
        eval_cfg: EvalConfig | Mapping[str, Any] | None = None,
        max_samples: int = 10_000,
        seed: int = 0,
        log_prefix: str = "ald/",
        beta: float = 1.0,
    ) -> None:
        self.ald, self.likelihood, self.eval_cfg, self.beta = ald, likelihood, eval_cfg, beta
        self.max_samples, self.seed, self.log_prefix = max_samples, seed, log_prefix
        self.pruner: Pruner | None = None
        self.last: PruneStep | None = None
        self._pending: dict[str, Any] | None = None
        self._batches: list[Any] = []
        self._kept = 0
        self._hook: Any = None
        self._warned = False

    # -- set-up ---------------------------------------------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if trainer.world_size > 1:
            raise ConfigError(
                f"ALDPruning resizes the module in place and supports one process; this "
                f"trainer runs {trainer.world_size}. Fix: devices=1 (choose n_z on one "
                "device, then train the final size as you like)."
            )
        check_protocol(pl_module)
        if self._hook is None:
            # Lightning loads the checkpoint's weights before it builds the optimizers:
            # the module must be cut to the stored n_z first.
            self._hook = resize_on_load(pl_module, lambda: self._optimizer(trainer, pl_module))

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.pruner = Pruner(
            pl_module,
            self._optimizer(trainer, pl_module),
            ald=self.ald,
            epochs=trainer.max_epochs if (trainer.max_epochs or -1) > 0 else None,
            likelihood=self.likelihood,
            eval_cfg=self.eval_cfg,
            max_samples=self.max_samples,
            seed=self.seed,
            beta=self.beta,
        )
        if self._pending is not None:
            self.pruner.load_state_dict(self._pending)
            self._pending = None

    @staticmethod
    def _optimizer(trainer: pl.Trainer, pl_module: pl.LightningModule) -> Any:
        """The optimizer that trains the μ head (None before Lightning builds them)."""
        mu = latent_layers(pl_module)[0].weight
        for opt in trainer.optimizers:
            if any(p is mu for g in opt.param_groups for p in g["params"]):
                return opt
        return None

    # -- each training batch: the twin of a paired trial trains on it too -----------------
    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self.pruner is None or self.pruner.twin is None:
            return
        if self._twin_step(self.pruner.twin, batch, batch_idx):
            self.pruner.twin_trained()
            return
        if not self._warned:
            self._warned = True
            warnings.warn(
                "ALDPruning: the module's training_step could not train the paired "
                "trial's twin outside Lightning's loop (manual optimization, or a step "
                "that needs the trainer); the twin trains with the plain negative ELBO.",
                UserWarning,
                stacklevel=2,
            )
        self.pruner.train_twin(batch if torch.is_tensor(batch) else batch[0])

    @staticmethod
    def _twin_step(twin: Any, batch: Any, batch_idx: int) -> bool:
        """One step of the twin (a copy of the module) with the module's own
        ``training_step`` and a copy of its optimizer; False when that cannot be done
        outside Lightning's loop (manual optimization, a step that needs the trainer):
        the pruner then trains it with the plain negative ELBO."""
        module = twin.model
        if not getattr(module, "automatic_optimization", True) or twin.optimizer is None:
            return False
        try:
            with torch.enable_grad():
                module.train()
                out = module.training_step(batch, batch_idx)
                loss = out["loss"] if isinstance(out, Mapping) else out
                if not torch.is_tensor(loss):
                    return False
                twin.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                twin.optimizer.step()
        except Exception:  # any failure: the plain ELBO instead (warned once)
            return False
        return True

    # -- each validation epoch ------------------------------------------------------------
    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._batches, self._kept = [], 0

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if dataloader_idx == 0 and self._kept < self.max_samples and not trainer.sanity_checking:
            self._batches.append(batch)
            first = batch if torch.is_tensor(batch) else batch[0]
            self._kept += len(first)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.pruner is None or not self._batches:
            return
        if len(self.pruner.history) > trainer.current_epoch:
            return  # this epoch was decided before a checkpoint; resumed runs skip it
        self.pruner.optimizer = self._optimizer(trainer, pl_module)
        step = self.pruner.step(trainer.current_epoch, self._batches)
        self._batches, self.last = [], step
        p = self.log_prefix
        pl_module.log(f"{p}n_z", float(step.n_z), on_epoch=True, prog_bar=True)
        pl_module.log(f"{p}units_removed", float(step.n_removed), on_epoch=True)
        pl_module.log(f"{p}units_added", float(step.n_added), on_epoch=True)
        pl_module.log(f"{p}stopped", float(self.pruner.stopped), on_epoch=True)
        if step.end_run:
            trainer.should_stop = True

    # -- Lightning's checkpoint -----------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        if self.pruner is not None:
            return self.pruner.state_dict()
        return dict(self._pending or {})

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        if self.pruner is not None:
            self.pruner.load_state_dict(state_dict)
        else:
            self._pending = dict(state_dict)
