"""What the commands share: the space by path or bundled name, flags as overrides."""

from __future__ import annotations

import argparse
import os

import pytest

from ald_tune.cli.common import absolute_sqlite, resolve_space, sweep_args, sweep_overrides
from ald_tune.errors import ConfigError


def test_a_space_by_path_or_by_bundled_name():
    assert resolve_space("search_spaces/mnist.yaml") == os.path.abspath("search_spaces/mnist.yaml")
    assert resolve_space("mnist").endswith(os.path.join("search_spaces", "mnist.yaml"))
    with pytest.raises(ConfigError, match="'nope.yaml' does not exist"):
        resolve_space("nope.yaml")


def test_flags_that_are_config_fields_become_overrides():
    p = argparse.ArgumentParser()
    sweep_args(p, scheduler=True)
    args = p.parse_args(
        ["--set", "train.epochs=3", "--cpus-per-trial", "2", "--scheduler", "asha"]
        + ["--max-concurrent-trials", "1"]
    )
    assert sweep_overrides(args) == [
        "train.epochs=3",
        "tune.cpus_per_trial=2.0",
        "tune.max_concurrent_trials=1",
        "tune.scheduler=asha",
    ]
    assert absolute_sqlite("sqlite:///x.db") == "sqlite:///" + os.path.abspath("x.db")
    assert absolute_sqlite("sqlite:////abs.db") == "sqlite:////abs.db"
