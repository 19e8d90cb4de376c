"""The paired trial: a removal judged against a twin that keeps the units.

To know whether a model can do without some of its units, the ``ald-tune`` rule
(:mod:`ald_tune.engine.rules.aldtune`) removes them and lets a **twin**, a copy of the
model as it was before the removal, train beside it on the same batches for a few
epochs. Both are evaluated every epoch on the same validation data, so the difference
between their metrics is what the removal costs, at the same point of training (a model
that keeps training improves while it recovers: comparing it with its own past would
credit the removal with that progress). The rule then keeps the removal, or undoes it:
the twin, which trained all along, takes the model's place, so no epoch is lost.

:class:`Twin` holds the copy and its optimizer; :func:`apply_decision` carries out a
:class:`~ald_tune.engine.rules.base.Decision` in its one order (the verdict on the
trial in progress, new spare units, a new twin, the removal), for ald-tune's trainer and
for :class:`~ald_tune.engine.pruner.Pruner` in the user's own loop alike.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ald_tune.config.sections import MAX_NZ
from ald_tune.config.vocabulary import TWIN_PREFIX
from ald_tune.engine.protocol import latent_layers
from ald_tune.engine.rules.base import Decision
from ald_tune.engine.surgery import add_latent_units, remove_latent_units


@dataclass
class Twin:
    """A copy of the model and of its optimizer, trained beside it during a paired trial.

    Attributes:
        model: the copy (the same class as the model, at the size before the removal).
        optimizer: its optimizer, a copy of the model's with its state.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer | None

    @classmethod
    def of(cls, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> Twin:
        """A copy of ``model`` and of ``optimizer`` (same hyperparameters, same state)."""
        # One deep copy of both: the copied optimizer holds the copied parameters, with
        # the same groups, hyperparameters and state.
        twin_model, twin_opt = copy.deepcopy((model, optimizer))
        # Load-state-dict pre-hooks (surgery.resize_on_load) act on the model they
        # were registered for: a copy of them on the twin would resize the original.
        for module in twin_model.modules():
            module._load_state_dict_pre_hooks.clear()
        return cls(twin_model, twin_opt)

    def state_dict(self) -> dict[str, Any]:
        """For a checkpoint: the copy's size, weights and optimizer state."""
        return {
            "n_z": int(latent_layers(self.model)[0].out_features),
            "model": self.model.state_dict(),
            "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None,
    ) -> Twin:
        """Rebuild a twin from :meth:`state_dict`: a copy of ``model`` resized to the
        stored n_z (a twin is never smaller than its model), then the stored state."""
        n_z = state.get("n_z")
        now = int(latent_layers(model)[0].out_features)
        if isinstance(n_z, bool) or not isinstance(n_z, int) or not 1 <= n_z <= MAX_NZ:
            raise ValueError(f"the twin's n_z {n_z!r} is not an int in [1, {MAX_NZ}].")
        twin = cls.of(model, optimizer)
        if n_z > now:
            add_latent_units(*latent_layers(twin.model), n_z - now, twin.optimizer)
        elif n_z < now:
            remove_latent_units(*latent_layers(twin.model), range(n_z, now), twin.optimizer)
        twin.model.load_state_dict(state["model"])
        if twin.optimizer is not None and state.get("optimizer") is not None:
            twin.optimizer.load_state_dict(state["optimizer"])
        return twin


def apply_decision(
    decision: Decision,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    twin: Twin | None,
) -> Twin | None:
    """Carry out ``decision`` on ``model`` (and ``optimizer``) in place: the verdict,
    a new twin (the model as it is then), new units, the removal.

    An ``undo`` gives the model back its units and loads the twin's weights and optimizer
    state into it (in place, so that whoever holds the model and optimizer keeps them).

    Returns:
        The twin from now on (None unless a paired trial runs).

    Raises:
        ValueError: a verdict with no trial in progress, or a new trial while one runs
            (a rule's bug).
    """
    if decision.verdict is not None:
        if twin is None:
            raise ValueError(f"verdict {decision.verdict!r} with no paired trial in progress.")
        if decision.verdict == "undo":
            take_over(twin, model, optimizer)
        twin = None
    if decision.twin:  # before a growth too: a twin is the model as it was
        if twin is not None:
            raise ValueError("a paired trial started while another runs.")
        twin = Twin.of(model, optimizer)
    if decision.grow:
        add_latent_units(*latent_layers(model), decision.grow, optimizer)
    if decision.units:
        remove_latent_units(*latent_layers(model), decision.units, optimizer)
    return twin


def take_over(twin: Twin, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> None:
    """Make ``model`` (and ``optimizer``) the twin, in place: give the model the twin's
    size (units back after a removal; the new last units off after a growth), then load
    the twin's weights and optimizer state."""
    n_twin = int(latent_layers(twin.model)[0].out_features)
    n_model = int(latent_layers(model)[0].out_features)
    if n_twin > n_model:
        add_latent_units(*latent_layers(model), n_twin - n_model, optimizer)
    elif n_twin < n_model:  # spare units are added last (surgery.add_latent_units)
        remove_latent_units(*latent_layers(model), range(n_twin, n_model), optimizer)
    model.load_state_dict(twin.model.state_dict())
    if optimizer is not None and twin.optimizer is not None:
        optimizer.load_state_dict(twin.optimizer.state_dict())


def evaluate_pair(
    evaluate: Callable[..., tuple[dict[str, Any], Sequence[float]]],
    model: Any,
    twin_model: Any | None,
    epoch: int,
) -> tuple[dict[str, Any], Sequence[float], Sequence[float] | None]:
    """The epoch's evaluation of ``model`` and, during a paired trial, of its twin: the
    twin's metrics join the record under ``twin.<metric>`` (no clustering: the rule
    compares losses and FIDs), for ald-tune's trainer and
    :class:`~ald_tune.engine.pruner.Pruner` alike.

    Args:
        evaluate: an :class:`~ald_tune.engine.evaluate.Evaluator` (``(model, epoch,
            clusters=...) -> (record, unit_kl)``).
        model, twin_model: the VAEs to evaluate (``twin_model`` None: no paired trial).

    Returns:
        (record, the model's per-unit KL, the twin's per-unit KL or None).
    """
    record, unit_kl = evaluate(model, epoch)
    if twin_model is None:
        return record, unit_kl, None
    twin_record, twin_kl = evaluate(twin_model, epoch, clusters=False)
    record.update({TWIN_PREFIX + k: v for k, v in twin_record.items()})
    return record, unit_kl, twin_kl
