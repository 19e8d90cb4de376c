"""The Lightning callback prunes a real LightningModule, keeps training it and resumes exactly."""

from __future__ import annotations

import csv
import glob
import os

import pytest
import torch

pl = pytest.importorskip("lightning.pytorch")

from torch.utils.data import DataLoader, TensorDataset  # noqa: E402
from user_models import TabularVAE  # noqa: E402

from ald_tune.data.datasets import load_dataset, train_val_split  # noqa: E402
from ald_tune.errors import ConfigError  # noqa: E402
from ald_tune.integrations.lightning import ALDPruning  # noqa: E402

EPOCHS = 40
RULE = {
    "window": 4,
    "patience": 2,
    "confirm": 2,
    "reserve": 2,
    "settle": 0.4,
    "n_epochs_after_stop": 3,
}


class LitVAE(pl.LightningModule):
    """A user's LightningModule that follows the protocol (encode, decode, three layers).
    Its noise is seeded by the global step, so a resumed fit trains exactly as the first."""

    def __init__(self, n_z: int = 16, features: int = 12) -> None:
        super().__init__()
        net = TabularVAE(n_z, (features,), hidden=32)
        self.body, self.mu_head, self.logvar_head = net.body, net.mu_head, net.logvar_head
        self.dec_in, self.dec_out = net.dec_in, net.dec_out

    def encode(self, x):
        h = self.body(x)
        return self.mu_head(h), self.logvar_head(h)

    def decode(self, z):
        return self.dec_out(self.dec_in(z))

    def training_step(self, batch, batch_idx):
        (x,) = batch
        mu, logvar = self.encode(x)
        gen = torch.Generator().manual_seed(int(self.global_step))
        z = mu + torch.randn(mu.shape, generator=gen) * torch.exp(0.5 * logvar)
        recon = (self.decode(z) - x).pow(2).sum(1).mean() / (2 * 0.05)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1).mean()
        return recon + kl

    def validation_step(self, batch, batch_idx):
        (x,) = batch
        mu, _ = self.encode(x)
        self.log("val_mse", (self.decode(mu) - x).pow(2).mean())

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=5e-3, weight_decay=1e-4)


def loaders():
    full = load_dataset("manifold", limit=2000, manifold={"intrinsic_dim": 2, "ambient_dim": 12})
    train, val = train_val_split(full, 0.25, seed=0)
    return (
        DataLoader(TensorDataset(train.x), batch_size=64, shuffle=False),
        DataLoader(TensorDataset(val.x), batch_size=100),
    )


def fit(root, ckpt_path=None, callbacks=()):
    torch.manual_seed(0)
    module = LitVAE()
    pruning = ALDPruning(RULE, likelihood="gaussian")
    trainer = pl.Trainer(
        max_epochs=EPOCHS,
        accelerator="cpu",
        devices=1,
        default_root_dir=str(root),
        logger=pl.loggers.CSVLogger(str(root), name="logs"),
        callbacks=[
            pruning,
            *callbacks,
            pl.callbacks.ModelCheckpoint(
                dirpath=str(root / "ckpt"), save_top_k=-1, every_n_epochs=1, filename="{epoch}"
            ),
        ],
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, *loaders(), ckpt_path=ckpt_path)
    return module, trainer, pruning


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("lightning_full")
    return (root, *fit(root))


def _latent(module):
    return [module.mu_head.weight, module.logvar_head.weight, module.dec_in.weight]


def test_the_callback_prunes_keeps_training_and_logs_n_z(uninterrupted):
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
