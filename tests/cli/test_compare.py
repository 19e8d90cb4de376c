"""``ald-tune compare`` / ``ald_tune/run.py``: the thin file, its flags per mode."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT

import ald_tune.run
from ald_tune.cli.compare import parse_rules


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
