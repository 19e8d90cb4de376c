"""VAEs: the paper's MLP and conv nets, or the user's own model, with a likelihood.

:class:`VAE` wraps any module that follows the latent-layer protocol
(:mod:`ald_tune.engine.protocol`): the built-in :class:`MLPNets` and :class:`ConvNets`,
or what ``model.factory`` returns. n_z has one source of truth: the width of the μ head.
:meth:`VAE.remove_units` cuts the μ and log σ² heads and the decoder's first layer
together (:mod:`ald_tune.engine.surgery`), and carries the optimizer's per-parameter
state (Adam's or AdamW's moments) over for the kept units.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ald_tune.engine.likelihood import Bernoulli, make_likelihood
from ald_tune.engine.protocol import check_protocol, latent_layer_names, latent_layers
from ald_tune.engine.surgery import add_latent_units, remove_latent_units
from ald_tune.errors import ConfigError, shown


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class MLPNets(nn.Module):
    """784-400-400 → heads; decoder n_z-400-400-784 (paper, MNIST)."""

    def __init__(self, image_shape: tuple[int, int, int], hidden: Sequence[int], n_z: int):
        super().__init__()
        self.image_shape = tuple(image_shape)
        n_in = math.prod(image_shape)
        self.body = _mlp([n_in, *hidden])
        self.mu_head: nn.Linear = nn.Linear(hidden[-1], n_z)
        self.logvar_head: nn.Linear = nn.Linear(hidden[-1], n_z)
        rev = list(reversed(hidden))
        self.dec_in: nn.Linear = nn.Linear(n_z, rev[0])
        self.dec_body = nn.Sequential(nn.ReLU(), _mlp(rev), nn.Linear(rev[-1], n_in))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x.flatten(1))  # (B, hidden[-1])
        return self.mu_head(h), self.logvar_head(h)  # (B, n_z) each

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self.dec_body(self.dec_in(z))  # (B, prod(sample shape))
        return out.view(-1, *self.image_shape)


class ConvNets(nn.Module):
    """Paper's EuroSAT net: four stride-2 4×4 convs, linear 512→256→256 → heads."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        channels: Sequence[int],
        hidden: Sequence[int],
        n_z: int,
    ):
        super().__init__()
        c, h, w = image_shape
        scale = 2 ** len(channels)
        if h % scale or w % scale:
            raise ConfigError(
                f"The 'arch' parameter of ModelConfig is 'conv' ({len(channels)} stride-2 convs), "
                f"which needs image sides divisible by {scale}; the data's images are {h}x{w}. "
                "Fix: model.arch=mlp (or auto), or fewer model.conv_channels."
            )
        self.image_shape = tuple(image_shape)
        self.grid = (channels[-1], h // scale, w // scale)
        enc: list[nn.Module] = []
        for a, b in zip([c, *channels[:-1]], channels):
            enc += [nn.Conv2d(a, b, 4, stride=2, padding=1), nn.ReLU()]
        self.conv = nn.Sequential(*enc, nn.Flatten())
        n_flat = math.prod(self.grid)
        self.body = _mlp([n_flat, *hidden])
        self.mu_head: nn.Linear = nn.Linear(hidden[-1], n_z)
        self.logvar_head: nn.Linear = nn.Linear(hidden[-1], n_z)
        rev = list(reversed(hidden))
        self.dec_in: nn.Linear = nn.Linear(n_z, rev[0])
        dec: list[nn.Module] = []
        chans = list(reversed(channels))
        for a, b in zip(chans, [*chans[1:], c]):
            dec += [nn.ConvTranspose2d(a, b, 4, stride=2, padding=1), nn.ReLU()]
        self.dec_lin = nn.Sequential(nn.ReLU(), _mlp(rev), nn.Linear(rev[-1], n_flat), nn.ReLU())
        self.deconv = nn.Sequential(*dec[:-1])  # no ReLU on the logits

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(self.conv(x))  # (B, hidden[-1])
        return self.mu_head(h), self.logvar_head(h)  # (B, n_z) each

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.dec_lin(self.dec_in(z)).view(-1, *self.grid)  # (B, C', h', w')
        return self.deconv(h)  # (B, C, H, W)


class VAE(nn.Module):
    """A Gaussian-posterior VAE around any net that follows the latent-layer protocol.

    σ = exp(½·log σ²). (The authors' code takes a softmax across latent units as the
    scale, which couples the units; we use the usual form.)

    Args:
        nets: the net: ``encode(x) -> (mu, logvar)``, ``decode(z) -> out`` and its three
            latent layers (:mod:`ald_tune.engine.protocol`).
        likelihood: p(x|z) (:mod:`ald_tune.engine.likelihood`); default Bernoulli.

    Raises:
        ConfigError: a net that breaks the protocol.
    """

    nets: Any  # the user's module: its encode/decode are not typed by nn.Module
    likelihood: Any
    #: the training split's feature means and standard deviations (vectors), for new data
    stats: dict | None = None

    def __init__(self, nets: nn.Module, likelihood: nn.Module | None = None):
        super().__init__()
        check_protocol(nets)
        self.nets = nets
        self.likelihood = likelihood if likelihood is not None else Bernoulli()
        # The wrapper follows the protocol too (its layers are the net's), so surgery and
        # snapshots work on either.
        self.ald_latent_layers = {k: f"nets.{v}" for k, v in latent_layer_names(nets).items()}

    @property
    def n_z(self) -> int:
        """The latent size: the width of the μ head (the single source of truth)."""
        return int(latent_layers(self.nets)[0].out_features)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.nets.encode(x)  # (B, n_z) each

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's raw output (logits, or the Gaussian's means)."""
        return self.nets.decode(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The mean reconstruction: pixel probabilities in [0, 1], or feature means."""
        return self.likelihood.mean(self.decode_logits(z))

    def recon_nll(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """-log p(x|z) per sample, summed over pixels or features: (N,) nats."""
        return self.likelihood.nll(self.decode_logits(z), x)

    def forward(self, x: torch.Tensor):
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode_logits(z), mu, logvar

    def loss(self, x: torch.Tensor, beta: float = 1.0):
        """Negative ELBO per sample, averaged: (loss, recon, kl) as tensors.

        recon is -log p(x|z) summed over pixels/features; kl is KL(q(z|x) || N(0, I)).
        """
        out, mu, logvar = self(x)
        recon = self.likelihood.nll(out, x).mean()
        kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1).mean()
        return recon + beta * kl, recon, kl

    def remove_units(
        self, units: Sequence[int], optimizer: torch.optim.Optimizer | None = None
    ) -> None:
        """Remove latent units from both heads and the decoder's first layer
        (:func:`ald_tune.engine.surgery.remove_latent_units`; n_z follows)."""
        remove_latent_units(*latent_layers(self.nets), units, optimizer)

    def add_units(self, k: int, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Add ``k`` spare units (:func:`ald_tune.engine.surgery.add_latent_units`: the
        output is unchanged; n_z follows)."""
        add_latent_units(*latent_layers(self.nets), k, optimizer)


def resolve_arch(arch: str, image_shape: tuple[int, ...]) -> str:
    """``auto`` picks the conv net for 3-channel images of side >= 32, else the MLP."""
    if arch != "auto":
        return arch
    if len(image_shape) != 3:
        return "mlp"
    c, h, w = image_shape
    return "conv" if c == 3 and min(h, w) >= 32 else "mlp"


def resolve_likelihood(model_cfg, sample_shape: tuple[int, ...]) -> str:
    """``auto``: Bernoulli for images, Gaussian for feature vectors."""
    if model_cfg.likelihood != "auto":
        return model_cfg.likelihood
    return "bernoulli" if len(sample_shape) == 3 else "gaussian"


def build_model(model_cfg, sample_shape: tuple[int, ...], n_z: int) -> VAE:
    """Build a VAE from a :class:`ald_tune.config.schema.ModelConfig` at size ``n_z``: the
    user's ``model.factory``, else the built-in net ``model.arch`` names.

    Raises:
        ConfigError: a factory that cannot be imported or a model that breaks the protocol
            (naming the layer), or a conv net the images are too small for.
    """
    shape = tuple(int(d) for d in sample_shape)
    likelihood = make_likelihood(
        resolve_likelihood(model_cfg, shape), shape, model_cfg.gaussian_variance
    )
    if model_cfg.factory:
        user = call_factory(model_cfg.factory, dict(model_cfg.kwargs), n_z, shape)
        check_protocol(user, n_z)
        return VAE(user, likelihood)
    arch = resolve_arch(model_cfg.arch, shape)
    if arch == "conv" and len(shape) != 3:
        raise ConfigError(
            f"The 'arch' parameter of ModelConfig is 'conv', but the data are "
            f"feature vectors of shape {shape}. Fix: model.arch=mlp (or auto)."
        )
    if arch == "conv":
        nets: nn.Module = ConvNets(shape, model_cfg.conv_channels, model_cfg.conv_hidden, n_z)  # type: ignore[arg-type]
    else:
        nets = MLPNets(shape, model_cfg.hidden, n_z)  # type: ignore[arg-type]
    return VAE(nets, likelihood)


def call_factory(path: str, kwargs: dict, n_z: int, sample_shape: tuple[int, ...]) -> nn.Module:
    """``model.factory`` (``package.module:function``) called as
    ``function(n_z=..., sample_shape=..., **model.kwargs)``.

    Raises:
        ConfigError: a path that does not import or name a callable, or a factory that fails.
    """
    module, sep, name = path.partition(":")
    try:
        factory = getattr(importlib.import_module(module), name) if sep else None
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"model.factory {shown(path)} cannot be imported ({exc}). Fix: "
            "install the package that holds it (or put it on PYTHONPATH; on a "
            "cluster, on every node) and name it as package.module:function."
        ) from None
    if not callable(factory):
        raise ConfigError(
            f"model.factory {shown(path)} must look like package.module:function "
            "and name a callable."
        )
    try:
        return factory(n_z=n_z, sample_shape=sample_shape, **kwargs)
    except TypeError as exc:
        raise ConfigError(
            f"model.factory {shown(path)} could not be called as "
            f"f(n_z=..., sample_shape=..., **model.kwargs) ({exc}). Fix: accept "
            "those arguments."
        ) from None


#: Optimizers whose state ald-tune slices when it removes units (their per-parameter
#: moments have the parameter's shape).
OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def make_optimizer(model: nn.Module, train_cfg) -> torch.optim.Optimizer:
    """Adam (amsgrad as configured; the paper's) or AdamW, lr and weight decay from the config."""
    cls = OPTIMIZERS[train_cfg.optimizer]
    kwargs = {
        "lr": train_cfg.lr,
        "amsgrad": train_cfg.amsgrad,
        "weight_decay": train_cfg.weight_decay,
    }
    # torch's fused kernel (one call per step for every parameter): on this project's
    # CPU it trains a digits epoch in 88 ms instead of 131 (benchmarks/bench_engine.py);
    # devices or dtypes without one fall back to the per-parameter loop.
    try:
        return cls(model.parameters(), fused=True, **kwargs)
    except (RuntimeError, ValueError):
        return cls(model.parameters(), **kwargs)
