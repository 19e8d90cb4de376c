"""The README's commands, run through the CLI's main()."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from ald_tune.cli import main

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


def test_ui_serves_the_default_store_on_loopback(tmp_path):
    from conftest import free_port
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen([sys.executable, "-m", "ald_tune.cli", "ui", "--run-dir", str(tmp_path),
                             "--port", str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, ok = time.time() + 90, False
        while time.time() < deadline and not ok:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    ok = r.status == 200
            except OSError:
                time.sleep(1)
        assert ok, "ald-tune ui did not answer on 127.0.0.1"
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
