"""VAEs: the paper's MLP and conv nets, or the user's own model, with a likelihood.

:class:`VAE` wraps any module that follows the latent-layer protocol
(:mod:`ald_tune.engine.protocol`): the built-in :class:`MLPNets` and :class:`ConvNets`,
or what ``model.factory`` returns. n_z has one source of truth: the width of the μ head.
:meth:`VAE.remove_units` cuts the μ and log σ² heads and the decoder's first layer
together (:mod:`ald_tune.engine.surgery`), and carries the optimizer's per-parameter
state (Adam's or AdamW's moments) over for the kept units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ald_tune.engine.likelihood import Bernoulli, make_likelihood
from ald_tune.engine.protocol import check_protocol, latent_layer_names, latent_layers
from ald_tune.engine.surgery import add_latent_units, remove_latent_units
from ald_tune.engine.user_code import Factory, call_factory, check_outputs
from ald_tune.errors import ConfigError


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

    def activations_per_sample(self) -> int:
        """Numbers one sample's forward pass keeps for the backward pass (each layer's
        output and its ReLU's; the output three times: logits, likelihood terms, sum)."""
        hidden = [m.out_features for m in self.modules() if isinstance(m, nn.Linear)]
        return 2 * sum(hidden[:-1]) + 3 * hidden[-1]


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

    def activations_per_sample(self) -> int:
        """Numbers one sample's forward pass keeps for the backward pass: each conv and
        linear output and its ReLU's, mirrored by the decoder, the output three times."""
        c, h, w = self.image_shape
        convs = [m.out_channels for m in self.conv if isinstance(m, nn.Conv2d)]
        maps = sum(ch * (h >> (i + 1)) * (w >> (i + 1)) for i, ch in enumerate(convs))
        linear = sum(m.out_features for m in self.modules() if isinstance(m, nn.Linear))
        return 2 * (2 * maps + linear) + 3 * c * h * w


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


def check_likelihood(model_cfg, data: Any) -> None:
    """The Bernoulli likelihood needs data in [0, 1] (its BCE is not a likelihood outside,
    and it would train without a word on standardised vectors).

    Args:
        model_cfg: the model section of the config.
        data: the training split (an :class:`ald_tune.data.datasets.ImageData`).

    Raises:
        ConfigError: naming the likelihood, the data's range and the fix.
    """
    name = resolve_likelihood(model_cfg, tuple(data.sample_shape))
    if name != "bernoulli" or data.x.numel() == 0:
        return
    low, high = float(data.x.min()), float(data.x.max())
    if low < 0.0 or high > 1.0:
        kind = "images" if data.is_image else "feature vectors, standardised"
        raise ConfigError(
            f"model.likelihood={model_cfg.likelihood!r} is Bernoulli, which needs values in "
            f"[0, 1]; the {data.name} training split ({kind}) spans [{low:.3g}, {high:.3g}]. "
            "Fix: model.likelihood=gaussian (or auto)."
        )


def build_model(
    model_cfg, sample_shape: tuple[int, ...], n_z: int, *, factory: Factory | None = None
) -> VAE:
    """Build a VAE from a :class:`ald_tune.config.sections.ModelConfig` at size ``n_z``: the
    user's ``model.factory``, else the built-in net ``model.arch`` names. Under
    ``with torch.device("meta")`` it builds the shapes only (nothing allocated).

    Args:
        model_cfg: the model section of the config.
        sample_shape: one sample's shape, ``(C, H, W)`` or ``(D,)``.
        n_z: the latent size.
        factory: the callable to use in place of importing ``model_cfg.factory`` (or
            that path itself); only used when the config names a factory.

    Raises:
        ConfigError: a factory that cannot be imported, raises, or builds a model that
            breaks the protocol or returns the wrong shapes (naming the factory and the
            layer or method), or a conv net the images are too small for.
    """
    shape = tuple(int(d) for d in sample_shape)
    likelihood = make_likelihood(
        resolve_likelihood(model_cfg, shape), shape, model_cfg.gaussian_variance
    )
    if model_cfg.factory:
        chosen = factory if factory is not None else model_cfg.factory
        user = call_factory(chosen, dict(model_cfg.kwargs), n_z, shape)
        check_protocol(user, n_z)
        if not any(p.is_meta for p in user.parameters()):
            check_outputs(user, chosen, n_z, shape)  # not on the meta device: no values there
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
