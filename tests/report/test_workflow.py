"""The comparison as a library call: ``ald_tune.compare(cfg, CompareOptions(...))``, with
scripted trainables on the shared Ray runtime, into a real SQLite MLflow store."""

from __future__ import annotations

import os

import pytest
from conftest import ONE_AT_A_TIME

import ald_tune
from ald_tune.errors import ConfigError
from ald_tune.report.comparison import Comparison, render
from ald_tune.report.mlflow_rebuild import comparison_from_mlflow
from ald_tune.testing import SCRIPTED


def test_options_are_checked_when_made():
    with pytest.raises(ConfigError, match=r"rules must list .*Got \['magic'\].*Fix"):
        ald_tune.CompareOptions(rules=("magic",))
    with pytest.raises(ConfigError, match=r"baselines must be among .*Got \['knn'\].*Fix"):
        ald_tune.CompareOptions(baselines=("knn",))
    opts = ald_tune.CompareOptions(rules=("paper", "paper"), baselines=("id", "asha"))
    assert opts.rules == ("paper",) and opts.baselines == ("asha", "id")  # BASELINES' order
    cfg = ald_tune.load_config("search_spaces/digits.yaml")
    assert ald_tune.CompareOptions().rules_for(cfg) == [cfg.ald.rule, "paper"]


@pytest.mark.integration
def test_compare_is_one_call_that_returns_what_mlflow_rebuilds(ray_session, tmp_path):
    cfg = ald_tune.load_config(
        "search_spaces/digits.yaml",
        overrides=[
            "train.epochs=30",
            "grid.n_z=[2, 8, 16, 32]",
            "tune.num_samples=2",
            "ald.n_epochs_after_stop=0",
            "tune.grid_seeds=1",  # one grid trial per n_z: the check is the rebuild, not the spread
            ONE_AT_A_TIME,
        ],
    )
    lines = []
    opts = ald_tune.CompareOptions(
        sweep=ald_tune.SweepOptions(run_dir=str(tmp_path), trainer=SCRIPTED, verbose=False),
        rules=("ald-tune", "paper"),
        baselines=("units",),
        log=lines.append,
    )
    comp = ald_tune.compare(cfg, opts)
    assert isinstance(comp, Comparison) and list(comp.reports) == ["ald-tune", "paper"]
    assert comp.baselines == ("units",) and comp.asha is None and comp.intrinsic is None
    assert lines[0].startswith(f"compare {comp.compare}: grid, ALD with rule(s) ald-tune, paper")
    assert comp.out == str(tmp_path / "results" / comp.compare.replace("compare-", ""))
    assert os.path.isfile(comp.paths["comparison"]["recommendation"])
    # the same comparison, read back from MLflow alone
    rebuilt = comparison_from_mlflow(f"sqlite:///{tmp_path}/mlflow.db", "ald-tune-digits")
    assert rebuilt.compare == comp.compare
    assert render(rebuilt) == render(comp)
