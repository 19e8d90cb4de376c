"""The console progress of a sweep: one line per trial result, from a Tune callback."""

from __future__ import annotations

import io
from types import SimpleNamespace

from ald_tune.sweeps.progress import ProgressCallback, error_summary


def test_one_line_per_result_and_per_trial_end():
    out = io.StringIO()
    cb = ProgressCallback(stream=out)
    grid = SimpleNamespace(
        trial_id="t_1",
        config={"n_z": 8, "seed": 0},
        last_result={"final_n_z": 8, "training_iteration": 3},
    )
    ald = SimpleNamespace(trial_id="t_2", config={"seed": 1}, last_result={})
    cb.on_trial_result(
        0,
        [],
        grid,
        {
            "epoch": 2,
            "n_z": 8,
            "recon_loss": 20.5,
            "fid_gen": float("nan"),
            "decision": "fixed n_z=8",
        },
    )
    cb.on_trial_result(0, [], ald, {"epoch": 0, "n_z": 64, "silhouette": 0.3})
    cb.on_trial_complete(0, [], grid)
    cb.on_trial_error(0, [], ald)
    lines = [x for x in out.getvalue().splitlines() if not x.startswith("sweep: ")]
    assert lines[0].startswith("[t_1 nz=8 seed=0] epoch    2  n_z   8  recon   20.500  fid_gen nan")
    assert lines[0].endswith("| fixed n_z=8") and lines[1].startswith("[t_2 ald seed=1]")
    assert lines[2] == "[t_1] done: final n_z 8 after 3 epochs"
    assert lines[3].startswith("[t_2] FAILED: no error text (see the trial's folder)")
    quiet = io.StringIO()
    ProgressCallback(verbose=False, stream=quiet).on_trial_complete(0, [], grid)
    assert quiet.getvalue() == ""


def test_the_status_line_counts_trials_and_says_the_best_and_the_eta(monkeypatch):
    """Without epoch lines: one status line per trial start and end (results print one at
    most every ``every_s``): done, running, pending, best so far, elapsed, ETA."""
    from ald_tune.sweeps import progress

    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    out = io.StringIO()
    cb = ProgressCallback(
        stream=out, epoch_lines=False, name="grid-x", planned=4, epochs=10, every_s=30
    )

    def trial(status, epochs=0, metric=None, n_z=None):
        last = {"training_iteration": epochs, "neg_elbo": metric, "n_z": n_z} if epochs else {}
        return SimpleNamespace(trial_id="t", status=status, config={}, last_result=last)

    a, b = trial("RUNNING"), trial("PENDING")
    cb.on_trial_start(0, [a, b], a)
    assert out.getvalue().splitlines()[-1] == (
        "grid-x: 0/4 done, 1 running, 3 pending; 0:00 elapsed"
    )
    now[0] = 110.0
    a, b = trial("RUNNING", 5, 30.5, 8), trial("RUNNING", 5, 12.25, 4)
    cb.on_trial_result(0, [a, b], a, {})
    assert out.getvalue().count("\n") == 1  # a result prints no status within every_s
    now[0] = 140.0
    cb.on_trial_result(0, [a, b], a, {})  # 40 s: 10 of the 40 planned epochs in 40 s
    assert out.getvalue().splitlines()[-1] == (
        "grid-x: 0/4 done, 2 running, 2 pending; best neg_elbo 12.25 (n_z 4); "
        "0:40 elapsed, ETA 2:00"
    )
    now[0] = 160.0
    a = trial("TERMINATED", 10, 30.0, 8)
    cb.on_trial_complete(0, [a, b], a)  # 15 of 40 epochs in 60 s: 100 s to go
    lines = out.getvalue().count("\n")
    cb.on_step_end(0, [a, b])  # the end's status line waits for a next start...
    assert out.getvalue().count("\n") == lines
    now[0] = 162.0
    cb.on_step_end(0, [a, b])  # ...turnover_s (2 s) at most
    assert out.getvalue().splitlines()[-1].endswith("1:02 elapsed, ETA 1:43")
    assert "1/4 done, 1 running, 2 pending" in out.getvalue().splitlines()[-1]
    assert progress.clock(3725) == "1:02:05"


def test_a_turnover_prints_one_status_line():
    """A trial's end and the next one's start, a moment apart: one line, saying both."""
    out = io.StringIO()
    cb = ProgressCallback(stream=out, epoch_lines=False, name="g", planned=3, epochs=4)
    done = SimpleNamespace(
        trial_id="t_1", status="TERMINATED", config={},
        last_result={"training_iteration": 4, "final_n_z": 8},
    )  # fmt: skip
    nxt = SimpleNamespace(trial_id="t_2", status="PENDING", config={}, last_result={})
    cb.on_trial_complete(0, [done, nxt], done)
    cb.on_trial_start(0, [done, nxt], nxt)
    cb.on_step_end(0, [done, nxt])
    cb.on_experiment_end([done, nxt])
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0] == "[t_1] done: final n_z 8 after 4 epochs"
    assert lines[1].startswith("g: 1/3 done, 1 running, 1 pending; 0:00 elapsed")
    cb.on_trial_complete(0, [done], done)  # the last trial: its line at the sweep's end
    cb.on_experiment_end([done])
    assert out.getvalue().splitlines()[-1].startswith("g: 1/3 done, 0 running")


TUNE_ERROR_FILE = """Failure # 1 (occurred at 2026-12-07_05-10-00)
ray::ImplicitFunc.train() (pid=7, ip=10.0.0.1, actor_id=ab, repr=train_trial)
  File "/x/ald_tune/engine/epochs.py", line 80, in fit
    raise FloatingPointError("loss is nan at epoch 12")
FloatingPointError: loss is nan at epoch 12
Failure # 2 (occurred at 2026-12-07_05-11-00)
ray::ImplicitFunc.train() (pid=8, ip=10.0.0.1, actor_id=ac, repr=train_trial)
  File "/x/torch/serialization.py", line 1, in load
    raise OSError("disk full")
OSError: disk full

"""


def test_a_failure_says_its_error_and_whether_ray_retries_it(tmp_path):
    """Tune calls on_trial_recover for a failure it retries and on_trial_error once no retry
    is left: each line names the latest error (the last line of Tune's error file)."""
    error = tmp_path / "error.txt"
    error.write_text(TUNE_ERROR_FILE)
    trial = SimpleNamespace(
        trial_id="t_3", config={}, last_result={}, status="RUNNING",
        num_failures=2, max_failures=1, error_file=str(error),
    )  # fmt: skip
    out = io.StringIO()
    cb = ProgressCallback(stream=out)
    cb.on_trial_recover(0, [trial], trial)
    cb.on_trial_error(0, [trial], trial)
    retry, failed = out.getvalue().splitlines()[:2]
    assert retry == (
        "[t_3] failed: OSError: disk full; Ray retries it from its last checkpoint "
        "(failure 2, tune.max_failures=1)"
    )
    assert failed == (
        "[t_3] FAILED: OSError: disk full (no retry left: tune.max_failures=1); "
        f"the whole traceback: {error}"
    )
    error.write_text("Failure # 1 (occurred at now)\nValueError: " + "x" * 500 + "\n")
    assert len(error_summary(trial)) == 300 and error_summary(trial).endswith("...")
