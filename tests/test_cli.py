"""The README's commands, run through the CLI's main()."""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from ald_tune.cli.main import main

TINY = ["--set", "train.epochs=6", "--set", "ald.window=4", "--set", "ald.patience=2",
        "--set", "model.hidden=[32, 32]", "--set", "ald.n_z_init=10", "--set", "eval.n_fid=40"]


def test_train_writes_history_images_and_model(tmp_path, cache_dir, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--space", "search_spaces/digits.yaml", *TINY,
               "--set", f"eval.cache_dir={cache_dir}", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert text.count("epoch ") >= 6 and "final n_z = " in text
    hist = json.loads((out / "history.json").read_text())
    assert len(hist["epochs"]) == 6 and hist["final_n_z"] <= 10 and hist["wall_time_s"] > 0
    assert all("reason" in d for d in hist["decisions"])
    for name in ("samples.png", "reconstructions.png", "model.safetensors", "checkpoint.pt"):
        assert (out / name).stat().st_size > 100
    # --resume on a finished run trains nothing more and keeps the result.
    assert main(["train", "--resume", str(out), "--out", str(out)]) == 0


def test_fixed_nz_baseline(tmp_path, cache_dir):
    out = tmp_path / "fixed"
    assert main(["train", *TINY, "--set", f"eval.cache_dir={cache_dir}", "--fixed-nz", "3",
                 "--out", str(out)]) == 0
    hist = json.loads((out / "history.json").read_text())
    assert hist["mode"] == "fixed" and {e["n_z"] for e in hist["epochs"]} == {3}


@pytest.mark.parametrize("args,needle", [
    (["--set", "train.epochs=0"], "'epochs' parameter of TrainConfig must be an int in [1, inf). Got 0"),
    (["--space", "nope.yaml"], "search-space file 'nope.yaml' does not exist"),
    (["--set", "data.name=npz", "--set", "data.path=/no/such.npz"], "/no/such.npz"),
    (["--fixed-nz", "0"], "--fixed-nz must be a positive int"),
])
def test_bad_input_exits_2_with_a_clear_message(args, needle, capsys, tmp_path):
    assert main(["train", *args, "--out", str(tmp_path)]) == 2
    assert needle in capsys.readouterr().err


def test_ui_serves_the_default_store_on_loopback_and_sigterm_stops_it_all(tmp_path):
    import psutil

    from conftest import free_port
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen([sys.executable, "-m", "ald_tune.cli", "ui", "--run-dir", str(tmp_path),
                             "--port", str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)

    def server_pids():
        return [p.pid for p in psutil.process_iter(["cmdline"])
                if str(port) in " ".join(p.info["cmdline"] or []) and p.pid != proc.pid]
    try:
        deadline, ok = time.time() + 90, False
        while time.time() < deadline and not ok:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    ok = r.status == 200
            except OSError:
                time.sleep(1)
        assert ok, "ald-tune ui did not answer on 127.0.0.1"
        assert server_pids(), "no server process found"
        proc.send_signal(15)                      # SIGTERM to ald-tune ui alone
        proc.wait(timeout=40)
        deadline = time.time() + 20
        while server_pids() and time.time() < deadline:
            time.sleep(0.5)
        assert not server_pids(), "the MLflow server outlived ald-tune ui"
    finally:
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)


# -- what `ald-tune` itself answers, before anything trains -------------------------------------

def test_version(capsys):
    from ald_tune import __version__
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"ald-tune {__version__}"


@pytest.mark.parametrize("command", [["train"], ["ald"], ["grid"], ["compare"],
                                     ["optuna", "--mode", "grid"]])
def test_print_config_prints_the_resolved_config_and_starts_nothing(command, capsys, monkeypatch):
    import yaml

    from ald_tune.sweeps import tuner as tuners
    from ald_tune.config.schema import load_config

    def tripwire(*a, **k):
        raise AssertionError("--print-config started Ray")
    monkeypatch.setattr(tuners, "init_ray", tripwire)
    args = ["--space", "search_spaces/digits.yaml", "--preset", "paper", "--set", "train.epochs=7",
            "--set", "grid.n_z=[3, 5]"]
    assert main([*command, *args, "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    want = load_config("search_spaces/digits.yaml", "paper", ["train.epochs=7", "grid.n_z=[3, 5]"])
    assert printed == want.to_dict() and printed["ald"]["rule"] == "paper"


def test_compare_help_is_its_own(capsys):
    with pytest.raises(SystemExit) as e:
        main(["compare", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and out.startswith("usage: ald-tune compare")
    assert "ald_tune/run.py" not in out and "{compare,ald,grid}" not in out
    assert "--rules" in out and "--no-fixed" in out and "--print-config" in out


@pytest.mark.parametrize("argv, pattern", [
    (["ald", "--scheduler", "asha"], r"--scheduler does nothing for ald sweeps.*Fix: drop"),
    (["compare", "--no-such-flag"], r"unrecognized arguments: --no-such-flag"),
])
def test_flags_that_do_nothing_are_refused(argv, pattern, capsys, tmp_path):
    try:
        rc = main([*argv, "--run-dir", str(tmp_path)])
    except SystemExit as e:  # argparse's own refusal
        rc = e.code
    assert rc == 2 and re.search(pattern, capsys.readouterr().err, re.S)
    assert not (tmp_path / "ray").exists()


@pytest.mark.parametrize("argv, pattern", [
    (["ald", "--out", "x"], r"--out applies to the compare mode, not ald"),
    (["ald", "--no-fixed"], r"--no-fixed applies to the compare mode, not ald"),
    (["grid", "--out", "x"], r"--out applies to the compare mode, not grid"),
    (["ald", "--scheduler", "asha"], r"--scheduler applies to the grid and compare modes, not ald"),
])
def test_run_py_refuses_flags_of_other_modes(argv, pattern, capsys, tmp_path):
    from ald_tune.cli import compare as run
    assert run.main([*argv, "--run-dir", str(tmp_path)]) == 2
    assert re.search(pattern, capsys.readouterr().err)


def test_ui_runs_a_server_without_job_runner_and_prints_the_runs_view_link(tmp_path, monkeypatch,
                                                                         capsys):
    from mlflow import MlflowClient

    db = tmp_path / "mlflow.db"
    exp = MlflowClient(f"sqlite:///{db}").create_experiment("ald-tune-digits")
    seen = {}

    class FakeServer:
        pid = 0

        def __init__(self, cmd, env, **kw):
            seen.update(cmd=cmd, env=env, kw=kw)

        def wait(self):
            return 0

        def poll(self):
            return 0
    monkeypatch.setattr(subprocess, "Popen", FakeServer)
    assert main(["ui", "--run-dir", str(tmp_path), "--port", "5077"]) == 0
    cmd = seen["cmd"]
    assert cmd[2:4] == ["mlflow", "server"] and cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert seen["env"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert seen["kw"]["start_new_session"] is True
    out = capsys.readouterr().out
    assert (f"ald-tune-digits: http://127.0.0.1:5077/#/experiments/{exp}"
            "?workflowType=machine_learning") in out


def test_train_with_a_tracking_uri_logs_one_run_like_a_trial(tmp_path, cache_dir, capsys):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = tmp_path / "run"
    assert main(["train", *TINY, "--set", f"eval.cache_dir={cache_dir}", "--set",
                 "eval.image_every=2", "--out", str(out), "--tracking-uri", uri,
                 "--checkpoint-every", "3"]) == 0
    c = MlflowClient(uri)
    (run,) = c.search_runs([c.get_experiment_by_name("ald-tune-digits").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["ald_tune.runner"] == "train"
    assert run.data.tags["ald_tune.kind"] == "ald" and run.data.params["train.epochs"] == "6"
    nz = c.get_metric_history(run.info.run_id, "n_z")
    assert sorted(m.step for m in nz) == list(range(6))
    hist = json.loads((out / "history.json").read_text())
    assert [m.value for m in sorted(nz, key=lambda m: m.step)] == [e["n_z"] for e in hist["epochs"]]
    assert run.data.tags["ald_tune.final_n_z"] == str(hist["final_n_z"])
    files = {a.path for a in c.list_artifacts(run.info.run_id)}
    assert {"history.json", "model.safetensors", "history.png", "images"} <= files
    steps = {a.path for a in c.list_artifacts(run.info.run_id, "images")}
    assert len(steps) >= 6  # samples and reconstructions at steps 0, 2, 4 (and 5)
    assert f"MLflow run {run.info.run_id}" in capsys.readouterr().out


def test_optuna_command_stores_the_study_for_optuna_dashboard(tmp_path, cache_dir, capsys):
    import optuna

    storage = f"sqlite:///{tmp_path}/optuna.db"
    assert main(["optuna", "--mode", "grid", *TINY, "--set", f"eval.cache_dir={cache_dir}",
                 "--set", "grid.n_z=[2, 4]", "--storage", storage, "--study-name", "g",
                 "--no-tracking"]) == 0
    study = optuna.load_study(study_name="g", storage=storage)
    assert sorted(t.params["n_z"] for t in study.trials) == [2, 4]
    assert all(t.state.name == "COMPLETE" and t.user_attrs["final_n_z"] == t.params["n_z"]
               for t in study.trials)
    assert f"open it with `optuna-dashboard {storage}`" in capsys.readouterr().out


def readme_block(heading: str) -> str:
    """The first ```python block after ``heading`` in the README."""
    text = open(os.path.join(os.path.dirname(os.path.dirname(__file__)), "README.md")).read()
    rest = text[text.index(heading):]
    return rest[rest.index("```python") + len("```python"):rest.index("```", rest.index("```python") + 3)]


def test_the_readme_optuna_snippet_runs_as_written_and_closes_its_runs(tmp_path, cache_dir,
                                                                     monkeypatch):
    """The snippet, executed as written, on tiny settings (load_config adds them)."""
    from mlflow import MlflowClient

    import ald_tune.config.schema
    real = ald_tune.config.schema.load_config
    tiny = ["train.epochs=4", "ald.window=4", "ald.patience=2", "ald.n_z_init=8",
            "model.hidden=[16]", "eval.n_fid=40", f"eval.cache_dir={cache_dir}", "grid.n_z=[2, 4]"]
    monkeypatch.setattr(ald_tune.config.schema, "load_config",
                        lambda path, preset=None, overrides=(): real(path, preset, [*tiny, *overrides]))
    monkeypatch.chdir(tmp_path)
    os.symlink(os.path.join(os.path.dirname(os.path.dirname(__file__)), "search_spaces"),
               tmp_path / "search_spaces")
    exec(compile(readme_block("### Plain Optuna"), "README.md", "exec"), {})
    c = MlflowClient("sqlite:///" + str(tmp_path / "runs" / "mlflow.db"))
    runs = c.search_runs([c.get_experiment_by_name("ald-tune-digits").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 2 and len(runs) == 2 + 3 + 2
    assert all(r.info.status == "FINISHED" for r in runs)
