"""``ald-tune train``: one run without Ray, its files, its MLflow run."""

from __future__ import annotations

import json

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
        (["--fixed-nz", "0"], "--fixed-nz must be a positive int"),
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
