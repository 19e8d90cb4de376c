"""Choose n_z inside your own training loop: :class:`Pruner`, called once per epoch.

ald-tune's own trainer, its Ray Tune trials and the Lightning callback
(:mod:`ald_tune.integrations.lightning`) make the same per-epoch decision; this is that
decision for any PyTorch loop::

    model = MyVAE(n_z=64)                      # follows ald_tune.engine.protocol
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    pruner = Pruner(model, optimizer, epochs=100, likelihood="bernoulli")
    for epoch in range(100):
        train_one_epoch(model, optimizer)      # your loop
        step = pruner.step(epoch, val_loader)  # evaluate, decide, resize in place
        print(step.line())
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "pruner": pruner.state_dict()}, "ckpt.pt")
        if step.end_run:
            break

To resume, rebuild the model and optimizer at the starting size, then
``pruner.load_state_dict(ckpt["pruner"])`` (it resizes both to the saved n_z) *before*
``model.load_state_dict`` and ``optimizer.load_state_dict``.

What it evaluates each epoch, on the validation batches it is given: each unit's mean
KL to the prior, the reconstruction loss, the KL, the silhouette of the posterior means
(and the clustering accuracy with labels), and, for the ``ald-tune`` rule's stop, the
exact cost of zeroing the units it would remove. It computes no FID (that needs an
image feature extractor); the ``paper`` rule then votes on the metrics that exist.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from ald_tune.config.sections import ALDConfig, EvalConfig
from ald_tune.data.datasets import ImageData
from ald_tune.engine.callbacks import action_text
from ald_tune.engine.evaluate import Evaluator
from ald_tune.engine.likelihood import LIKELIHOODS, make_likelihood
from ald_tune.engine.model import VAE
from ald_tune.engine.protocol import check_protocol, latent_layers
from ald_tune.engine.rules import make_controller
from ald_tune.engine.surgery import check_optimizer, remove_latent_units, resize_on_load
from ald_tune.engine.twin import Twin, apply_decision, evaluate_pair
from ald_tune.engine.val_batches import collect_batches
from ald_tune.errors import ConfigError, DataError, shown

#: The version of :meth:`Pruner.state_dict`'s layout.
STATE_VERSION = 1


@dataclass(frozen=True)
class PruneStep:
    """What one :meth:`Pruner.step` did.

    Attributes:
        epoch: the epoch it decided after.
        n_z_before: the size the model trained at during that epoch.
        n_z: the size from now on.
        units: the unit indices removed (indices at ``n_z_before``).
        stop: pruning stopped now (n_z is final from here on).
        end_run: the rule says training can end after this epoch.
        reason: one line saying why.
        metrics: the epoch's validation metrics.
    """

    epoch: int
    n_z_before: int
    n_z: int
    units: tuple[int, ...]
    stop: bool
    end_run: bool
    reason: str
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def n_removed(self) -> int:
        return len(self.units)

    @property
    def n_added(self) -> int:
        """Units given back: by an undone trial, or as spares at the stop."""
        return self.n_z - self.n_z_before + self.n_removed

    def line(self) -> str:
        """One console line."""
        act = action_text(self.n_removed, self.n_z, self.stop)
        return f"epoch {self.epoch:4d}  n_z {self.n_z_before:3d}  {act}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["units"] = list(self.units)
        return d


class Pruner:
    """Evaluate the latent units, decide with a rule and resize a model and its optimizer.

    Args:
        model: the VAE being trained: a module following :mod:`ald_tune.engine.protocol`
            (``encode(x) -> (mu, logvar)``, ``decode(z)``, three named latent layers).
        optimizer: its optimizer (Adam or AdamW: their moments are sliced with the
            units); None if you rebuild it after each prune yourself.
        ald: the rule and its settings (:class:`ald_tune.config.sections.ALDConfig` or a
            mapping of its fields; ``n_z_init`` is taken from the model).
        epochs: the run's epoch budget (the ``ald-tune`` rule stops by its last decision
            and not before ``ald.settle`` of it); None if unknown.
        likelihood: how the decoder's output scores x: ``bernoulli`` (logits), ``gaussian``
            (means, unit variance: standardised data) or a module with ``nll(out, x)``
            returning each sample's negative log-likelihood, shape (N,).
        eval_cfg: evaluation settings (:class:`ald_tune.config.sections.EvalConfig` or a
            mapping): ``n_silhouette`` samples, ``n_clusters``, ``silhouette_labels``.
        max_samples: validation samples evaluated per step (the first ones given).
        seed: seeds the evaluation's noise and K-means (per epoch: reproducible).
        beta: the KL weight of the loss the twin of a paired trial trains with
            (:meth:`train_twin`: the negative ELBO, recon + ``beta`` x KL).

    Raises:
        ConfigError: a model that breaks the protocol, an optimizer whose state cannot be
            sliced, or bad settings; before any evaluation.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        *,
        ald: ALDConfig | Mapping[str, Any] | None = None,
        epochs: int | None = None,
        likelihood: str | nn.Module = "bernoulli",
        eval_cfg: EvalConfig | Mapping[str, Any] | None = None,
        max_samples: int = 10_000,
        seed: int = 0,
        beta: float = 1.0,
    ) -> None:
        n_z = check_protocol(model)
        check_optimizer(optimizer)
        self.model, self.optimizer = model, optimizer
        self.ald = _section(ALDConfig, ald, "ald", n_z_init=n_z)
        self.eval = _section(EvalConfig, eval_cfg, "eval_cfg")
        if epochs is not None and not _int_at_least(epochs, 1):
            raise ConfigError(f"Pruner: epochs must be an int >= 1 or None; got {shown(epochs)}.")
        if not _int_at_least(max_samples, 2):
            raise ConfigError(f"Pruner: max_samples must be an int >= 2; got {shown(max_samples)}.")
        self.epochs, self.max_samples, self.seed = epochs, int(max_samples), int(seed)
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta >= 0:
            raise ConfigError(f"Pruner: beta must be a float >= 0; got {shown(beta)}.")
        self.beta = float(beta)
        self._likelihood = likelihood
        if isinstance(likelihood, str) and likelihood not in LIKELIHOODS:
            raise ConfigError(
                f"Pruner: likelihood {shown(likelihood)} is not one of {list(LIKELIHOODS)} "
                "or a module with nll(out, x). Fix: pass bernoulli, gaussian or your own."
            )
        if not isinstance(likelihood, str) and not callable(getattr(likelihood, "nll", None)):
            raise ConfigError(
                f"Pruner: likelihood {type(likelihood).__name__} has no nll(out, x) method."
            )
        self.controller = make_controller(self.ald, None, epochs)
        self.history: list[dict[str, Any]] = []
        self.steps: list[PruneStep] = []
        self.twin: Twin | None = None  # during a paired trial: train it with train_twin()
        self._twin_batches = 0
        # model.load_state_dict(pruned weights) resizes the model (and optimizer) first
        self._hook = resize_on_load(model, lambda: self.optimizer)

    # -- per epoch ------------------------------------------------------------------------
    @property
    def n_z(self) -> int:
        """The model's current latent size (the width of its μ head)."""
        return int(latent_layers(self.model)[0].out_features)

    @property
    def stopped(self) -> bool:
        """Pruning has stopped for good."""
        return self.controller.stopped

    def step(self, epoch: int, val_batches: Iterable[Any]) -> PruneStep:
        """Evaluate on ``val_batches``, decide, and resize the model (and optimizer) in place.

        Args:
            epoch: the epoch just trained, 0-based; one call per epoch, in order.
            val_batches: validation data: tensors ``x``, or ``(x, y, ...)`` tuples and
                lists (``y``: integer class labels, optional), or one tensor of samples.
                Only the first ``max_samples`` samples are used.

        Returns:
            The :class:`PruneStep`: n_z before and after, units removed, stop, reason.

        Raises:
            ValueError: an epoch out of order.
            DataError: validation data that cannot be evaluated (naming what is wrong).
        """
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch != len(self.history):
            raise ValueError(
                f"Pruner.step(epoch={shown(epoch)}) after {len(self.history)} recorded epochs; "
                f"call it once per epoch from 0 (next: {len(self.history)}). After a resume, "
                "call load_state_dict first."
            )
        # Lightning validates in inference mode: new parameters made there could not train.
        with torch.inference_mode(False):
            return self._step(epoch, val_batches)

    def _step(self, epoch: int, val_batches: Iterable[Any]) -> PruneStep:
        device = next(self.model.parameters()).device
        data = collect_batches(val_batches, device, self.max_samples, self.eval)
        vae = VAE(self.model, self._likelihood_module(data, device))
        evaluator = Evaluator(self.eval, data, data, self.seed, device, fid=False)
        n_z = self.n_z
        was_training = self.model.training
        if self.twin is not None:
            self._warn_untrained_twin()
        twin_vae = None if self.twin is None else VAE(self.twin.model, vae.likelihood)
        record, unit_kl, twin_kl = evaluate_pair(evaluator, vae, twin_vae, epoch)
        record = {"epoch": epoch, "n_z": n_z, **record}
        self.history.append(record)
        decision = self.controller.decide(
            self.history,
            n_z,
            unit_kl,
            probe=lambda units: evaluator.removal_cost(vae, units),
            twin_kl=twin_kl,
        )
        self.model.train(was_training)
        self.twin = apply_decision(decision, self.model, self.optimizer, self.twin)
        self._twin_batches = 0
        out = PruneStep(
            epoch=epoch,
            n_z_before=n_z,
            n_z=self.n_z,
            units=decision.units,
            stop=decision.stop,
            end_run=self.controller.run_over(decision, epoch, self.epochs),
            reason=decision.reason,
            metrics={k: v for k, v in record.items() if isinstance(v, (int, float))},
        )
        self.steps.append(out)
        return out

    def train_twin(self, x: torch.Tensor) -> None:
        """Train the twin of the paired trial in progress on one training batch with the
        negative ELBO (recon + ``beta`` x KL); nothing when no trial runs.

        The ``ald-tune`` rule judges a removal against the twin (``pruner.twin``: a copy
        of the model and its optimizer as they were), which must train beside the model
        on the same batches: a twin that stands still makes the judgement lenient. Call
        this in your batch loop with the batch your model just trained on, or, when your
        loss is not the plain negative ELBO, take your own step on ``pruner.twin.model``
        with ``pruner.twin.optimizer`` and call :meth:`twin_trained`.
        """
        if self.twin is None:
            return
        with torch.inference_mode(False), torch.enable_grad():
            model: Any = self.twin.model  # the protocol: encode, decode
            device = next(model.parameters()).device
            x = x.detach().to(device, torch.float32)
            like: Any = self._likelihood_module(
                ImageData(x=x, y=None, name="training batch"), device
            )
            model.train()
            # Its own noise, seeded by (seed, epoch, batch): a resumed run trains it alike.
            gen = torch.Generator().manual_seed(
                (self.seed * 1_000_003 + len(self.history)) * 100_003 + self._twin_batches
            )
            mu, logvar = model.encode(x)  # (B, n_z) each
            eps = torch.randn(mu.shape, generator=gen).to(device)
            recon = like.nll(model.decode(mu + eps * torch.exp(0.5 * logvar)), x).mean()
            kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1).mean()
            loss = recon + self.beta * kl
            if self.twin.optimizer is not None:
                self.twin.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.twin.optimizer.step()
        self._twin_batches += 1

    def twin_trained(self) -> None:
        """Say that your loop trained ``pruner.twin`` on a batch (see :meth:`train_twin`)."""
        self._twin_batches += 1

    def _warn_untrained_twin(self) -> None:
        if self._twin_batches == 0 and not getattr(self, "_warned_twin", False):
            self._warned_twin = True
            warnings.warn(
                "Pruner: the twin of the paired trial did not train this epoch; the "
                "rule then compares the model with a copy that stands still (lenient). "
                "Fix: call pruner.train_twin(x) on each training batch (or train "
                "pruner.twin yourself and call pruner.twin_trained()), or use ald.rule=units.",
                UserWarning,
                stacklevel=3,
            )

    def _likelihood_module(self, data: ImageData, device: torch.device) -> nn.Module:
        like = self._likelihood
        if not isinstance(like, str):
            return like  # type: ignore[return-value]
        if like == "bernoulli" and (float(data.x.min()) < 0 or float(data.x.max()) > 1):
            raise DataError(
                "Pruner: likelihood='bernoulli' needs validation data in [0, 1]; got values "
                f"in [{float(data.x.min()):.3g}, {float(data.x.max()):.3g}]. Fix: "
                "likelihood='gaussian' (standardised data) or your own module with nll()."
            )
        # Fixed unit variance: the scale of standardised data (evaluation only).
        return make_likelihood(like, data.sample_shape, "fixed").to(device)

    # -- checkpoint -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything to restore the pruner exactly: put it in your checkpoint."""
        return {
            "version": STATE_VERSION,
            "n_z": self.n_z,
            "n_z_init": self.ald.n_z_init,
            "controller": self.controller.state_dict(),
            "history": [dict(h) for h in self.history],
            "steps": [s.to_dict() for s in self.steps],
            "twin": None if self.twin is None else self.twin.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output; resizes the model (and its optimizer's
        parameters) to the saved n_z. Call it before loading the model's and the
        optimizer's own state dicts.

        Raises:
            DataError: a state of another version or rule, or a model that cannot shrink
                to the saved n_z (it is already smaller).
        """
        if not isinstance(state, Mapping) or state.get("version") != STATE_VERSION:
            found = state.get("version") if isinstance(state, Mapping) else type(state).__name__
            raise DataError(
                f"Pruner.load_state_dict: expected a state of version {STATE_VERSION} "
                f"(Pruner.state_dict()), got {shown(found)}."
            )
        saved, now = int(state["n_z"]), self.n_z
        if not 1 <= saved <= now:
            raise DataError(
                f"Pruner.load_state_dict: the saved n_z={saved} cannot be reached from this "
                f"model's n_z={now}. Fix: build the model at its starting size "
                f"(n_z={state.get('n_z_init')}) before loading."
            )
        try:
            self.controller.load_state_dict(state["controller"])
        except (ValueError, TypeError, KeyError) as exc:
            raise DataError(f"Pruner.load_state_dict: {exc}") from None
        if saved < now:
            # The weights come from the model's own state dict next: which units go does
            # not matter, only the sizes (the optimizer's state is loaded after too).
            with torch.inference_mode(False):
                remove_latent_units(*latent_layers(self.model), range(saved, now), self.optimizer)
        if state.get("twin") is not None:
            try:
                self.twin = Twin.from_state(state["twin"], self.model, self.optimizer)
            except (ValueError, RuntimeError, KeyError, TypeError) as exc:
                raise DataError(f"Pruner.load_state_dict: the twin's state: {exc}") from None
        self.history = [dict(h) for h in state["history"]]
        self.steps = [
            PruneStep(**{**s, "units": tuple(s["units"])}) for s in state.get("steps", [])
        ]


def _int_at_least(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _section(cls: Any, value: Any, name: str, **fixed: Any) -> Any:
    if value is None:
        return cls(**fixed)
    if isinstance(value, cls):
        return cls(**{**asdict(value), **fixed})
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"Pruner: {name} must be a {cls.__name__} or a mapping of its fields; got "
            f"{type(value).__name__}."
        )
    return cls(**{**value, **fixed})
