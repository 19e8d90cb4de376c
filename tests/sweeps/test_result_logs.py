"""Tune's result files survive a trial retry whole (ald_tune.sweeps.result_logs)."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pyarrow.fs
import pytest
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from ald_tune.sweeps.result_logs import CSVLogger, JsonLogger, result_loggers


class FakeTrial:
    """What the loggers read of a Trial: the driver's folder and the storage folder."""

    def __init__(self, tmp_path, name="t0"):
        local, remote = tmp_path / "driver" / name, tmp_path / "storage" / name
        local.mkdir(parents=True)
        remote.mkdir(parents=True)
        self.local_path, self.checkpoint, self.config = str(local), object(), {"seed": 0}
        self.storage = SimpleNamespace(
            trial_fs_path=str(remote), storage_filesystem=pyarrow.fs.LocalFileSystem()
        )

    def init_local_path(self):
        pass


def write_rows(folder, epochs):
    with open(os.path.join(folder, "result.json"), "w") as fh:
        for e in epochs:
            fh.write(json.dumps({"epoch": e}) + "\n")


def read_epochs(folder):
    with open(os.path.join(folder, "result.json")) as fh:
        return [json.loads(line)["epoch"] for line in fh if line.strip()]


def restart(cb, trial, epochs_after):
    """A retried trial: the logger starts it again and it reports from its checkpoint on."""
    cb.log_trial_start(trial)
    for e in epochs_after:
        cb.log_trial_result(0, trial, {"epoch": e})
    cb.log_trial_end(trial)


def test_ray_own_logger_drops_rows_the_storage_copy_lacks(tmp_path):
    """The upstream behaviour this module works around, ray-project/ray#41668 (if this
    fails, Ray fixed it: drop ald_tune.sweeps.result_logs)."""
    trial = FakeTrial(tmp_path)
    write_rows(trial.local_path, range(8))  # the driver wrote epochs 0-7
    write_rows(trial.storage.trial_fs_path, range(2))  # the last sync saw 0-1
    restart(JsonLoggerCallback(), trial, [6, 7, 8])  # retry from the checkpoint at 5
    assert read_epochs(trial.local_path) == [0, 1, 6, 7, 8]  # epochs 2-5 are gone


def test_a_retried_trial_keeps_every_row_the_driver_wrote(tmp_path):
    trial = FakeTrial(tmp_path)
    write_rows(trial.local_path, range(8))
    write_rows(trial.storage.trial_fs_path, range(2))
    restart(JsonLogger(), trial, [6, 7, 8])
    assert read_epochs(trial.local_path) == [0, 1, 2, 3, 4, 5, 6, 7, 6, 7, 8]


def test_a_new_driver_still_restores_the_rows_from_storage(tmp_path):
    """--resume on a new driver: no copy of its own, so storage's is the newest."""
    trial = FakeTrial(tmp_path)
    write_rows(trial.storage.trial_fs_path, range(4))
    restart(JsonLogger(), trial, [4, 5])
    assert read_epochs(trial.local_path) == [0, 1, 2, 3, 4, 5]


def test_progress_csv_keeps_its_rows_and_one_header(tmp_path):
    trial = FakeTrial(tmp_path)
    cb = CSVLogger()
    restart(cb, trial, [0, 1, 2])
    with open(os.path.join(trial.storage.trial_fs_path, "progress.csv"), "w") as fh:
        fh.write("epoch\n0\n")  # a stale sync
    restart(cb, trial, [2, 3])
    with open(os.path.join(trial.local_path, "progress.csv")) as fh:
        assert fh.read().split() == ["epoch", "0", "1", "2", "2", "3"]


@pytest.mark.parametrize("kind", [JsonLoggerCallback, CSVLoggerCallback])
def test_every_sweep_passes_both_so_tune_adds_no_default_of_that_kind(kind):
    assert sum(isinstance(cb, kind) for cb in result_loggers()) == 1


def test_a_state_file_cut_short_is_put_back_from_its_last_good_copy(tmp_path):
    import json

    from ald_tune.sweeps.result_logs import StateBackup, repair_experiment_state

    state = tmp_path / "experiment_state-2026-12-02_00-00-00.json"
    state.write_text(json.dumps({"trial_data": [1, 2, 3]}))
    backup = StateBackup(str(tmp_path))
    backup.on_step_end(0, [])
    state.write_text('{"trial_data": [1, 2, 3, 4]')  # the driver was killed mid-write
    backup.on_step_end(1, [])  # a state that does not parse is not copied
    with pytest.warns(RuntimeWarning, match="cut short"):
        assert repair_experiment_state(str(tmp_path)) == [str(state)]
    assert json.loads(state.read_text()) == {"trial_data": [1, 2, 3]}
    assert repair_experiment_state(str(tmp_path)) == []  # whole: nothing to do
