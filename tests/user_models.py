"""Models a user might write (not ald-tune's built-in nets), for ``model.factory``.

A test names them as ``user_models:<factory>`` with this folder on PYTHONPATH, exactly as
a user names their own package. :func:`conv_vae` is also the model of the FashionMNIST
measurement in docs/own-model.md. The ``broken_*`` factories each break one rule of the
latent-layer protocol (:mod:`ald_tune.engine.protocol`).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

#: The ALD rule of the own-loop and Lightning tests (tests/engine/test_pruner.py,
#: tests/integrations/lit_vae.py): a short window on a small manifold VAE.
USER_LOOP_RULE = {
    "window": 4,
    "patience": 2,
    "confirm": 2,
    "reserve": 2,
    "settle": 0.4,
    "n_epochs_after_stop": 3,
}


class ConvVAE(nn.Module):
    """A small conv VAE of the user's own design: two stride-2 convs, one hidden layer,
    its latent layers under its own names (declared in ``ald_latent_layers``)."""

    ald_latent_layers: ClassVar[dict[str, str]] = {
        "mu": "to_mu",
        "logvar": "to_logvar",
        "decoder_input": "decoder.0",
    }

    def __init__(self, n_z: int, sample_shape: tuple[int, ...], width: int = 32, hidden: int = 256):
        super().__init__()
        c, h, w = sample_shape
        if h % 4 or w % 4:
            raise ValueError(f"ConvVAE needs sides divisible by 4, got {h}x{w}")
        self.grid = (2 * width, h // 4, w // 4)
        self.encoder = nn.Sequential(
            nn.Conv2d(c, width, 4, 2, 1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(math.prod(self.grid), hidden),
            nn.ReLU(),
        )
        self.to_mu = nn.Linear(hidden, n_z)
        self.to_logvar = nn.Linear(hidden, n_z)
        self.decoder = nn.Sequential(
            nn.Linear(n_z, hidden),
            nn.ReLU(),
            nn.Linear(hidden, math.prod(self.grid)),
            nn.ReLU(),
            nn.Unflatten(1, self.grid),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(width, c, 4, 2, 1),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.to_mu(h), self.to_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # logits (B, C, H, W)


def conv_vae(n_z: int, sample_shape: tuple[int, ...], width: int = 32, hidden: int = 256):
    return ConvVAE(n_z, sample_shape, width, hidden)


class TabularVAE(nn.Module):
    """An MLP VAE for feature vectors with the protocol's default layer names."""

    def __init__(self, n_z: int, sample_shape: tuple[int, ...], hidden: int = 64):
        super().__init__()
        (d,) = sample_shape
        self.body = nn.Sequential(nn.Linear(d, hidden), nn.ReLU())
        self.mu_head = nn.Linear(hidden, n_z)
        self.logvar_head = nn.Linear(hidden, n_z)
        self.dec_in = nn.Linear(n_z, hidden)
        self.dec_out = nn.Sequential(nn.ReLU(), nn.Linear(hidden, d))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.mu_head(h), self.logvar_head(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec_out(self.dec_in(z))


def tabular_vae(n_z: int, sample_shape: tuple[int, ...], hidden: int = 64):
    return TabularVAE(n_z, sample_shape, hidden)


# -- each breaks one rule of the protocol ----------------------------------------------------
def broken_heads(n_z: int, sample_shape: tuple[int, ...]):
    """The log-variance head has one output too many."""
    model = ConvVAE(n_z, sample_shape, width=4, hidden=16)
    model.to_logvar = nn.Linear(16, n_z + 1)
    return model


def broken_decoder_input(n_z: int, sample_shape: tuple[int, ...]):
    """The decoder starts with a 1x1 convolution, not an nn.Linear."""
    model = TabularVAE(n_z, (int(math.prod(sample_shape)),), hidden=16)
    model.dec_in = nn.Conv1d(n_z, 16, 1)  # type: ignore[assignment]
    return model


def broken_decoder_width(n_z: int, sample_shape: tuple[int, ...]):
    """The decoder's first layer takes a fixed 8 inputs whatever n_z is."""
    model = TabularVAE(n_z, (int(math.prod(sample_shape)),), hidden=16)
    model.dec_in = nn.Linear(8 if n_z != 8 else 9, 16)
    return model


def broken_n_z(n_z: int, sample_shape: tuple[int, ...]):
    """Ignores the n_z it is asked for."""
    return TabularVAE(5 if n_z != 5 else 6, (int(math.prod(sample_shape)),), hidden=16)


def broken_missing_layer(n_z: int, sample_shape: tuple[int, ...]):
    """Declares a decoder input that does not exist."""
    model = ConvVAE(n_z, sample_shape, width=4, hidden=16)
    model.ald_latent_layers = {**ConvVAE.ald_latent_layers, "decoder_input": "decoder.first"}
    return model


def broken_no_encode(n_z: int, sample_shape: tuple[int, ...]):
    """Has the layers but no encode() method."""

    class NoEncode(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mu_head = nn.Linear(4, n_z)
            self.logvar_head = nn.Linear(4, n_z)
            self.dec_in = nn.Linear(n_z, 4)

        def decode(self, z: torch.Tensor) -> torch.Tensor:
            return self.dec_in(z)

    return NoEncode()


def broken_not_a_module(n_z: int, sample_shape: tuple[int, ...]):
    """Returns a plain function."""
    return lambda x: x


def broken_declaration(n_z: int, sample_shape: tuple[int, ...]):
    """Declares its layers as a list, not a mapping."""
    model = TabularVAE(n_z, (int(math.prod(sample_shape)),), hidden=16)
    model.ald_latent_layers = ["mu_head", "logvar_head", "dec_in"]  # type: ignore[attr-defined]
    return model


def wrong_signature(size: int):
    """Does not take n_z and sample_shape."""
    return TabularVAE(size, (4,))


# -- the user's code fails (each must be one line naming the factory) -----------------------
def raises_value_error(n_z: int, sample_shape: tuple[int, ...]):
    """Raises from inside the factory (not a TypeError about its signature)."""
    raise ValueError(f"no model for n_z={n_z}")


class FlatVAE(TabularVAE):
    """Encodes images flattened, and decodes to flat vectors, not images."""

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return super().encode(x.flatten(1))


def wrong_decode_shape(n_z: int, sample_shape: tuple[int, ...]):
    """Follows the protocol, but decodes (N, C, H, W) images to (N, C*H*W) vectors."""
    return FlatVAE(n_z, (int(math.prod(sample_shape)),), hidden=16)


def values_at_build(n_z: int, sample_shape: tuple[int, ...]):
    """Reads a tensor's value while it builds: fine on the CPU, impossible on the meta
    device (where ald-tune weighs models before building them)."""
    width = int(torch.ones(()).mul(16).item())
    return TabularVAE(n_z, (int(math.prod(sample_shape)),), hidden=width)
