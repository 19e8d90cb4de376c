"""Latent surgery: remove units from a VAE's latent layer, exactly, with its optimizer.

A latent layer is two ``nn.Linear`` heads (μ and log σ², n_z outputs each) and the
decoder's first ``nn.Linear`` (n_z inputs). Removing unit j is exact: the pruned
decoder equals the old one with z_j = 0, and the kept encoder outputs are unchanged.
The optimizer keeps training every remaining parameter with its state sliced to the
kept units. (The authors' code leaves resized layers out of the optimizer, freezing
them; ald-tune does not.) :func:`resize_on_load` does the same cut when a model loads the
weights of a smaller n_z.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ald_tune.engine.protocol import latent_layer_names, latent_layers
from ald_tune.errors import ConfigError


@torch.no_grad()
def remove_latent_units(
    mu_head: nn.Linear,
    logvar_head: nn.Linear,
    dec_in: nn.Linear,
    units: Sequence[int],
    optimizer: torch.optim.Optimizer | None = None,
) -> None:
    """Remove latent units from both heads and the decoder's first layer, in place.

    Args:
        mu_head, logvar_head: the encoder's heads (``out_features`` = n_z).
        dec_in: the decoder's first layer (``in_features`` = n_z).
        units: indices in [0, n_z) to remove; at least one unit must stay.
        optimizer: the optimizer training these layers (Adam-style state).

    Raises:
        ValueError: out-of-range, duplicate, or all units.
    """
    n_z = int(mu_head.out_features)
    drop = sorted(set(int(u) for u in units))
    if len(drop) != len(units) or any(u < 0 or u >= n_z for u in drop):
        raise ValueError(f"units must be distinct indices in [0, {n_z}); got {list(units)}.")
    if len(drop) >= n_z:
        raise ValueError(f"cannot remove all {n_z} latent units.")
    if not drop:
        return
    check_optimizer(optimizer)
    keep = torch.tensor([i for i in range(n_z) if i not in set(drop)])
    for head in (mu_head, logvar_head):
        _resize(head, "weight", lambda t: t[keep], optimizer)
        _resize(head, "bias", lambda t: t[keep], optimizer)
        head.out_features = len(keep)
    _resize(dec_in, "weight", lambda t: t[:, keep], optimizer)
    dec_in.in_features = len(keep)


def check_optimizer(optimizer: torch.optim.Optimizer | None) -> None:
    """Only optimizers whose state ald-tune can slice: Adam and AdamW (their moments have
    each parameter's shape). Another optimizer's state could be silently wrong.

    Raises:
        ConfigError: naming the optimizer and the fix.
    """
    if optimizer is None or type(optimizer) in (torch.optim.Adam, torch.optim.AdamW):
        return
    raise ConfigError(
        f"ald-tune resizes the state of torch.optim.Adam and AdamW only; this "
        f"model trains with {type(optimizer).__name__}. Fix: use Adam or AdamW "
        "(train.optimizer), or prune without an optimizer and build a new one."
    )


def _resize(layer: nn.Linear, name: str, cut, optimizer) -> None:
    """Replace ``layer.name`` by ``cut(old)``; the optimizer's per-parameter state follows:
    cut the same way when it shrinks, extended with zeros where it grows."""
    old: nn.Parameter = getattr(layer, name)
    new = nn.Parameter(cut(old.data).clone(), requires_grad=old.requires_grad)
    setattr(layer, name, new)
    if optimizer is None:
        return
    for group in optimizer.param_groups:
        group["params"] = [new if p is old else p for p in group["params"]]
    state = optimizer.state.pop(old, None)
    if state is not None:
        optimizer.state[new] = {
            k: _follow(v, old, new, cut) if torch.is_tensor(v) and v.shape == old.shape else v
            for k, v in state.items()
        }


def _follow(moment: torch.Tensor, old: torch.Tensor, new: torch.Tensor, cut) -> torch.Tensor:
    """An optimizer moment of ``old``'s shape, resized as ``old`` became ``new``."""
    if new.numel() <= old.numel():
        return cut(moment).clone()
    out = moment.new_zeros(new.shape)
    out[tuple(slice(0, d) for d in old.shape)] = moment
    return out


@torch.no_grad()
def add_latent_units(
    mu_head: nn.Linear,
    logvar_head: nn.Linear,
    dec_in: nn.Linear,
    k: int,
    optimizer: torch.optim.Optimizer | None = None,
) -> None:
    """Add ``k`` latent units, exactly: the decoder's first layer gets ``k`` zero input
    columns, so the model's output is unchanged, and the heads ``k`` zero rows, so the new
    units start collapsed (posterior = prior: μ = 0, log σ² = 0, KL 0), like the spare
    units a model trained at that size keeps. No random numbers are drawn: a resumed run
    adds the same units. The optimizer trains them, their moments starting at zero.

    Raises:
        ValueError: ``k`` < 1.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}.")
    check_optimizer(optimizer)
    for head in (mu_head, logvar_head):
        _resize(head, "weight", lambda t: torch.cat([t, t.new_zeros(k, t.shape[1])], 0), optimizer)
        if head.bias is not None:
            _resize(head, "bias", lambda t: torch.cat([t, t.new_zeros(k)], 0), optimizer)
        head.out_features += k
    _resize(dec_in, "weight", lambda t: torch.cat([t, t.new_zeros(t.shape[0], k)], 1), optimizer)
    dec_in.in_features += k


def resize_on_load(
    model: nn.Module, optimizer: Callable[[], torch.optim.Optimizer | None] = lambda: None
) -> Any:
    """Let ``model.load_state_dict`` take weights of a smaller n_z: a load-state-dict
    pre-hook cuts the latent layers to the stored μ head's size first (the weights are
    then loaded into them; ``optimizer()``'s parameters follow). Returns the hook's handle.
    """
    mu_name = latent_layer_names(model)["mu"]

    def hook(module: nn.Module, state_dict: Mapping[str, Any], prefix: str, *_: Any) -> None:
        stored = state_dict.get(f"{prefix}{mu_name}.weight")
        now = int(latent_layers(model)[0].out_features)
        if torch.is_tensor(stored) and stored.dim() == 2 and 1 <= stored.shape[0] < now:
            with torch.inference_mode(False), torch.no_grad():
                remove_latent_units(
                    *latent_layers(model), range(int(stored.shape[0]), now), optimizer()
                )

    return model.register_load_state_dict_pre_hook(hook)
