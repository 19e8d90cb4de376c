"""The trainable's parts that need no Ray: plugins by import path, the kind, the reporter."""

from __future__ import annotations

import os

import pytest

from ald_tune.config.schema import Config
from ald_tune.engine.callbacks import Cadence, Callback
from ald_tune.sweeps import trainable
from ald_tune.sweeps.trainable import TuneReporter, load_object, trial_kind
from ald_tune.testing.scripted import ScriptedTrainer


def test_plugins_are_named_by_import_path():
    assert load_object("ald_tune.testing.scripted:ScriptedTrainer") is ScriptedTrainer
    with pytest.raises(ValueError, match="package.module:name"):
        load_object("ald_tune.testing.scripted.ScriptedTrainer")


def test_a_trial_knows_its_sweeps_kind_from_its_config():
    cfg = Config()
    assert trial_kind({"mode": "grid", "kind": "fixed", "n_z": 5}, cfg).kind == "fixed"
    assert str(trial_kind({"mode": "ald"}, cfg)) == "ald (ald-tune)"


def test_the_reporter_sends_every_epoch_and_a_checkpoint_on_checkpoint_epochs(monkeypatch):
    sent = []
    monkeypatch.setattr(
        trainable,
        "_report",
        lambda metrics, folder: sent.append(
            (metrics["epoch"], folder is not None, metrics["node_id"])
        ),
    )
    trainer = ScriptedTrainer(
        Config().replace(train={"epochs": 6}, ald={"window": 4, "final_share": 0.0})
    )
    reporter = TuneReporter("node-1", report_ahead=True)
    trainer.fit([reporter], Cadence(checkpoint_every=3, image_every=0))
    assert sent == [
        (0, False, "node-1"),
        (1, False, "node-1"),
        (2, True, "node-1"),
        (3, False, "node-1"),
        (4, False, "node-1"),
        (5, True, "node-1"),
    ]


def test_the_last_report_waits_for_the_other_callbacks_run_end(monkeypatch):
    # Tune may stop a trial at its last report and end its process: the final MLflow
    # logging (an earlier callback's run end) must be done by then.
    events = []
    monkeypatch.setattr(trainable, "_report", lambda m, folder: events.append(m["epoch"]))

    class End(Callback):
        def on_run_end(self, trainer, status):
            events.append(status)

    trainer = ScriptedTrainer(
        Config().replace(train={"epochs": 4}, ald={"window": 4, "final_share": 0.0})
    )
    trainer.fit(
        [End(), TuneReporter("n", report_ahead=True)], Cadence(checkpoint_every=2, image_every=0)
    )
    # Epoch 2's report runs on the report thread while epoch 3 trains, so it may land
    # before or after the other callback's run end; the last report always lands after it.
    assert [e for e in events if e != "FINISHED"] == [0, 1, 2, 3] and events[-1] == 3
    assert events.count("FINISHED") == 1


def test_a_report_error_surfaces_in_the_training_thread(monkeypatch):
    def fail(metrics, folder):
        raise SystemExit(0)  # how Tune asks a function trainable to stop

    monkeypatch.setattr(trainable, "_report", fail)
    trainer = ScriptedTrainer(
        Config().replace(train={"epochs": 6}, ald={"window": 4, "final_share": 0.0})
    )
    with pytest.raises(SystemExit):
        trainer.fit([TuneReporter("n", report_ahead=True)])
    assert trainer.epoch <= 3  # stopped within an epoch or two of the report


def test_checkpoint_folders_of_ended_trial_processes_on_this_host_are_removed(tmp_path):
    import socket

    ended = 4_000_000  # a pid no process has: near the top of Linux's range, or below it
    while ended > 1 and trainable._running(ended):
        ended -= 1
    host = socket.gethostname()
    names = {
        "ended": f"{trainable.CKPT_PREFIX}{ended}@{host}-ab_12",
        "running": f"{trainable.CKPT_PREFIX}{os.getpid()}@{host}-cd_34",
        "other host": f"{trainable.CKPT_PREFIX}{ended}@{host}x-ef_56",
        "older name": f"{trainable.CKPT_PREFIX}gh_78",
        "not ours": "ald-tune-final-ij_90",
    }
    for name in names.values():
        (tmp_path / name).mkdir()
        (tmp_path / name / "checkpoint.pt").write_bytes(b"x")
    removed = trainable.remove_orphan_checkpoints(str(tmp_path))
    assert removed == [str(tmp_path / names["ended"])]
    assert sorted(os.listdir(tmp_path)) == sorted(v for k, v in names.items() if k != "ended")


def test_a_trials_checkpoints_go_through_folders_named_by_its_process(monkeypatch, tmp_path):
    folders = []
    monkeypatch.setattr(trainable, "_report", lambda m, folder: folder and folders.append(folder))
    monkeypatch.setattr(trainable.tempfile, "tempdir", str(tmp_path))
    trainer = ScriptedTrainer(
        Config().replace(train={"epochs": 4}, ald={"window": 4, "final_share": 0.0})
    )
    trainer.fit([TuneReporter("n", report_ahead=False)], Cadence(2, image_every=0))
    assert len(folders) == 2
    for folder in folders:
        name = os.path.basename(folder)
        assert name.startswith(f"{trainable.CKPT_PREFIX}{os.getpid()}@"), name
