"""The own-loop Pruner: a user's loop, a user's model; prunes, keeps training, resumes exactly."""

from __future__ import annotations

import copy

import pytest
import torch
from user_models import USER_LOOP_RULE, TabularVAE

from ald_tune.data.datasets import load_dataset, train_val_split
from ald_tune.engine.pruner import Pruner
from ald_tune.errors import ConfigError, DataError

EPOCHS = 40
RULE = USER_LOOP_RULE


def data():
    full = load_dataset("manifold", limit=2000, manifold={"intrinsic_dim": 2, "ambient_dim": 12})
    train, val = train_val_split(full, 0.25, seed=0)
    return train.x, val.x


def train_step(model, opt, xb, gen):
    """A user's step: a Gaussian VAE (variance 0.05)."""
    mu, logvar = model.encode(xb)
    z = mu + torch.randn(mu.shape, generator=gen) * torch.exp(0.5 * logvar)
    recon = (model.decode(z) - xb).pow(2).sum(1).mean() / (2 * 0.05)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1).mean()
    opt.zero_grad()
    (recon + kl).backward()
    opt.step()


def train_one_epoch(model, opt, x, epoch, pruner=None):
    """A user's loop, batch order and noise seeded per epoch; during a paired trial the
    pruner's twin takes the same step on the same batch."""
    gen = torch.Generator().manual_seed(epoch)
    twin_gen = torch.Generator().manual_seed(10_000 + epoch)
    for idx in torch.randperm(len(x), generator=gen).split(64):
        train_step(model, opt, x[idx], gen)
        if pruner is not None and pruner.twin is not None:
            train_step(pruner.twin.model, pruner.twin.optimizer, x[idx], twin_gen)
            pruner.twin_trained()


def fresh(optimizer=torch.optim.Adam):
    torch.manual_seed(0)
    model = TabularVAE(16, (12,), hidden=32)
    opt = optimizer(model.parameters(), lr=5e-3)
    return model, opt, Pruner(model, opt, ald=RULE, epochs=EPOCHS, likelihood="gaussian")


def run(model, opt, pruner, x, val, start=0, stop=EPOCHS, on_step=None):
    for epoch in range(start, stop):
        train_one_epoch(model, opt, x, epoch, pruner)
        step = pruner.step(epoch, val.split(100))
        if on_step:
            on_step(step)
        if step.end_run:
            break


@pytest.fixture(scope="module")
def full_run():
    """One uninterrupted run, read (never changed) by the tests below; ``seen`` holds the
    weights right after its last prune."""
    x, val = data()
    model, opt, pruner = fresh()
    seen = {}

    def on_step(step):
        if step.n_z != step.n_z_before:  # the weights right after the last resize
            seen["after"] = step.epoch
            seen["weights"] = [p.detach().clone() for p in _latent_params(model)]

    run(model, opt, pruner, x, val, on_step=on_step)
    return model, opt, pruner, seen


def test_the_pruner_prunes_a_user_model_that_keeps_training(full_run):
    model, opt, pruner, seen = full_run
    path = [s.n_z for s in pruner.steps]
    assert path[0] == 16 and path[-1] < 16, path
    assert pruner.stopped and 2 <= path[-1] <= 5, (path, pruner.steps[-1].reason)
    # the resized layers kept training after the prune, with optimizer state of their shape
    for before, p in zip(seen["weights"], _latent_params(model)):
        assert before.shape == p.shape and not torch.equal(before, p), seen["after"]
    for p in _latent_params(model):
        assert opt.state[p]["exp_avg"].shape == p.shape
        assert any(p is q for g in opt.param_groups for q in g["params"])
    last = pruner.steps[-1]
    assert last.metrics["n_z"] == last.n_z_before and "silhouette" in last.metrics
    assert "fid_gen" not in last.metrics and str(last.n_z) in last.line()


