"""The decoder's likelihood p(x|z): Bernoulli (images in [0, 1]) or Gaussian (any numbers).

A likelihood turns the decoder's raw output into a per-sample negative log-likelihood
(summed over pixels or features) and into the mean reconstruction. The Gaussian's
per-feature variance is a trained parameter (``learned``) or 1 (``fixed``: the data are
standardised, so unit variance is their scale).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

LIKELIHOODS = ("bernoulli", "gaussian")


class Bernoulli(nn.Module):
    """Each pixel a Bernoulli variable; the decoder outputs logits."""

    name = "bernoulli"

    def nll(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-sample negative log-likelihood, (N,), nats."""
        bce = F.binary_cross_entropy_with_logits(out, x, reduction="none")
        return bce.flatten(1).sum(1)

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(out)


class Gaussian(nn.Module):
    """Each feature a Gaussian around the decoder's output.

    Args:
        sample_shape: the shape of one sample (the variance is per feature).
        learned: train the per-feature log-variance (else it stays 0: variance 1).
    """

    name = "gaussian"

    def __init__(self, sample_shape: tuple[int, ...], learned: bool = True) -> None:
        super().__init__()
        self.logvar = nn.Parameter(torch.zeros(sample_shape), requires_grad=learned)

    def nll(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-sample negative log-likelihood, (N,), nats."""
        logvar = self.logvar.clamp(-10.0, 10.0)
        per = 0.5 * (math.log(2 * math.pi) + logvar + (x - out).pow(2) * torch.exp(-logvar))
        return per.flatten(1).sum(1)

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        return out


def make_likelihood(name: str, sample_shape: tuple[int, ...], variance: str) -> nn.Module:
    """The likelihood ``name`` (``bernoulli`` or ``gaussian``) for samples of this shape."""
    if name == "bernoulli":
        return Bernoulli()
    return Gaussian(tuple(sample_shape), learned=variance == "learned")
