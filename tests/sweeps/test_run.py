"""Tests of ald_tune.sweeps.run: what happens after a tracked fit (no Ray here)."""

from __future__ import annotations

import pytest

from ald_tune.config.kinds import SweepKind
from ald_tune.errors import Interrupted
from ald_tune.sweeps import run
from ald_tune.sweeps.results import SweepRecord
from ald_tune.sweeps.tuner import Plan


class Tracker:
    """Records what the sweep asks of its tracker."""

    uri, experiment_id, parent_run_id = "sqlite:////x/mlflow.db", "1", "abc"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def log_wall(self, wall_s: float, step: int) -> None:
        self.calls.append("log_wall")

    def interrupted(self) -> bool:
        self.calls.append("interrupted")
        return True

    def finish(self, statuses, stopper: str) -> None:
        self.calls.append("finish")


@pytest.mark.parametrize("interrupted", [False, True])
def test_backfill_waits_for_the_resume_after_an_interruption(tmp_path, monkeypatch, interrupted):
    """Tune returns from an interrupted fit while its stopped trials still send what they
    buffered: a backfill then logged an epoch twice. An interrupted sweep is backfilled at
    the end of its resume; a finished one at once."""
    filled: list[tuple[str, str]] = []
    monkeypatch.setattr(run, "backfill_quietly", lambda path, uri: filled.append((path, uri)))
    kind = SweepKind("grid")
    plan = Plan("s", str(tmp_path), str(tmp_path / "s"), kind)
    result = SweepRecord(kind, "s", path=str(tmp_path / "s"), interrupted=interrupted)
    tracker = Tracker()
    if interrupted:
        with pytest.raises(Interrupted, match=r"sweep s interrupted.*--resume --name s"):
            run._close_tracked(tracker, result, plan)  # type: ignore[arg-type]
        assert filled == [] and tracker.calls == ["log_wall", "interrupted"]
    else:
        done = run._close_tracked(tracker, result, plan)  # type: ignore[arg-type]
        assert filled == [(str(tmp_path / "s"), Tracker.uri)]
        assert tracker.calls == ["log_wall", "finish"] and done.parent_run_id == "abc"
