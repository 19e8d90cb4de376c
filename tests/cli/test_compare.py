"""``ald-tune compare`` / ``ald_tune/run.py``: the thin file, its flags per mode."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT

import ald_tune.cli.compare
import ald_tune.run
from ald_tune.cli.compare import parse_baselines, parse_rules
from ald_tune.errors import ConfigError


@pytest.mark.integration
def test_run_py_is_a_thin_file_that_runs_as_the_ray_submit_target():
    assert "def " not in open(ald_tune.run.__file__).read()  # no logic of its own
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "ald_tune", "run.py"), "--help"],
        capture_output=True,
        text=True,
        cwd="/",
    )
    assert out.returncode == 0 and out.stdout.startswith("usage: ald_tune/run.py")
    assert "{compare,ald,grid}" in out.stdout and "compare (default): everything" in out.stdout


def test_rules_are_checked_and_kept_in_order():
    assert parse_rules(None, "ald-tune,paper") == ["ald-tune", "paper"]
    assert parse_rules("paper, paper,ald-tune", "") == ["paper", "ald-tune"]


def test_baselines_are_checked_and_can_be_turned_off(capsys):
    assert parse_baselines("asha,units,id") == ("asha", "units", "id")
    assert parse_baselines("id, asha") == ("asha", "id")  # one order, whatever was typed
    assert parse_baselines("none") == ()
    with pytest.raises(
        ConfigError, match=r"--baselines must list asha, units, id, nested .*'asha,optuna'"
    ):
        parse_baselines("asha,optuna")
    # Only compare runs baselines: the flag is refused on the other modes, before Ray.
    rc = ald_tune.cli.compare.main(["grid", "--baselines", "none"])
    assert rc == 2 and "--baselines applies to the compare mode" in capsys.readouterr().err


def test_nested_dropout_is_a_baseline_on_request(capsys, tmp_path):
    assert parse_baselines("nested, units") == ("units", "nested")
    assert parse_baselines("asha,units,id,nested") == ("asha", "units", "id", "nested")
    parser = ald_tune.cli.compare.build_parser()
    assert parser.parse_args([]).baselines == "asha,units,id"  # not by default: it trains
    assert parser.parse_args(["--baselines", "nested"]).baselines == "nested"
    assert "nested (nested dropout" in parser.format_help()
    rc = ald_tune.cli.compare.main(["ald", "--baselines", "nested"])
    assert rc == 2 and "--baselines applies to the compare mode" in capsys.readouterr().err
    # nested dropout belongs to the nested sweep: set for the whole compare, the grid refuses
    rc = ald_tune.cli.compare.main(
        ["--run-dir", str(tmp_path), "--no-tracking", "--set", "train.nested_dropout=true"]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "train.nested_dropout=true in a grid sweep" in err, err
    assert not os.path.exists(tmp_path / "ray")  # refused before anything started
