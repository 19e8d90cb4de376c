"""The user's own model: the latent-layer protocol, its violations, surgery and resume."""

from __future__ import annotations

import pytest
import torch

from ald_tune.config.schema import load_config
from ald_tune.config.sections import ModelConfig, TrainConfig
from ald_tune.engine.checkpoint import load_checkpoint, save_checkpoint
from ald_tune.engine.model import build_model, make_optimizer
from ald_tune.engine.protocol import check_protocol, latent_layers
from ald_tune.engine.surgery import remove_latent_units
from ald_tune.engine.trainer import Trainer
from ald_tune.errors import ConfigError, DataError
from ald_tune.testing.scripted import ScriptedController

IMAGE = (1, 8, 8)


def user(factory: str, **kwargs) -> ModelConfig:
    return ModelConfig(factory=f"user_models:{factory}", kwargs=kwargs)


# Each violation: the factory, then what the message must name (layer and expectation).
VIOLATIONS = [
    ("broken_heads", ["to_mu has 6 outputs", "to_logvar 7", "both must have n_z outputs"]),
    ("broken_decoder_input", ["dec_in (decoder_input) is a Conv1d", "nn.Linear"]),
    ("broken_decoder_width", ["dec_in takes 8 inputs", "n_z=6", "nn.Linear(n_z, ...)"]),
    ("broken_n_z", ["asked for n_z=6", "mu_head has 5 outputs", "factory's n_z"]),
    ("broken_missing_layer", ["no layer 'decoder.first' (decoder_input)", "ald_latent_layers"]),
    ("broken_no_encode", ["no encode() method", "encode(x) -> (mu, logvar)"]),
    ("broken_not_a_module", ["returned a function, not a torch.nn.Module"]),
    ("broken_declaration", ["ald_latent_layers must be a dict", "decoder_input"]),
    ("wrong_signature", ["could not be called as f(n_z=..., sample_shape=..., **model.kwargs)"]),
    ("no_such_factory", ["cannot be imported", "package.module:function"]),
]


@pytest.mark.parametrize(("factory", "needles"), VIOLATIONS, ids=[v[0] for v in VIOLATIONS])
def test_a_model_that_breaks_the_protocol_is_refused_naming_the_layer(factory, needles):
    with pytest.raises(ConfigError) as err:
        build_model(user(factory), IMAGE, 6)
    for needle in needles:
        assert needle in str(err.value), (needle, str(err.value))


def test_a_factory_that_does_not_import_names_the_path():
    with pytest.raises(ConfigError, match=r"'no_such_pkg\.models:f' cannot be imported"):
        build_model(ModelConfig(factory="no_such_pkg.models:f"), IMAGE, 4)


def test_the_factory_path_and_kwargs_are_checked_by_the_config():
    for bad in ("not a path", "pkg.mod:", "pkg.mod:1f", ":f"):
        with pytest.raises(ConfigError, match=r"model\.factory|factory"):
            ModelConfig(factory=bad)
    with pytest.raises(ConfigError, match="kwargs"):
        ModelConfig(kwargs={"depth": {"nested": 1}})
    cfg = ModelConfig(factory="user_models:conv_vae", kwargs={"width": 4, "hidden": 16})
    assert dict(cfg.kwargs) == {"hidden": 16, "width": 4}


