"""The one wrapper around the user's code: whatever it raises is one line naming the
factory, the exception and where; a stored factory is used only when the caller names it."""

from __future__ import annotations

import importlib
import sys

import pytest
import torch

from ald_tune.config.sections import ModelConfig
from ald_tune.engine.model import build_model
from ald_tune.engine.user_code import allowed_factory, call_factory, check_outputs
from ald_tune.errors import ConfigError, DataError

IMAGE = (1, 8, 8)


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    """A folder on sys.path for modules a test writes; they are forgotten afterwards."""
    before = set(sys.modules)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("usercode_"):
            del sys.modules[name]


def write_module(folder, name: str, source: str) -> str:
    (folder / f"{name}.py").write_text(source)
    importlib.invalidate_caches()
    return str(folder / f"{name}.py")


@pytest.mark.parametrize(
    "source, needles",
    [
        ("def build(:\n", ["importing usercode_m raised SyntaxError", "usercode_m.py:1"]),
        (
            "x = 1\nraise RuntimeError('boom at import')\n",
            ["importing usercode_m raised RuntimeError: boom at import", "usercode_m.py:2"],
        ),
        (
            "import no_such_dependency_xyz\n",
            ["importing usercode_m raised ModuleNotFoundError", "no_such_dependency_xyz"],
        ),
        (
            "def build(n_z, sample_shape):\n    return 1 / 0\n",
            ["model.factory 'usercode_m:build' raised ZeroDivisionError", "usercode_m.py:2"],
        ),
    ],
    ids=["syntax error", "error at import", "missing dependency", "factory raises"],
)
def test_whatever_the_users_module_raises_is_one_line(user_dir, source, needles):
    write_module(user_dir, "usercode_m", source)
    with pytest.raises(ConfigError) as e:
        call_factory("usercode_m:build", {}, 4, IMAGE)
    text = str(e.value)
    assert "\n" not in text and "--debug" in text, text
    for needle in needles:
        assert needle in text, (needle, text)
    assert e.value.__cause__ is not None  # the traceback --debug prints


def test_a_factory_raising_inside_is_not_mistaken_for_a_bad_signature():
    with pytest.raises(ConfigError) as e:
        build_model(ModelConfig(factory="user_models:raises_value_error"), IMAGE, 4)
    text = str(e.value)
    assert "raised ValueError: no model for n_z=4" in text and "user_models.py:" in text
    assert "could not be called as" not in text
    with pytest.raises(ConfigError, match="could not be called as f\\(n_z=..."):
        build_model(ModelConfig(factory="user_models:wrong_signature"), IMAGE, 4)


def test_a_decode_of_the_wrong_shape_is_refused_at_build():
    with pytest.raises(ConfigError) as e:
        build_model(ModelConfig(factory="user_models:wrong_decode_shape"), IMAGE, 4)
    text = str(e.value)
    assert "decode returned a tensor of shape (2, 64)" in text and "(2, 1, 8, 8)" in text


def test_an_encode_that_fails_names_it():
    # It encodes flat vectors: on images its first layer fails inside torch.
    with pytest.raises(ConfigError, match="values_at_build'.s encode raised RuntimeError"):
        build_model(ModelConfig(factory="user_models:values_at_build"), IMAGE, 4)


def test_the_output_check_leaves_rng_and_mode_as_they_were():
    from user_models import conv_vae

    nets = conv_vae(3, (1, 8, 8), width=4, hidden=8)
    nets.train()
    torch.manual_seed(5)
    before = torch.get_rng_state()
    check_outputs(nets, conv_vae, 3, (1, 8, 8))
    assert torch.equal(torch.get_rng_state(), before) and nets.training


def test_a_callable_factory_is_used_as_given():
    from user_models import conv_vae

    calls = []

    def mine(**kwargs):
        calls.append(kwargs)
        return conv_vae(**kwargs, width=4, hidden=8)

    model = build_model(ModelConfig(factory="not_imported.at_all:f"), IMAGE, 3, factory=mine)
    assert model.n_z == 3 and calls == [{"n_z": 3, "sample_shape": IMAGE}]
    assert "not_imported" not in sys.modules


def test_a_stored_factory_is_used_only_when_the_caller_names_it():
    how = "--set model.factory=PATH"
    assert allowed_factory(None, None, "f", how) is None  # a built-in net
    with pytest.raises(DataError) as e:
        allowed_factory("evilmod:build", None, "model file 'm'", how)
    assert "names model.factory 'evilmod:build'" in str(e.value)
    assert "--set model.factory=evilmod:build" in str(e.value)
    with pytest.raises(DataError, match="not the 'mine:build' you allowed"):
        allowed_factory("evilmod:build", "mine:build", "f", how)
    assert allowed_factory("evilmod:build", "evilmod:build", "f", how) == "evilmod:build"
    assert allowed_factory("evilmod:build", print, "f", how) is print
    assert "evilmod" not in sys.modules
