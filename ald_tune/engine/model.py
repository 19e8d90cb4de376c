"""Gaussian VAEs: the paper's MLP and conv nets.

n_z has one source of truth: the width of the μ head. :meth:`VAE.remove_units`
cuts the μ and log σ² heads and the decoder's first layer together
(:mod:`ald_tune.engine.surgery`), and carries the optimizer's per-parameter state
(Adam's moments) over for the kept units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ald_tune.engine.surgery import remove_latent_units
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

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.flatten(1))  # (B, hidden[-1])

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        out = self.dec_body(self.dec_in(z))  # (B, C*H*W)
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

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.conv(x))  # (B, hidden[-1])

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        h = self.dec_lin(self.dec_in(z)).view(-1, *self.grid)  # (B, C', h', w')
        return self.deconv(h)  # (B, C, H, W)


class VAE(nn.Module):
    """A Gaussian VAE with a Bernoulli decoder.

    σ = exp(½·log σ²). (The authors' code takes a softmax across latent
    units as the scale, which couples the units; we use the usual form.)

    Args:
        nets: an :class:`MLPNets` or :class:`ConvNets`.
    """

    def __init__(self, nets: MLPNets | ConvNets):
        super().__init__()
        self.nets = nets

    @property
    def n_z(self) -> int:
        """The latent size: the width of the μ head (the single source of truth)."""
        return int(self.nets.mu_head.out_features)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.nets.features(x)
        return self.nets.mu_head(h), self.nets.logvar_head(h)  # (B, n_z) each

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.nets.decode_logits(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities in [0, 1], shape (B, C, H, W)."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: torch.Tensor):
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode_logits(z), mu, logvar

    def loss(self, x: torch.Tensor, beta: float = 1.0):
        """Negative ELBO per sample, averaged: (loss, recon, kl) as tensors.

        recon is BCE summed over pixels; kl is KL(q(z|x) || N(0, I)) in nats.
        """
        logits, mu, logvar = self(x)
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        recon = recon.flatten(1).sum(1).mean()
        kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1).mean()
        return recon + beta * kl, recon, kl

    def remove_units(
        self, units: Sequence[int], optimizer: torch.optim.Optimizer | None = None
    ) -> None:
        """Remove latent units from both heads and the decoder's first layer
        (:func:`ald_tune.engine.surgery.remove_latent_units`; n_z follows)."""
        remove_latent_units(
            self.nets.mu_head, self.nets.logvar_head, self.nets.dec_in, units, optimizer
        )


def resolve_arch(arch: str, image_shape: tuple[int, int, int]) -> str:
    """``auto`` picks the conv net for 3-channel images of side >= 32, else the MLP."""
    if arch != "auto":
        return arch
    c, h, w = image_shape
    return "conv" if c == 3 and min(h, w) >= 32 else "mlp"


def build_model(model_cfg, image_shape: tuple[int, int, int], n_z: int) -> VAE:
    """Build a VAE from a :class:`ald_tune.config.ModelConfig` at size ``n_z``."""
    arch = resolve_arch(model_cfg.arch, image_shape)
    nets: MLPNets | ConvNets
    if arch == "conv":
        nets = ConvNets(image_shape, model_cfg.conv_channels, model_cfg.conv_hidden, n_z)
    else:
        nets = MLPNets(image_shape, model_cfg.hidden, n_z)
    return VAE(nets)


def make_optimizer(model: nn.Module, train_cfg) -> torch.optim.Adam:
    """Adam with amsgrad (paper), lr from the config."""
    return torch.optim.Adam(model.parameters(), lr=train_cfg.lr, amsgrad=train_cfg.amsgrad)