def test_declared_layer_names_are_resized_exactly():
    torch.manual_seed(0)
    model = build_model(user("conv_vae", width=4, hidden=16), IMAGE, 6)
    assert model.n_z == 6 and model.nets.to_mu.out_features == 6
    z = torch.randn(5, 6)
    z0 = z.clone()
    z0[:, [1, 4]] = 0
    expected = model.decode(z0)
    x = torch.rand(3, *IMAGE)
    mu, logvar = model.encode(x)
    model.remove_units([1, 4])
    keep = [0, 2, 3, 5]
    assert model.n_z == 4 and model.nets.decoder[0].in_features == 4
    torch.testing.assert_close(model.decode(z[:, keep]), expected, rtol=0, atol=1e-6)
    mu2, logvar2 = model.encode(x)
    assert torch.equal(mu2, mu[:, keep]) and torch.equal(logvar2, logvar[:, keep])
    assert check_protocol(model.nets) == 4


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_adam_and_adamw_state_follows_the_kept_units(optimizer):
    torch.manual_seed(0)
    model = build_model(user("conv_vae", width=4, hidden=16), IMAGE, 6)
    opt = make_optimizer(model, TrainConfig(optimizer=optimizer, weight_decay=0.01))
    assert type(opt).__name__ == {"adam": "Adam", "adamw": "AdamW"}[optimizer]
    x = torch.rand(16, *IMAGE)
    for _ in range(3):
        opt.zero_grad()
        model.loss(x)[0].backward()
        opt.step()
    mu_w = model.nets.to_mu.weight
    before = opt.state[mu_w]["exp_avg"].clone()
    model.remove_units([0, 5], opt)
    new = model.nets.to_mu.weight
    assert torch.equal(opt.state[new]["exp_avg"], before[[1, 2, 3, 4]])
    for layer in latent_layers(model.nets):
        for p in layer.parameters():
            assert opt.state[p]["exp_avg"].shape == p.shape
    w = new.detach().clone()
    opt.zero_grad()
    model.loss(x)[0].backward()
    opt.step()
    assert not torch.equal(model.nets.to_mu.weight, w)  # the resized layer still trains


def test_another_optimizer_is_refused_by_name():
    model = build_model(user("conv_vae", width=4, hidden=16), IMAGE, 6)
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with pytest.raises(ConfigError, match=r"with SGD\. Fix: use Adam or AdamW"):
        model.remove_units([0], sgd)
    with pytest.raises(ConfigError, match="RMSprop"):
        remove_latent_units(*latent_layers(model.nets), [0], torch.optim.RMSprop([torch.ones(1)]))


def _user_cfg(cache_dir, *extra):
    return load_config(
        "search_spaces/digits.yaml",
        overrides=[
            "train.epochs=4",
            "ald.window=4",
            "ald.patience=1",
            "ald.n_z_init=12",
            "model.factory=user_models:conv_vae",
            "model.kwargs={width: 4, hidden: 32}",
            "train.optimizer=adamw",
            "train.weight_decay=0.01",
            f"eval.cache_dir={cache_dir}",
            "eval.n_fid=40",
            *extra,
        ],
    )


def test_the_trainer_prunes_a_user_model_and_resumes_it_exactly(cache_dir, tmp_path):
    """Trainer, surgery, AdamW state, checkpoint and exact resume on a user's conv VAE."""
    script = {1: 3, 2: 2}
    full = Trainer(_user_cfg(cache_dir), controller=ScriptedController(script))
    list(full)
    assert [r["n_z"] for r in full.history] == [12, 12, 9, 7]
    assert type(full.model.nets).__name__ == "ConvVAE"
    part = Trainer(_user_cfg(cache_dir), controller=ScriptedController(script))
    for r in part:
        if r.epoch == 1:
            break
    path = save_checkpoint(part.checkpoint(), tmp_path / "checkpoint.pt")
    with pytest.raises(DataError, match="names model.factory 'user_models:conv_vae'"):
        Trainer.from_checkpoint(load_checkpoint(path))  # the file alone chooses no code
    resumed = Trainer.from_checkpoint(
        load_checkpoint(path),
        factory="user_models:conv_vae",
        controller=ScriptedController(script),
    )
    assert resumed.model.n_z == 9
    list(resumed)
    assert [r["n_z"] for r in resumed.history] == [r["n_z"] for r in full.history]
    for a, b in zip(resumed.model.state_dict().values(), full.model.state_dict().values()):
        assert torch.equal(a, b)
