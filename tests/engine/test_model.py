"""Latent surgery is exact and keeps the optimizer in step."""

from __future__ import annotations

import pytest
import torch

from ald_tune.config.sections import ModelConfig, TrainConfig
from ald_tune.engine.model import build_model, make_optimizer, resolve_arch
from ald_tune.errors import ConfigError

SHAPES = {"mlp": (1, 8, 8), "conv": (3, 64, 64)}
CFG = ModelConfig(hidden=(16, 12), conv_channels=(4, 4, 4, 4), conv_hidden=(16, 16))


def make(arch, n_z=6, seed=0):
    torch.manual_seed(seed)
    return build_model(CFG.__class__(**{**CFG.__dict__, "arch": arch}), SHAPES[arch], n_z)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_pruned_decoder_equals_unpruned_with_zeroed_units(arch):
    model = make(arch)
    z = torch.randn(5, 6)
    drop = [1, 4]
    z0 = z.clone()
    z0[:, drop] = 0
    expected = model.decode(z0)
    model.remove_units(drop)
    keep = [0, 2, 3, 5]
    assert model.n_z == 4
    torch.testing.assert_close(model.decode(z[:, keep]), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_kept_encoder_outputs_unchanged(arch):
    model = make(arch)
    x = torch.rand(3, *SHAPES[arch])
    mu, logvar = model.encode(x)
    model.remove_units([0, 3])
    mu2, logvar2 = model.encode(x)
    keep = [1, 2, 4, 5]
    assert torch.equal(mu2, mu[:, keep]) and torch.equal(logvar2, logvar[:, keep])


def test_optimizer_state_is_sliced_and_all_params_train():
    model = make("mlp")
    opt = make_optimizer(model, TrainConfig())
    x = torch.rand(8, 1, 8, 8)
    for _ in range(3):
        opt.zero_grad()
        model.loss(x)[0].backward()
        opt.step()
    old_mu_w = model.nets.mu_head.weight
    old_state = {k: v.clone() for k, v in opt.state[old_mu_w].items()}
    old_dec_state = opt.state[model.nets.dec_in.weight]["exp_avg"].clone()
    model.remove_units([2], opt)
    keep = [0, 1, 3, 4, 5]
    new_mu_w = model.nets.mu_head.weight
    assert old_mu_w not in opt.state and new_mu_w in opt.state
    st = opt.state[new_mu_w]
    torch.testing.assert_close(st["exp_avg"], old_state["exp_avg"][keep])
    torch.testing.assert_close(st["max_exp_avg_sq"], old_state["max_exp_avg_sq"][keep])
    assert st["step"] == old_state["step"]
    torch.testing.assert_close(
        opt.state[model.nets.dec_in.weight]["exp_avg"], old_dec_state[:, keep]
    )
    # Every model parameter is in the optimizer exactly once, and all of them move.
    opt_params = [p for g in opt.param_groups for p in g["params"]]
    assert {id(p) for p in opt_params} == {id(p) for p in model.parameters()}
    before = [p.detach().clone() for p in model.parameters()]
    opt.zero_grad()
    model.loss(x)[0].backward()
    opt.step()
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_surgery_rejects_bad_units():
    model = make("mlp", n_z=3)
    with pytest.raises(ValueError, match="distinct indices"):
        model.remove_units([3])
    with pytest.raises(ValueError, match="distinct indices"):
        model.remove_units([1, 1])
    with pytest.raises(ValueError, match="all 3"):
        model.remove_units([0, 1, 2])


def test_paper_shapes_and_auto_arch():
    assert (
        resolve_arch("auto", (3, 64, 64)) == "conv" and resolve_arch("auto", (1, 28, 28)) == "mlp"
    )
    m = build_model(ModelConfig(), (1, 28, 28), 64)
    assert [l.out_features for l in m.nets.body if hasattr(l, "out_features")] == [400, 400]
    assert m.nets.mu_head.in_features == 400 and m.n_z == 64
    c = build_model(ModelConfig(), (3, 64, 64), 32)
    x = torch.rand(2, 3, 64, 64)
    logits, mu, logvar = c(x)
    assert logits.shape == x.shape and mu.shape == (2, 32)
    assert c.nets.body[0].in_features == 512  # 32 x 4 x 4 after four stride-2 convs


def test_loss_is_bce_sum_plus_beta_kl():
    model = make("mlp")
    x = torch.rand(4, 1, 8, 8)
    torch.manual_seed(1)
    loss, recon, kl = model.loss(x, beta=2.0)
    torch.testing.assert_close(loss, recon + 2.0 * kl)
    assert recon.item() > 0 and kl.item() >= 0


def test_bernoulli_refuses_data_outside_zero_one():
    from ald_tune.data.datasets import load_dataset, train_val_split
    from ald_tune.engine.model import check_likelihood

    train, _ = train_val_split(load_dataset("breast_cancer"), 0.1, 0)  # standardised
    check_likelihood(ModelConfig(), train)  # auto: Gaussian for vectors
    with pytest.raises(ConfigError) as e:
        check_likelihood(ModelConfig(likelihood="bernoulli"), train)
    assert "needs values in [0, 1]" in str(e.value) and "spans [-" in str(e.value)
    images, _ = train_val_split(load_dataset("digits"), 0.1, 0)
    check_likelihood(ModelConfig(likelihood="bernoulli"), images)
