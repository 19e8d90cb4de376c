"""The training loop: a real ALD run on digits, checkpoints and exact resume."""

from __future__ import annotations

import json
import math
import os
import pickle

import pytest
import torch

from ald_tune.config.schema import load_config
from ald_tune.engine.checkpoint import load_checkpoint, save_checkpoint
from ald_tune.engine.trainer import Trainer, TrainingDivergedError
from ald_tune.errors import DataError
from ald_tune.testing.scripted import ScriptedController

TIMING = ("train_time_s", "eval_time_s", "cpu_time_s", "gpu_time_s")


def tiny_cfg(cache_dir, *extra):
    return load_config(
        "search_spaces/digits.yaml",
        overrides=[
            "train.epochs=12",
            "ald.window=6",
            "ald.patience=2",
            "model.hidden=[32, 32]",
            "ald.n_z_init=16",
            f"eval.cache_dir={cache_dir}",
            "eval.n_fid=50",
            "ald.final_share=0",  # exactly train.epochs long
            *extra,
        ],
    )


def strip(history):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in history]


def test_scripted_pruning_updates_n_z_everywhere(cache_dir):
    trainer = Trainer(
        tiny_cfg(cache_dir, "train.epochs=4", "ald.window=4"),
        controller=ScriptedController({1: 3, 2: 2}),
    )
    results = list(trainer)
    assert [r.record["n_z"] for r in results] == [16, 16, 13, 11]
    assert [r.n_z_next for r in results] == [16, 13, 11, 11]
    assert trainer.model.n_z == 11 and trainer.checkpoint()["n_z"] == 11
    assert results[-1].done and len(trainer.history) == 4
    for r in results:  # every epoch counts the units in use (the rule's threshold) ...
        assert r.record["units_in_use"] in range(r.record["n_z"] + 1)
        assert r.record["gpu_time_s"] == 0.0  # ... and times the GPU (none here)
    if torch.cuda.is_available():  # on a GPU machine: CUDA events time the epoch
        gpu = list(Trainer(tiny_cfg(cache_dir, "train.epochs=2", "train.device=cuda")))
        assert all(r.record["gpu_time_s"] > 0 for r in gpu)


@pytest.mark.slow
def test_ald_run_end_to_end_writes_outputs(cache_dir, tmp_path):
    # This tiny net's posterior collapses for its first 16 epochs at beta 1 (no unit in
    # use: the first cut waits, n_z stays); at beta 0.5 units are in use from epoch 8.
    trainer = Trainer(tiny_cfg(cache_dir, "train.epochs=16", "ald.window=8", "train.beta=0.5"))
    results = list(trainer)
    assert len(results) == 16 and trainer.model.n_z < 16
    for r in results:
        assert all(math.isfinite(r.record[k]) for k in ("recon_loss", "fid_gen", "fid_recon", "kl"))
        assert -1 <= r.record["silhouette"] <= 1
    paths = trainer.save_outputs(str(tmp_path))
    summary = json.loads(open(paths["history"]).read())
    assert summary["final_n_z"] == trainer.model.n_z and summary["trial_epochs"] == 16
    assert summary["fid_extractor"] == "classifier" and len(summary["decisions"]) == 16
    assert [e["n_z"] for e in summary["epochs"]][0] == 16
    for key in ("samples", "reconstructions", "model"):
        assert os.path.getsize(paths[key]) > 100
    from ald_tune.engine.artifacts import load_model

    model = load_model(paths["model"])
    assert model.n_z == trainer.model.n_z
    torch.testing.assert_close(
        model.state_dict(), {k: v.cpu() for k, v in trainer.model.state_dict().items()}
    )


