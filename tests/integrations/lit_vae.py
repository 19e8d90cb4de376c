"""A user's LightningModule and its fit, for tests/integrations/test_lightning.py.

Apart from the tests so that Lightning (about 2 s to import) is imported by the tests that
run it, not by every pytest-xdist worker while it collects.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset
from user_models import USER_LOOP_RULE, TabularVAE

from ald_tune.data.datasets import load_dataset, train_val_split
from ald_tune.integrations.lightning import ALDPruning

EPOCHS = 40
RULE = USER_LOOP_RULE


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
