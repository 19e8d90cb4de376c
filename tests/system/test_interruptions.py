"""Ctrl-C, as a user presses it (SIGINT to the command's process group): statuses tell the
truth, the message says how to resume, and the resume completes with nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT

SPACE = os.path.join(ROOT, "search_spaces", "digits.yaml")
ALD_TUNE = [sys.executable, "-m", "ald_tune.cli"]
#: A small net: these tests check what a signal does to a run, not what the run learns.
SMALL = ["--set", "model.hidden=[64, 64]"]


def start(argv: list[str], cwd) -> subprocess.Popen:
    """The command as a terminal starts it in the foreground: SIGINT at its default. A test
    runner that a script started in the background (``make test &``) ignores SIGINT, and a
    command it starts would inherit that: ``train`` then runs to its end through Ctrl-C
    (measured: SigIgn had SIGINT set in the train process under ``nohup make test &``). A
    handler set from Python is reset to the default at exec; the runner's own comes back."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(
            [*ALD_TUNE, *argv],
            cwd=str(cwd),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    finally:
        signal.signal(signal.SIGINT, before if before is not None else signal.SIG_DFL)


def read_epochs(proc: subprocess.Popen, lines: int, timeout: float, trials: int = 0) -> list[str]:
    """Read the output until ``lines`` epoch lines were printed, ``[trial ...] epoch`` lines
    from ``trials`` trials among them (a sweep's second trial may start seconds after the
    first on a loaded machine: both must have started when the signal comes)."""
    seen, text, deadline = 0, [], time.monotonic() + timeout
    started: set[str] = set()
    for line in proc.stdout:  # type: ignore[union-attr]
        text.append(line)
        seen += "epoch" in line
        if line.startswith("[") and "] epoch" in line:
            started.add(line[1:].split()[0].rstrip("]"))
        if (seen >= lines and len(started) >= trials) or time.monotonic() > deadline:
            break
    return text


def press_ctrl_c_after(
    proc: subprocess.Popen, lines: int, timeout: float = 300, trials: int = 0
) -> str:
    """Read the output until ``lines`` epoch lines were printed (from ``trials`` trials),
    then SIGINT the group."""
    text = read_epochs(proc, lines, timeout, trials)
    state = signal_state(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)
    rest, _ = proc.communicate(timeout=240)
    # what a failure needs to say: was the command still running, and did it take SIGINT
    return "".join(text) + rest + f"\n[test: SIGINT sent after {len(text)} lines; {state}]\n"


