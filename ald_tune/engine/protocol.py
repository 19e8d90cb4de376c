"""The latent-layer protocol a VAE follows for ald-tune to resize it while it trains.

A model (the built-in nets, or the user's own, from ``model.factory``) must:

* encode to the posterior's mean and log-variance: ``encode(x) -> (mu, logvar)``, both
  ``(N, n_z)``, computed by two ``nn.Linear`` heads;
* decode from z: ``decode(z) -> out`` (logits for the Bernoulli likelihood, means for the
  Gaussian), with an ``nn.Linear`` as its first layer (``in_features = n_z``);
* name those three layers: an attribute ``ald_latent_layers = {"mu": ..., "logvar": ...,
  "decoder_input": ...}`` of dotted submodule names, or the default names ``mu_head``,
  ``logvar_head`` and ``dec_in``.

Removing unit j then cuts row j of both heads and column j of the decoder's first layer
(:mod:`ald_tune.engine.surgery`), exactly.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ald_tune.errors import ConfigError, shown

DEFAULT_LAYERS = {"mu": "mu_head", "logvar": "logvar_head", "decoder_input": "dec_in"}


def latent_layer_names(module: nn.Module) -> dict[str, str]:
    """The three latent layers' names: the module's ``ald_latent_layers`` or the defaults."""
    declared = getattr(module, "ald_latent_layers", None)
    if declared is None:
        return dict(DEFAULT_LAYERS)
    if not isinstance(declared, dict) or set(declared) != set(DEFAULT_LAYERS):
        raise ConfigError(
            f"{type(module).__name__}.ald_latent_layers must be a dict with the keys "
            f"{sorted(DEFAULT_LAYERS)} (dotted submodule names). Got {shown(declared)} instead."
        )
    return {k: str(v) for k, v in declared.items()}


def latent_layers(module: nn.Module) -> tuple[nn.Linear, nn.Linear, nn.Linear]:
    """(mu head, log-variance head, decoder input) of a model following the protocol.

    Raises:
        ConfigError: a missing layer, or one that is not an ``nn.Linear`` (naming it).
    """
    names = latent_layer_names(module)
    found = []
    for role in ("mu", "logvar", "decoder_input"):
        try:
            layer = module.get_submodule(names[role])
        except AttributeError:
            raise ConfigError(
                f"{type(module).__name__} has no layer {names[role]!r} ({role}). Fix: name it "
                "so, or declare ald_latent_layers = {'mu': ..., 'logvar': ..., "
                "'decoder_input': ...}."
            ) from None
        if not isinstance(layer, nn.Linear):
            raise ConfigError(
                f"{type(module).__name__}.{names[role]} ({role}) is a {type(layer).__name__}; "
                "ald-tune resizes nn.Linear layers only. Fix: make it an nn.Linear."
            )
        found.append(layer)
    return found[0], found[1], found[2]


def check_protocol(module: Any, n_z: int | None = None) -> int:
    """Check a model against the protocol before any training; returns its n_z.

    Raises:
        ConfigError: naming the layer (or method) and what was expected.
    """
    if not isinstance(module, nn.Module):
        raise ConfigError(
            f"the model factory returned a {type(module).__name__}, not a "
            "torch.nn.Module. Fix: return the VAE module."
        )
    for method in ("encode", "decode"):
        if not callable(getattr(module, method, None)):
            raise ConfigError(
                f"{type(module).__name__} has no {method}() method. Fix: "
                "encode(x) -> (mu, logvar) and decode(z) -> output."
            )
    mu, logvar, dec_in = latent_layers(module)
    names = latent_layer_names(module)
    if mu.out_features != logvar.out_features:
        raise ConfigError(
            f"{type(module).__name__}: the heads differ in size ({names['mu']} has "
            f"{mu.out_features} outputs, {names['logvar']} {logvar.out_features}); both must "
            "have n_z outputs."
        )
    if dec_in.in_features != mu.out_features:
        raise ConfigError(
            f"{type(module).__name__}.{names['decoder_input']} takes {dec_in.in_features} "
            f"inputs but the heads give n_z={mu.out_features}. Fix: build it as "
            "nn.Linear(n_z, ...)."
        )
    if n_z is not None and mu.out_features != n_z:
        raise ConfigError(
            f"{type(module).__name__}: asked for n_z={n_z}, its {names['mu']} has "
            f"{mu.out_features} outputs. Fix: build the heads from the factory's n_z argument."
        )
    return int(mu.out_features)
