"""The selection's pieces that need no store (the rules: tests/report/test_mlflow_rebuild.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ald_tune.config.kinds import SWEEP_TAG, SweepKind
from ald_tune.errors import ConfigError
from ald_tune.report.selection import ENDED, Selection, select, sweep_kind


def run(name, kind=None, rule=None, status="FINISHED"):
    tags = {SWEEP_TAG: name, **(SweepKind(kind, rule).tags() if kind else {})}
    return SimpleNamespace(
        data=SimpleNamespace(tags=tags), info=SimpleNamespace(run_id=name, status=status)
    )


def test_a_run_without_a_kind_says_so():
    assert sweep_kind(run("g", "grid")).kind == "grid"
    with pytest.raises(ConfigError, match="MLflow run x records no sweep kind"):
        sweep_kind(run("x"))


def test_sweeps_run_on_their_own_pick_the_newest_ended_of_each_kind():
    parents = [run("a2", "ald", "paper"), run("g2", "grid", status="RUNNING"), run("g1", "grid")]
    sel = select(parents, experiment="e")
    assert isinstance(sel, Selection) and "FINISHED" in ENDED
    assert sel.grid.data.tags[SWEEP_TAG] == "g1"
    assert list(sel.alds) == ["paper"]
    assert "no complete compare in the experiment" in sel.note
