"""The sweep's tracker: options checked when made, the parent run opened and closed through
its hooks, and the trial callback it hands over found again in a trial's config."""

from __future__ import annotations

import dataclasses

import pytest

from ald_tune.config.kinds import SweepKind
from ald_tune.config.schema import load_config
from ald_tune.config.trial import TrialParams
from ald_tune.errors import ConfigError
from ald_tune.sweeps.trainable import object_path
from ald_tune.tracking.fill import trial_tracking
from ald_tune.tracking.store import client
from ald_tune.tracking.tracker import MLflowTracker, TrackingOptions
from ald_tune.tracking.trial_logger import TRIAL_CALLBACK, trial_callback


def test_tracking_options_are_frozen_and_refuse_a_bad_experiment_name():
    opts = TrackingOptions(uri="sqlite:////tmp/x.db", experiment="my-exp")
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.uri = "elsewhere"  # type: ignore[misc]
    with pytest.raises(ConfigError, match=r"--experiment must be .* Got '\.\./up'"):
        TrackingOptions(experiment="../up")


def test_the_tracker_opens_the_parent_and_hands_over_the_trial_callback(tmp_path):
    cfg = load_config("search_spaces/digits.yaml")
    tracker = MLflowTracker(TrackingOptions(), str(tmp_path))
    assert tracker.uri == f"sqlite:///{tmp_path}/mlflow.db"  # the run_dir's default store
    tracker.check()
    assert not tracker.interrupted()  # nothing opened yet: nothing to close
    ((factory, where),) = tracker.start(
        cfg,
        "ald-digits-1",
        kind=SweepKind("ald", "paper"),
        space="digits.yaml",
        resume=False,
        compare="compare-digits-1",
        main_rule="paper",
    )
    assert factory is trial_callback and object_path(factory) == TRIAL_CALLBACK
    assert where == {
        "uri": tracker.uri,
        "experiment_id": tracker.experiment_id,
        "parent_run_id": tracker.parent_run_id,
    }
    # the backfill finds a tracked trial by the name the sweep writes into its config
    params = TrialParams(callbacks=((object_path(factory), where), ("x.y:z", {})))
    assert trial_tracking(params) == where
    assert trial_tracking(TrialParams(callbacks=(("x.y:z", {}),))) is None
    c = client(tracker.uri)
    parent = c.get_run(tracker.parent_run_id)
    assert c.get_experiment(tracker.experiment_id).name == "ald-tune-digits"
    assert parent.data.tags["ald_tune.compare"] == "compare-digits-1"
    assert parent.info.status == "RUNNING"
    assert tracker.interrupted()
    assert c.get_run(tracker.parent_run_id).info.status == "KILLED"
