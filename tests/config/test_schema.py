"""Every config field rejects a bad value and a bad type with a message naming it."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import ROOT

from ald_tune.config import constraints as C
from ald_tune.config.schema import SECTIONS, Config, check_ald_schedule, load_config, parse_override
from ald_tune.errors import ConfigError

SPACE = "search_spaces/digits.yaml"


def bad_value(check: C.Constraint):
    if isinstance(check, C.Int):
        return (check.low - 1) if check.low is not None else check.high + 1
    if isinstance(check, C.Float):
        return check.low if check.low_open else check.low - 1.0
    if isinstance(check, C.Choice):
        return "no-such-option"
    if isinstance(check, C.IntTuple):
        return [check.low - 1]
    if isinstance(check, C.Votes):
        return {"no_such_metric": "up"}
    if isinstance(check, C.ImportPath):
        return "not an import path"
    if isinstance(check, C.Text):
        return "   "
    if isinstance(check, C.Bool):
        return "yes"
    if isinstance(check, C.FloatPair):
        return [2.0, 1.0]
    if isinstance(check, C.Kwargs):
        return {"depth": [[1, 2]]}
    raise AssertionError(f"no bad value known for {check!r}")


def bad_type(check: C.Constraint):
    return {
        C.Int: "ten",
        C.Float: "fast",
        C.Choice: 3,
        C.IntTuple: "2,4",
        C.Votes: 5,
        C.Text: 5,
        C.Bool: 1,
        C.FloatPair: 0.1,
        C.Kwargs: 5,
        C.ImportPath: 5,
    }[type(check)]


FIELDS = [(name, sec, f) for name, sec in SECTIONS.items() for f in dataclasses.fields(sec)]


@pytest.mark.parametrize("name,sec,f", FIELDS, ids=[f"{n}.{f.name}" for n, _, f in FIELDS])
def test_every_field_is_constrained_and_checked(name, sec, f):
    check = f.metadata.get("check")
    assert check is not None, f"{name}.{f.name} has no declared constraint"
    assert f.metadata.get("doc"), f"{name}.{f.name} has no doc"
    for bad in (bad_value(check), bad_type(check)):
        with pytest.raises(ConfigError) as err:
            sec(**{f.name: bad})
        msg = str(err.value)
        assert f"'{f.name}' parameter of {sec.__name__}" in msg
        assert repr(bad) in msg and "Got" in msg


def test_defaults_are_valid_and_round_trip():
    cfg = Config()
    assert Config.from_dict(cfg.to_dict()) == cfg
    assert cfg.flat()["ald.n_z_init"] == 64


def test_space_file_presets_and_overrides():
    quick = load_config(SPACE)
    paper = load_config(SPACE, preset="paper")
    assert quick.train.epochs < paper.train.epochs == 200
    cfg = load_config(
        SPACE,
        overrides=[
            "train.epochs=30",
            "grid.n_z=[3, 5]",
            "train.lr=1e-2",
            "ald.n_epochs_after_stop=null",
        ],
    )
    assert (cfg.train.epochs, cfg.grid.n_z, cfg.train.lr) == (30, (3, 5), 0.01)
    assert cfg.ald.n_epochs_after_stop is None


@pytest.mark.parametrize(
    "override,needle",
    [
        ("train.epochs", "section.field=value"),
        ("nope.epochs=3", "unknown section 'nope'"),
        ("train.epoch=3", "unknown field 'epoch'"),
        ("train.epochs=[1", "not valid YAML"),
    ],
)
def test_bad_overrides(override, needle):
    with pytest.raises(ConfigError, match=needle):
        parse_override(override)


def test_cross_field_rules():
    with pytest.raises(ConfigError, match=r"n_z_min.*\[1, n_z_init=8\].*Got 9"):
        Config().replace(ald={"n_z_init": 8, "n_z_min": 9})
    short = Config().replace(train={"epochs": 10})  # fine for fixed-size runs
    with pytest.raises(ConfigError, match=r"window.*at most train.epochs=10.*Got 20"):
        check_ald_schedule(short)
    with pytest.raises(ConfigError, match=r"'n_z' parameter of GridConfig.*distinct.*Got \[4, 4\]"):
        Config().replace(grid={"n_z": [4, 4]})
    with pytest.raises(ConfigError, match="path"):
        Config().replace(data={"name": "npz"})
    for name in ("digits", "breast_cancer", "manifold", "eurosat"):  # they read no path
        with pytest.raises(ConfigError, match=f"must be unset when name='{name}'.*Got '/d'"):
            Config().replace(data={"name": name, "path": "/d"})
    for name in ("npz", "folder", "mnist", "fashion_mnist"):
        assert Config().replace(data={"name": name, "path": "/d"}).data.path == "/d"


def test_bad_space_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {epochs: 10\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("train: {epochs: 100}\nmodle: {}\n")
    with pytest.raises(ConfigError, match=r"unknown section.*modle"):
        load_config(bad)
    bad.write_text("train: {epochz: 100}\n")
    with pytest.raises(ConfigError, match=r"unknown key.*epochz"):
        load_config(bad)
    bad.write_text("train: {epochs: 100}\npresets: {}\n")
    with pytest.raises(ConfigError, match="unknown preset 'fast'"):
        load_config(bad, preset="fast")
    bad.write_text("!!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_yaml_one_e_minus_three_is_a_float(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("train: {lr: 1e-3, epochs: 40}\n")
    assert load_config(f).train.lr == 1e-3


@pytest.mark.integration
def test_import_is_cheap():
    import subprocess
    import sys

    code = (
        "import sys, ald_tune, ald_tune.config, ald_tune.engine.rules.base; "
        "print(sorted(m for m in ('torch','ray','mlflow','optuna') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_configuration_reference_is_generated_from_the_config():
    """docs/configuration.md is generated by configuration_page(): regenerate, never edit."""
    import os

    from ald_tune.config.reference import config_reference, configuration_page

    page = open(os.path.join(ROOT, "docs", "configuration.md"), encoding="utf-8").read()
    assert page == configuration_page(), (
        "docs/configuration.md is stale. Fix: "
        "`python -m ald_tune.config.reference > docs/configuration.md`"
    )
    for name in ("data", "model", "train", "ald", "eval", "grid", "tune"):
        assert f"## {name}\n" in config_reference()
