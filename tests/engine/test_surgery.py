"""Latent surgery on any three linear layers: exact, and the optimizer keeps training."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ald_tune.engine.surgery import add_latent_units, remove_latent_units


def layers(n_z=6, hidden=5, out=4):
    torch.manual_seed(0)
    return nn.Linear(hidden, n_z), nn.Linear(hidden, n_z), nn.Linear(n_z, out)


def test_removing_units_is_exact_and_slices_the_optimizer_state():
    mu, logvar, dec = layers()
    opt = torch.optim.Adam([*mu.parameters(), *logvar.parameters(), *dec.parameters()])
    z = torch.randn(3, 6)
    z[:, [1, 4]] = 0.0
    before = dec(z)
    mu(torch.randn(2, 5)).sum().backward()
    opt.step()
    old = {k: v.clone() for k, v in opt.state[mu.weight].items()}
    remove_latent_units(mu, logvar, dec, [1, 4], opt)
    assert (mu.out_features, logvar.out_features, dec.in_features) == (4, 4, 4)
    assert torch.allclose(dec(z[:, [0, 2, 3, 5]]), before, atol=1e-6)
    assert opt.state[mu.weight]["exp_avg"].shape == (4, 5)
    assert torch.equal(opt.state[mu.weight]["exp_avg"], old["exp_avg"][[0, 2, 3, 5]])
    assert any(p is mu.weight for g in opt.param_groups for p in g["params"])


@pytest.mark.parametrize(
    "units, pattern",
    [([6], "distinct indices in"), ([1, 1], "distinct"), (list(range(6)), "cannot remove all")],
)
def test_bad_units_are_refused(units, pattern):
    mu, logvar, dec = layers()
    with pytest.raises(ValueError, match=pattern):
        remove_latent_units(mu, logvar, dec, units)


def test_adding_units_is_exact_and_starts_them_collapsed():
    """Spare units: the decoder ignores them (zero columns), the heads give the prior
    (zero rows), the optimizer's moments for them start at zero; no random draws."""
    mu, logvar, dec = layers()
    opt = torch.optim.Adam([*mu.parameters(), *logvar.parameters(), *dec.parameters()])
    mu(torch.randn(2, 5)).sum().backward()
    opt.step()
    old = {k: v.clone() for k, v in opt.state[mu.weight].items()}
    z, h = torch.randn(3, 6), torch.randn(3, 5)
    before, mu_before = dec(z), mu(h)
    weight, bias = mu.weight.detach().clone(), mu.bias.detach().clone()
    rng = torch.get_rng_state()
    add_latent_units(mu, logvar, dec, 2, opt)
    assert torch.equal(torch.get_rng_state(), rng)
    assert (mu.out_features, logvar.out_features, dec.in_features) == (8, 8, 8)
    assert torch.allclose(dec(torch.cat([z, torch.randn(3, 2)], 1)), before, atol=1e-6)
    # the kept rows are copied bit for bit; the outputs agree to rounding (a GEMM of 8 rows
    # may round differently from one of 6 on some CPUs)
    assert torch.equal(mu.weight[:6], weight) and torch.equal(mu.bias[:6], bias)
    assert torch.allclose(mu(h)[:, :6], mu_before, atol=1e-6) and not mu(h)[:, 6:].any()
    assert not logvar(h)[:, 6:].any()  # log σ² = 0: the prior
    state = opt.state[mu.weight]["exp_avg"]
    assert state.shape == (8, 5) and torch.equal(state[:6], old["exp_avg"]) and not state[6:].any()
    assert any(p is dec.weight for g in opt.param_groups for p in g["params"])
    with pytest.raises(ValueError, match="k must be >= 1"):
        add_latent_units(mu, logvar, dec, 0)