@pytest.mark.slow
@pytest.mark.parametrize("stop_after", [5, 8])
def test_resume_from_checkpoint_is_exact(cache_dir, tmp_path, stop_after):
    full = Trainer(tiny_cfg(cache_dir))
    list(full)
    part = Trainer(tiny_cfg(cache_dir))
    for r in part:
        if r.epoch + 1 == stop_after:
            break
    path = save_checkpoint(part.checkpoint(), tmp_path / "checkpoint.pt")
    del part
    resumed = Trainer.from_checkpoint(load_checkpoint(path))
    assert resumed.epoch == stop_after
    list(resumed)
    assert [r["n_z"] for r in resumed.history] == [r["n_z"] for r in full.history]
    assert strip(resumed.history) == strip(full.history)
    assert resumed.decisions == full.decisions
    assert resumed.model.n_z == full.model.n_z
    for a, b in zip(resumed.model.state_dict().values(), full.model.state_dict().values()):
        assert torch.equal(a, b)


def test_checkpoint_loads_without_pickle(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    bad = tmp_path / "evil.pt"
    with open(bad, "wb") as fh:
        pickle.dump({"schema_version": 1, "x": Evil()}, fh)
    with pytest.raises(DataError, match="cannot be loaded safely"):
        load_checkpoint(bad)
    with pytest.raises(DataError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing.pt")


def test_nan_loss_fails_with_clear_message(cache_dir):
    trainer = Trainer(tiny_cfg(cache_dir, "train.lr=1e9", "train.epochs=4", "ald.window=4"))
    with pytest.raises(
        TrainingDivergedError, match=r"loss became .* at epoch \d+.*lower train.lr"
    ) as e:
        list(trainer)
    # Ray pickles a trial's error: it comes back with the same message, not a doubled one
    assert str(pickle.loads(pickle.dumps(e.value))) == str(e.value)
    assert str(e.value).count("The last good checkpoint is kept.") == 1


def test_a_late_stop_extends_the_run_so_the_final_size_trains_long_enough():
    from ald_tune.testing.scripted import ScriptedTrainer

    # 12 epochs, first decision at epoch 9 = the budget's last: the stop leaves 2 epochs;
    # final_share 0.25 asks for 3, so the run goes on to epoch 12 (13 epochs).
    cfg = load_config(
        "search_spaces/digits.yaml",
        overrides=[
            "train.epochs=12",
            "ald.window=10",
            "ald.patience=2",
            "ald.settle=0",
            "ald.final_share=0.25",
        ],
    )
    trainer = ScriptedTrainer(cfg)
    results = list(trainer)
    assert trainer.controller.state.stop_epoch == 9 and len(results) == 13
    assert len(list(ScriptedTrainer(cfg.replace(ald={"final_share": 0.0})))) == 12


def test_a_process_that_ran_other_trials_trains_the_same_numbers(cache_dir):
    # Ray Tune reuses a worker process for trial after trial (tune.reuse_actors): a trial
    # must not depend on what ran before it in the process.
    cfg = tiny_cfg(cache_dir)

    def run(fixed_n_z=None):
        t = Trainer(cfg, fixed_n_z=fixed_n_z)
        for _ in t:
            pass
        return strip(t.history)

    first = run(4)
    run()  # an ALD run in between (it prunes, so its optimizer and model change size)
    assert run(4) == first


def test_the_test_double_keeps_the_trainers_checkpoint_and_summary_layouts(cache_dir):
    """ScriptedTrainer inherits the bookkeeping (EpochIterator): the files a sweep writes
    for a scripted trial have the real trainer's keys, so fast tests see real layouts."""
    from ald_tune.testing.scripted import ScriptedTrainer

    cfg = tiny_cfg(cache_dir, "train.epochs=4", "ald.window=4")
    real, double = Trainer(cfg), ScriptedTrainer(cfg)
    list(real), list(double)
    assert set(double.checkpoint()) == set(real.checkpoint()) - {"stats"}
    assert set(double.summary()) == set(real.summary())
    assert double.decisions[-1].keys() == real.decisions[-1].keys()
    assert real.done and double.done and len(real.history) == len(double.history) == 4