@pytest.mark.parametrize("stop_after", [9, 15])
def test_resuming_from_a_checkpoint_follows_the_same_n_z_path(stop_after, tmp_path, full_run):
    """Both points fall inside a paired trial: the twin resumes too."""
    x, val = data()
    full_model, _, full, _ = full_run

    model, opt, pruner = fresh()
    run(model, opt, pruner, x, val, stop=stop_after)
    ckpt = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "pruner": pruner.state_dict(),
    }
    torch.save(ckpt, tmp_path / "ckpt.pt")
    saved_n_z = pruner.n_z
    assert saved_n_z < 16  # the resume has a resize to redo
    assert ckpt["pruner"]["twin"]["n_z"] > saved_n_z  # and a twin to rebuild
    del model, opt, pruner

    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    model, opt, pruner = fresh()
    pruner.load_state_dict(ckpt["pruner"])  # resizes the model and optimizer first
    assert pruner.n_z == saved_n_z
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    run(model, opt, pruner, x, val, start=stop_after)
    assert [s.n_z for s in pruner.steps] == [s.n_z for s in full.steps]
    assert [s.units for s in pruner.steps] == [s.units for s in full.steps]
    for a, b in zip(model.state_dict().values(), full_model.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_loading_the_weights_first_resizes_too(tmp_path):
    x, val = data()
    model, opt, pruner = fresh()
    run(model, opt, pruner, x, val, stop=13)
    state = copy.deepcopy((model.state_dict(), opt.state_dict(), pruner.state_dict()))
    model2, opt2, pruner2 = fresh()
    model2.load_state_dict(state[0])  # the pre-hook cuts the latent layers first
    opt2.load_state_dict(state[1])
    pruner2.load_state_dict(state[2])
    assert pruner2.n_z == pruner.n_z
    for p in _latent_params(model2):
        assert opt2.state[p]["exp_avg"].shape == p.shape


def test_bad_use_is_refused_clearly():
    model = TabularVAE(8, (12,))
    with pytest.raises(ConfigError, match=r"with SGD\. Fix: use Adam or AdamW"):
        Pruner(model, torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(ConfigError, match=r"Linear has no encode\(\) method"):
        Pruner(torch.nn.Linear(3, 3))
    with pytest.raises(ConfigError, match="likelihood 'poisson'"):
        Pruner(model, likelihood="poisson")
    with pytest.raises(ConfigError, match="epochs must be an int >= 1"):
        Pruner(model, epochs=0)
    with pytest.raises(ConfigError, match="rule"):
        Pruner(model, ald={"rule": "magic"})
    pruner = Pruner(model, likelihood="gaussian")
    val = torch.randn(50, 12)
    with pytest.raises(ValueError, match=r"step\(epoch=3\) after 0 recorded epochs"):
        pruner.step(3, [val])
    with pytest.raises(DataError, match="batch 0 is a str"):
        pruner.step(0, ["not a tensor"])
    with pytest.raises(DataError, match="differ in sample shape"):
        pruner.step(0, [val, torch.randn(5, 13)])
    with pytest.raises(DataError, match="5 validation samples for K-means with k=10"):
        pruner.step(0, [val[:5]])
    with pytest.raises(
        DataError, match=r"likelihood='bernoulli' needs validation data in \[0, 1\]"
    ):
        Pruner(model).step(0, [val])
    with pytest.raises(DataError, match="version 1"):
        pruner.load_state_dict({"version": 99})
    pruner.step(0, [val, (torch.randn(20, 12), torch.randint(0, 3, (20,)))])
    assert len(pruner.history) == 1


def _latent_params(model):
    return [model.mu_head.weight, model.logvar_head.weight, model.dec_in.weight]


def test_the_pruner_asks_for_the_epochs_the_final_size_needs():
    # Without n_epochs_after_stop, end_run comes when the final size has trained
    # final_share x epochs after the stop (by default a whole budget; half here), not at
    # `epochs`.
    x, val = data()
    torch.manual_seed(0)
    model = TabularVAE(16, (12,), hidden=32)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    rule = {**RULE, "n_epochs_after_stop": None, "final_share": 0.5}
    pruner = Pruner(model, opt, ald=rule, epochs=EPOCHS, likelihood="gaussian")
    run(model, opt, pruner, x, val, stop=3 * EPOCHS)
    stop = pruner.controller.state.stop_epoch
    assert pruner.stopped and stop is not None
    assert len(pruner.steps) == stop + 1 + EPOCHS // 2 and stop + 1 + EPOCHS // 2 > EPOCHS
