"""The decoder's likelihoods: Bernoulli for images, Gaussian (learned or fixed) for vectors."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from ald_tune.config.sections import ModelConfig, TrainConfig
from ald_tune.engine.likelihood import Bernoulli, Gaussian, make_likelihood
from ald_tune.engine.model import build_model, make_optimizer


def test_bernoulli_is_the_summed_binary_cross_entropy():
    out, x = torch.randn(4, 1, 3, 3), torch.rand(4, 1, 3, 3)
    want = F.binary_cross_entropy_with_logits(out, x, reduction="none").sum((1, 2, 3))
    torch.testing.assert_close(Bernoulli().nll(out, x), want)
    torch.testing.assert_close(Bernoulli().mean(out), torch.sigmoid(out))


@pytest.mark.parametrize("logvar", [0.0, -1.5, 2.0])
def test_gaussian_is_the_normal_log_density(logvar):
    like = Gaussian((5,))
    with torch.no_grad():
        like.logvar.fill_(logvar)
    out, x = torch.randn(3, 5), torch.randn(3, 5)
    normal = torch.distributions.Normal(out, math.exp(0.5 * logvar))
    torch.testing.assert_close(like.nll(out, x), -normal.log_prob(x).sum(1))
    assert torch.equal(like.mean(out), out)


def test_learned_variance_trains_and_fixed_does_not():
    torch.manual_seed(0)
    for variance, moves in (("learned", True), ("fixed", False)):
        model = build_model(ModelConfig(hidden=(8,), gaussian_variance=variance), (6,), 3)
        assert model.likelihood.name == "gaussian"
        opt = make_optimizer(model, TrainConfig())
        before = model.likelihood.logvar.detach().clone()
        x = torch.randn(32, 6)
        for _ in range(5):
            opt.zero_grad()
            model.loss(x)[0].backward()
            opt.step()
        assert (not torch.equal(model.likelihood.logvar, before)) == moves, variance


def test_auto_picks_bernoulli_for_images_and_gaussian_for_vectors():
    assert build_model(ModelConfig(), (1, 8, 8), 2).likelihood.name == "bernoulli"
    assert build_model(ModelConfig(), (30,), 2).likelihood.name == "gaussian"
    assert build_model(ModelConfig(likelihood="gaussian"), (1, 8, 8), 2).likelihood.name == (
        "gaussian"
    )
    assert isinstance(make_likelihood("gaussian", (4,), "fixed"), Gaussian)
