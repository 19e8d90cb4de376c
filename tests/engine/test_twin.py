"""The paired trial's twin: a copy that trains beside the model and can take its place."""

from __future__ import annotations

import pytest
import torch

from ald_tune.engine.model import MLPNets
from ald_tune.engine.rules.base import Decision
from ald_tune.engine.twin import Twin, apply_decision


def net_and_opt(n_z=6):
    torch.manual_seed(0)
    net = MLPNets((1, 4, 4), hidden=(8,), n_z=n_z)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2, weight_decay=1e-3)
    return net, opt


def step(net, opt, x):
    mu, logvar = net.encode(x)
    loss = (net.decode(mu) - x).pow(2).mean() + 0.01 * logvar.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


def test_a_twin_trains_apart_and_an_undo_puts_it_back_in_place():
    net, opt = net_and_opt()
    x = torch.rand(16, 1, 4, 4)
    step(net, opt, x)
    twin = apply_decision(Decision(units=(1, 4), twin=True), net, opt, None)
    assert twin is not None and twin.model.mu_head.out_features == 6
    assert net.mu_head.out_features == 4
    for _ in range(3):  # both train on the same batches
        step(net, opt, x)
        step(twin.model, twin.optimizer, x)
    expected = {k: v.clone() for k, v in twin.model.state_dict().items()}
    held, mu_weight = net, net.mu_head.weight
    assert apply_decision(Decision(verdict="undo"), net, opt, twin) is None
    assert held is net and net.mu_head.out_features == 6  # in place: the caller's objects
    for k, v in net.state_dict().items():
        assert torch.equal(v, expected[k]), k
    assert net.mu_head.weight is not mu_weight
    assert opt.state[net.mu_head.weight]["exp_avg"].shape == (6, 8)
    step(net, opt, x)  # and it trains on
    assert opt.state[net.mu_head.weight]["step"] == 5


def test_keep_drops_the_twin_and_leaves_the_model():
    net, opt = net_and_opt()
    twin = apply_decision(Decision(units=(0,), twin=True), net, opt, None)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    assert apply_decision(Decision(verdict="keep"), net, opt, twin) is None
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())


def test_the_twin_keeps_the_optimizers_groups_and_state_and_none_of_its_hooks():
    net, opt = net_and_opt()
    opt.add_param_group({"params": [], "lr": 5e-3})
    step(net, opt, torch.rand(4, 1, 4, 4))
    fired = []
    net.register_load_state_dict_pre_hook(lambda *a: fired.append(1))
    twin = Twin.of(net, opt)
    assert [g["lr"] for g in twin.optimizer.param_groups] == [1e-2, 5e-3]
    assert twin.optimizer.param_groups[0]["weight_decay"] == 1e-3
    p = twin.model.mu_head.weight
    assert torch.equal(twin.optimizer.state[p]["exp_avg"], opt.state[net.mu_head.weight]["exp_avg"])
    twin.model.load_state_dict(twin.model.state_dict())
    assert not fired  # the original's resize hook is not the twin's


def test_a_twin_survives_a_checkpoint():
    net, opt = net_and_opt()
    twin = apply_decision(Decision(units=(2, 3), twin=True), net, opt, None)
    step(twin.model, twin.optimizer, torch.rand(4, 1, 4, 4))
    state = twin.state_dict()
    back = Twin.from_state(state, net, opt)
    assert back.model.mu_head.out_features == 6
    for k, v in back.model.state_dict().items():
        assert torch.equal(v, twin.model.state_dict()[k]), k
    with pytest.raises(ValueError, match="not an int in"):
        Twin.from_state({**state, "n_z": 10**9}, net, opt)


def test_a_verdict_without_a_trial_and_two_trials_at_once_are_refused():
    net, opt = net_and_opt()
    with pytest.raises(ValueError, match="no paired trial"):
        apply_decision(Decision(verdict="keep"), net, opt, None)
    twin = apply_decision(Decision(twin=True), net, opt, None)
    with pytest.raises(ValueError, match="another runs"):
        apply_decision(Decision(twin=True), net, opt, twin)
