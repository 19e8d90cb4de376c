"""``ald-tune train``: one run without Ray, its files, its MLflow run."""

from __future__ import annotations

import json
import re

import pytest

from ald_tune.cli import train as train_cmd
from ald_tune.cli.main import main
from ald_tune.config.schema import load_config

TINY = [
    "--set",
    "train.epochs=6",
    "--set",
    "ald.window=4",
    "--set",
    "ald.patience=2",
    "--set",
    "model.hidden=[32, 32]",
    "--set",
    "ald.n_z_init=10",
    "--set",
    "ald.final_share=0",  # the run is exactly train.epochs long
    "--set",
    "eval.n_fid=40",
]


def test_train_writes_history_images_and_model(tmp_path, cache_dir, capsys):
    out = tmp_path / "run"
    rc = main(
        [
            "train",
            "--space",
            "search_spaces/digits.yaml",
            *TINY,
            "--set",
            f"eval.cache_dir={cache_dir}",
            "--out",
            str(out),
        ]
    )
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
    assert (
        main(
            [
                "train",
                *TINY,
                "--set",
                f"eval.cache_dir={cache_dir}",
                "--fixed-nz",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    hist = json.loads((out / "history.json").read_text())
    assert hist["mode"] == "fixed" and {e["n_z"] for e in hist["epochs"]} == {3}


@pytest.mark.parametrize(
    "args,needle",
    [
        (
            ["--set", "train.epochs=0"],
            "'epochs' parameter of TrainConfig must be an int in [1, 100000]. Got 0",
        ),
        (["--space", "nope.yaml"], "search-space file 'nope.yaml' does not exist"),
        (["--set", "data.name=npz", "--set", "data.path=/no/such.npz"], "/no/such.npz"),
        (["--fixed-nz", "0"], "--fixed-nz must be an int in [1, 4096]"),
        (
            ["--fixed-nz", "1000000000"],
            "--fixed-nz must be an int in [1, 4096] (as ald.n_z_init). Got 1000000000",
        ),
        (
            ["--checkpoint-every", "-1"],
            "--checkpoint-every must be an int >= 0 (0: only at the end). Got -1",
        ),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(args, needle, capsys, tmp_path):
    assert main(["train", *args, "--out", str(tmp_path)]) == 2
    assert needle in capsys.readouterr().err


def test_train_with_a_tracking_uri_logs_one_run_like_a_trial(tmp_path, cache_dir, capsys):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                *TINY,
                "--set",
                f"eval.cache_dir={cache_dir}",
                "--set",
                "eval.image_every=2",
                "--out",
                str(out),
                "--tracking-uri",
                uri,
                "--checkpoint-every",
                "3",
            ]
        )
        == 0
    )
    c = MlflowClient(uri)
    (run,) = c.search_runs([c.get_experiment_by_name("ald-tune-digits").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["ald_tune.runner"] == "train"
    assert run.data.tags["ald_tune.kind"] == "ald" and run.data.params["train.epochs"] == "6"
    assert run.data.tags["ald_tune.mode"] == "ald"  # built like every trial's tags
    nz = c.get_metric_history(run.info.run_id, "n_z")
    assert sorted(m.step for m in nz) == list(range(6))
    hist = json.loads((out / "history.json").read_text())
    assert [m.value for m in sorted(nz, key=lambda m: m.step)] == [e["n_z"] for e in hist["epochs"]]
    assert run.data.tags["ald_tune.final_n_z"] == str(hist["final_n_z"])
    files = {a.path for a in c.list_artifacts(run.info.run_id)}
    assert {"history.json", "model.safetensors", "history.png", "images"} <= files
    steps = {a.path for a in c.list_artifacts(run.info.run_id, "images")}
    assert len(steps) >= 6  # samples and reconstructions at steps 0, 2, 4 (and 5)
    # each logged grid says which model drew it in a band on top (the slider shows a step)
    import numpy as np
    from PIL import Image

    png = next(p for p in sorted(steps) if p.endswith(".png") and "samples" in p)
    img = np.array(Image.open(c.download_artifacts(run.info.run_id, png, str(tmp_path))))
    band = img[:12]
    assert band.min() < 100 and (band == 255).mean() > 0.7  # dark text on white
    printed = capsys.readouterr().out
    assert f"MLflow run {run.info.run_id}" in printed
    # the model as an MLflow logged model of the run, with MLflow's context tags on the run
    (model,) = c.search_logged_models([run.info.experiment_id])
    assert model.source_run_id == run.info.run_id and f"models:/{model.model_id}" in printed
    assert model.params["n_z"] == str(hist["final_n_z"]) and model.status.name == "READY"
    assert run.data.tags["mlflow.user"] and run.data.tags["mlflow.source.name"]


def test_the_checkpoint_writer_and_printer_are_callbacks(tmp_path, capsys):
    from ald_tune.engine.callbacks import Cadence
    from ald_tune.testing.scripted import ScriptedTrainer

    trainer = ScriptedTrainer(
        load_config(
            "search_spaces/digits.yaml",
            overrides=["train.epochs=5", "ald.window=4", "ald.final_share=0"],
        )
    )
    writer = train_cmd.CheckpointFile(str(tmp_path))
    trainer.fit([train_cmd.PrintEpochs(), writer], Cadence(checkpoint_every=2, image_every=0))
    assert writer.epoch == 4 and (tmp_path / "checkpoint.pt").exists()
    assert [line.split()[:2] for line in capsys.readouterr().out.splitlines()] == [
        ["epoch", str(e)] for e in range(5)
    ]


def test_a_loss_that_turns_nan_ends_in_one_line(tmp_path, cache_dir, capsys):
    out = tmp_path / "run"
    argv = ["train", *TINY, "--set", f"eval.cache_dir={cache_dir}", "--out", str(out)]
    assert main([*argv, "--set", "train.lr=1000000"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert re.search(r"ald-tune train: failed: loss became (nan|inf) at epoch 0", err), err
    assert "; no checkpoint was written yet. Fix: lower train.lr" in err
    assert "last good checkpoint is kept" not in err  # there is none


def test_a_diverging_run_is_marked_failed_and_keeps_its_last_good_checkpoint(
    tmp_path, cache_dir, capsys, monkeypatch
):
    from mlflow import MlflowClient

    from ald_tune.engine.checkpoint import load_checkpoint
    from ald_tune.engine.trainer import Trainer

    one_epoch = Trainer._train_one_epoch

    def lr_jumps_at_epoch_2(self, epoch, model, optimizer, order):
        if epoch == 2:  # as if the schedule jumped: the real loss turns NaN here
            for group in optimizer.param_groups:
                group["lr"] = 1e6
        return one_epoch(self, epoch, model, optimizer, order)

    monkeypatch.setattr(Trainer, "_train_one_epoch", lr_jumps_at_epoch_2)
    uri, out = f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "run"
    argv = ["train", *TINY, "--set", f"eval.cache_dir={cache_dir}", "--out", str(out)]
    assert main([*argv, "--checkpoint-every", "1", "--tracking-uri", uri]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert re.search(r"(loss|weights) became .* at epoch 2", err), err
    assert f"; its last checkpoint (epoch 1) is {out}/checkpoint.pt" in err
    assert "its MLflow run is marked FAILED" in err
    assert load_checkpoint(out)["epoch"] == 1  # the last good one, kept
    c = MlflowClient(uri)
    (run,) = c.search_runs([c.get_experiment_by_name("ald-tune-digits").experiment_id])
    assert run.info.status == "FAILED"


def test_debug_prints_the_traceback_of_the_users_code(tmp_path, capsys):
    argv = [
        "train",
        "--set",
        "model.factory=user_models:raises_value_error",
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 2
    plain = capsys.readouterr().err
    assert "Traceback" not in plain and "raised ValueError: no model for n_z=" in plain
    assert main([*argv, "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and 'user_models.py", line' in err
    assert err.rstrip().splitlines()[-1] == plain.rstrip()  # then the same one line


def test_sigterm_ends_a_run_as_ctrl_c_does_with_143(tmp_path, cache_dir, capsys, monkeypatch):
    """``kill PID`` on ``ald-tune train``: the line says how to resume, its MLflow run is
    KILLED, the exit code is 143."""
    import signal

    from mlflow import MlflowClient

    printed = train_cmd.PrintEpochs.on_epoch_end

    def print_then_sigterm(self, trainer, result):
        printed(self, trainer, result)
        if result.epoch == 3:
            signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(train_cmd.PrintEpochs, "on_epoch_end", print_then_sigterm)
    uri, out = f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "run"
    argv = ["train", *TINY, "--set", f"eval.cache_dir={cache_dir}", "--out", str(out)]
    assert main([*argv, "--tracking-uri", uri, "--checkpoint-every", "2"]) == 143
    err = capsys.readouterr().err
    assert "ald-tune train: SIGTERM: interrupted at epoch" in err and f"--resume {out}" in err
    c = MlflowClient(uri)
    (run,) = c.search_runs([c.get_experiment_by_name("ald-tune-digits").experiment_id])
    assert run.info.status == "KILLED" and (out / "checkpoint.pt").exists()


def test_print_config_and_bad_config_write_nothing(tmp_path, capsys, monkeypatch):
    """``--print-config`` prints and creates no run folder; nor does a config or data the
    run refuses (the folder is made once the config is known good, and removed again,
    empty, when the data are refused)."""
    out = tmp_path / "never"
    assert main(["train", "--print-config", "--out", str(out), "--set", "train.epochs=7"]) == 0
    assert "epochs: 7" in capsys.readouterr().out and not out.exists()
    assert main(["train", "--out", str(out), "--set", "train.epochs=8"]) == 2
    assert "window" in capsys.readouterr().err and not out.exists()
    # Data the run refuses once it reads them: the folder it made for the run goes again
    # (with no --out too: no empty runs/train-* folder is left behind).
    (tmp_path / "bad.npz").write_bytes(b"not an npz")
    bad = [*TINY, "--set", "data.name=npz", "--set", f"data.path={tmp_path / 'bad.npz'}"]
    assert main(["train", "--out", str(out), *bad]) == 2
    assert "bad.npz" in capsys.readouterr().err and not out.exists()
    (tmp_path / "kept").mkdir()
    assert main(["train", "--out", str(tmp_path / "kept"), *bad]) == 2
    assert (tmp_path / "kept").is_dir()  # a folder the user had stays
    monkeypatch.chdir(tmp_path)
    assert main(["train", *bad]) == 2
    assert not list((tmp_path / "runs").glob("train-*"))


def test_the_header_says_how_long_the_run_can_be(tmp_path):
    """A late stop extends the run by ``ald.final_share``: the header says so up front."""
    from ald_tune.engine.trainer import Trainer

    cfg = load_config(
        "search_spaces/digits.yaml",
        overrides=["train.epochs=24", "ald.window=6", "ald.final_share=0.5", "model.hidden=[8]"],
    )
    line = train_cmd._header(Trainer(cfg), str(tmp_path))
    assert "24 epochs (up to 36 after a late stop: ald.final_share=0.5)" in line
    fixed = train_cmd._header(Trainer(cfg, fixed_n_z=4), str(tmp_path))
    assert ", 24 epochs, " in fixed  # a fixed run is exactly as long as asked