def signal_state(pid: int) -> str:
    """Whether ``pid`` is alive and ignores or catches SIGINT (from /proc), for messages.
    By hand: psutil (a test extra) reports a process's state but not its signal masks."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            fields = dict(line.split(":", 1) for line in fh if ":" in line)
    except OSError:
        return "the command had already exited"
    bit = 1 << (signal.SIGINT - 1)
    ignored, caught = (bool(int(fields[k].strip(), 16) & bit) for k in ("SigIgn", "SigCgt"))
    return f"state {fields['State'].strip()}, SIGINT ignored {ignored}, caught {caught}"


@pytest.mark.slow
def test_ctrl_c_on_a_sweep_marks_its_runs_killed_and_resume_completes(tmp_path):
    from mlflow import MlflowClient

    args = [
        "ald",
        "--verbose",  # a line per epoch: the test signals after so many
        "--space",
        SPACE,
        "--run-dir",
        str(tmp_path / "runs"),
        "--name",
        "cut",
        "--set",
        "train.epochs=150",
        "--set",
        "ald.final_share=0",  # exactly 150 epochs
        "--set",
        "ald.window=4",
        "--set",
        "ald.patience=2",
        "--set",
        "eval.n_fid=40",
        "--set",
        "tune.num_samples=2",
        "--set",
        "tune.checkpoint_min_s=0",
        *SMALL,
    ]
    proc = start(args, tmp_path)
    out = press_ctrl_c_after(proc, 60, trials=2)
    assert proc.returncode == 130, out[-3000:]
    assert "sweep cut interrupted" in out and "--resume --name cut" in out, out[-3000:]
    assert "Traceback" not in out
    c = MlflowClient(f"sqlite:///{tmp_path}/runs/mlflow.db")
    exp = c.get_experiment_by_name("ald-tune-digits").experiment_id
    (parent,) = [r for r in c.search_runs([exp]) if r.info.run_name == "cut"]
    children = [
        r
        for r in c.search_runs([exp])
        if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    ]
    assert parent.info.status == "KILLED" and len(children) == 2
    assert {r.info.status for r in children} == {"KILLED"}

    done = subprocess.run(
        [*ALD_TUNE, *args, "--resume"],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = c.search_runs([exp])
    assert [r.info.run_name for r in runs].count("cut") == 1  # no second parent
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 2 and {r.info.status for r in children} == {"FINISHED"}
    assert c.get_run(parent.info.run_id).info.status == "FINISHED"
    for child in children:
        steps = [m.step for m in c.get_metric_history(child.info.run_id, "n_z")]
        assert sorted(steps) == list(range(150))  # every epoch once


@pytest.mark.slow
def test_ctrl_c_on_train_says_how_to_resume_and_the_resume_finishes(tmp_path, cache_dir):
    out_dir = tmp_path / "run"
    args = [
        "train",
        "--space",
        SPACE,
        "--out",
        str(out_dir),
        "--set",
        "train.epochs=60",
        "--set",
        "ald.final_share=0",  # exactly 60 epochs
        "--set",
        "ald.window=4",
        "--set",
        "eval.n_fid=40",
        "--set",
        f"eval.cache_dir={cache_dir}",
        "--checkpoint-every",
        "5",
        *SMALL,
    ]
    proc = start(args, tmp_path)
    out = press_ctrl_c_after(proc, 12)
    assert proc.returncode == 130, out[-3000:]
    assert "ald-tune train: interrupted at epoch" in out and "Traceback" not in out
    assert f"Resume with `ald-tune train --resume {out_dir}`" in out
    done = subprocess.run(
        [*ALD_TUNE, "train", "--resume", str(out_dir)],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    import json

    hist = json.loads((out_dir / "history.json").read_text())
    assert [e["epoch"] for e in hist["epochs"]] == list(range(60))


def send_sigterm_after(
    proc: subprocess.Popen, lines: int, group: bool, timeout=300
) -> tuple[str, float]:
    """Read the output until ``lines`` epoch lines (of both trials), then SIGTERM the driver alone
    (``kill PID``, Kubernetes) or its whole process group (``timeout``; systemd and Slurm
    signal every process too, Ray's own with them). Returns the output and the seconds from
    the signal to the end."""
    text = read_epochs(proc, lines, timeout, trials=2)
    t0 = time.monotonic()
    if group:
        os.killpg(proc.pid, signal.SIGTERM)
    else:
        proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=240)
    return "".join(text) + rest, time.monotonic() - t0


@pytest.mark.slow
@pytest.mark.parametrize("group", [False, True], ids=["driver", "process-group"])
def test_sigterm_on_a_sweep_ends_as_ctrl_c_does_143_and_resume_completes(group, tmp_path):
    from mlflow import MlflowClient

    args = [
        "ald",
        "--verbose",  # a line per epoch: the test signals after so many
        "--space",
        SPACE,
        "--run-dir",
        str(tmp_path / "runs"),
        "--name",
        "term",
        "--set",
        "train.epochs=60",
        "--set",
        "ald.final_share=0",  # exactly 60 epochs
        "--set",
        "ald.window=4",
        "--set",
        "ald.patience=2",
        "--set",
        "eval.n_fid=40",
        "--set",
        "tune.num_samples=2",
        "--set",
        "tune.checkpoint_min_s=0",
        *SMALL,
    ]
    proc = start(args, tmp_path)
    out, seconds = send_sigterm_after(proc, 16, group)
    assert proc.returncode == 143, out[-3000:]
    # Before: Ray's handler aborted at once (-6), or a lost cluster held the driver 60 s (1).
    assert seconds < 60, f"{seconds:.0f} s from the signal to the end"
    assert "SIGTERM: " in out and "sweep term interrupted" in out, out[-3000:]
    assert "--resume --name term" in out and "Traceback" not in out, out[-3000:]
    assert "SIGTERM received" not in out  # Ray's abort handler did not run
    c = MlflowClient(f"sqlite:///{tmp_path}/runs/mlflow.db")
    exp = c.get_experiment_by_name("ald-tune-digits").experiment_id
    runs = c.search_runs([exp])
    assert {r.info.status for r in runs} == {"KILLED"}, [
        (r.info.run_name, r.info.status) for r in runs
    ]
    (parent,) = [r for r in runs if r.info.run_name == "term"]
    assert len(runs) == 3  # the parent and two trials

    done = subprocess.run(
        [*ALD_TUNE, *args, "--resume"],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = c.search_runs([exp])
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}
    for child in runs:
        if child.info.run_id != parent.info.run_id:
            steps = [m.step for m in c.get_metric_history(child.info.run_id, "n_z")]
            assert sorted(steps) == list(range(60))  # every epoch once
