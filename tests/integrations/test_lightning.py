"""The Lightning callback prunes a real LightningModule, keeps training it and resumes exactly."""

from __future__ import annotations

import csv
import glob
import importlib.util
import os

import pytest
import torch

from ald_tune.errors import ConfigError

# Lightning itself is imported by the tests that run (lit_vae), not at collection.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("lightning") is None, reason="Lightning is not installed"
)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    from lit_vae import fit

    root = tmp_path_factory.mktemp("lightning_full")
    return (root, *fit(root))


def _latent(module):
    return [module.mu_head.weight, module.logvar_head.weight, module.dec_in.weight]


def test_the_callback_prunes_keeps_training_and_logs_n_z(uninterrupted):
    from lit_vae import EPOCHS

    root, module, trainer, pruning = uninterrupted
    steps = pruning.pruner.steps
    path = [s.n_z for s in steps]
    assert path[0] == 16 and pruning.pruner.stopped and 2 <= path[-1] <= 5, path
    stop = next(s for s in steps if s.stop)
    assert steps[-1].end_run and trainer.current_epoch < EPOCHS  # ended by the rule
    assert module.mu_head.out_features == path[-1]
    # The checkpoint of the stop epoch holds the weights right after the last prune;
    # the resized layers trained on from there, with optimizer state of their shape.
    at_stop = torch.load(root / "ckpt" / f"epoch={stop.epoch}.ckpt", weights_only=False)
    opt = trainer.optimizers[0]
    for name, p in zip(("mu_head", "logvar_head", "dec_in"), _latent(module)):
        before = at_stop["state_dict"][f"{name}.weight"]
        assert before.shape == p.shape and not torch.equal(before, p.detach())
        assert opt.state[p]["exp_avg"].shape == p.shape
    with open(glob.glob(str(root / "logs" / "*" / "metrics.csv"))[0]) as f:
        logged = [r for r in csv.DictReader(f) if r.get("ald/n_z")]
    assert [float(r["ald/n_z"]) for r in logged] == [float(n) for n in path]
    removed = sum(float(r["ald/units_removed"]) for r in logged)
    assert removed - sum(float(r["ald/units_added"]) for r in logged) == 16 - path[-1]


@pytest.mark.parametrize("resume_after", [9, 15])
def test_a_resumed_fit_follows_the_same_n_z_path(uninterrupted, tmp_path, resume_after):
    from lit_vae import fit

    root, full_module, _, full = uninterrupted
    ckpt = root / "ckpt" / f"epoch={resume_after - 1}.ckpt"
    saved = torch.load(ckpt, weights_only=False)["state_dict"]["mu_head.weight"].shape[0]
    assert saved < 16  # the module must be cut before its weights load
    module, _, pruning = fit(tmp_path, ckpt_path=str(ckpt))
    assert [s.n_z for s in pruning.pruner.steps] == [s.n_z for s in full.pruner.steps]
    assert [s.units for s in pruning.pruner.steps] == [s.units for s in full.pruner.steps]
    for a, b in zip(module.state_dict().values(), full_module.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_a_module_that_breaks_the_protocol_is_refused_before_training(tmp_path):
    import lightning.pytorch as pl
    from lit_vae import LitVAE, loaders

    from ald_tune.integrations.lightning import ALDPruning

    class NoHeads(LitVAE):
        def __init__(self) -> None:
            super().__init__()
            del self.mu_head

    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        callbacks=[ALDPruning()],
        logger=False,
        enable_progress_bar=False,
        default_root_dir=str(tmp_path),
    )
    with pytest.raises(ConfigError, match=r"NoHeads has no layer 'mu_head' \(mu\)"):
        trainer.fit(NoHeads(), *loaders())
    assert not os.path.exists(tmp_path / "checkpoints")
