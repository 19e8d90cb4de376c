"""The versioned checkpoint: a SHA-256 of its content checked on load (torch checks no
CRC), NaN weights refused as damage, optimizer moments that must fit their parameters."""

from __future__ import annotations

import zipfile

import pytest
import torch

from ald_tune.engine.checkpoint import (
    DIGEST_KEY,
    content_digest,
    load_checkpoint,
    restore_states,
    save_checkpoint,
)
from ald_tune.errors import DataError


def small_checkpoint() -> dict:
    gen = torch.Generator().manual_seed(0)
    return {
        "config": {"train": {"epochs": 4}},
        "fixed_n_z": None,
        "n_z": 3,
        "image_shape": [1, 8, 8],
        "epoch": 1,
        "model": {
            "nets.mu_head.weight": torch.randn(3, 16, generator=gen),
            "nets.body.0.weight": torch.randn(64, 64, generator=gen),  # most of the bytes
        },
        "optimizer": {"state": {0: {"step": torch.tensor(2.0)}}, "param_groups": []},
        "controller": {"stopped": False},
        "history": [{"epoch": 0, "recon_loss": 41.5, "silhouette": float("nan")}],
        "decisions": [],
        "rng": {"torch": torch.get_rng_state()},
    }


def flip_a_byte_in_the_largest_tensor(path) -> None:
    """Change one byte in the middle of the largest tensor's stored data (inside the zip)."""
    with zipfile.ZipFile(path) as zf:
        info = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    local = info.header_offset
    name_len = int.from_bytes(raw[local + 26 : local + 28], "little")
    extra_len = int.from_bytes(raw[local + 28 : local + 30], "little")
    middle = local + 30 + name_len + extra_len + info.file_size // 2
    raw[middle] ^= 0x40
    path.write_bytes(bytes(raw))


def test_a_byte_flipped_inside_is_found_though_torch_loads_it(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(small_checkpoint(), path)
    assert load_checkpoint(path)[DIGEST_KEY]  # intact: loads, and carries its digest
    flip_a_byte_in_the_largest_tensor(path)
    changed = torch.load(path, weights_only=True)  # torch alone: no error, a changed weight
    assert not torch.equal(
        changed["model"]["nets.body.0.weight"], small_checkpoint()["model"]["nets.body.0.weight"]
    )
    with pytest.raises(DataError, match="is damaged: its content does not match the SHA-256"):
        load_checkpoint(path)


def test_the_digest_covers_every_value_and_key():
    base = small_checkpoint()
    digest = content_digest(base)
    assert content_digest(small_checkpoint()) == digest  # deterministic
    for change in (
        lambda c: c["history"][0].update(recon_loss=41.25),
        lambda c: c.update(n_z=4),
        lambda c: c["controller"].update(stopped=True),
        lambda c: c["model"].update(extra=torch.zeros(1)),
        lambda c: c.update(history=tuple(c["history"])),  # a list is not a tuple
        lambda c: c["optimizer"]["state"][0].update(step=torch.tensor(2.0, dtype=torch.float64)),
    ):
        other = small_checkpoint()
        change(other)
        assert content_digest(other) != digest


def test_a_checkpoint_written_before_the_digest_still_loads(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"schema_version": 1, **small_checkpoint()}, path)  # no DIGEST_KEY
    assert load_checkpoint(path)["n_z"] == 3


def test_nan_weights_say_the_file_is_damaged(tmp_path):
    ckpt = small_checkpoint()
    ckpt["model"]["nets.body.0.weight"][3, 4] = float("nan")
    path = save_checkpoint(ckpt, tmp_path / "checkpoint.pt")  # its digest matches: NaN saved
    with pytest.raises(DataError) as e:
        load_checkpoint(path)
    text = str(e.value)
    assert "is damaged" in text and "'nets.body.0.weight' holds NaN" in text
    assert "learning rate" not in text and "train.lr" not in text


def test_optimizer_moments_must_have_their_parameters_shapes():
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(2, 4)).sum().backward()
    opt.step()
    state = opt.state_dict()
    state["state"][0]["exp_avg"] = torch.zeros(1)  # torch loads it; a later step would fail
    ckpt = {"model": model.state_dict(), "optimizer": state, "controller": {}}

    class Controller:
        def load_state_dict(self, d):
            pass

    with pytest.raises(DataError, match=r"optimizer state \(exp_avg, \(1,\)\) does not match"):
        restore_states(model, torch.optim.Adam(model.parameters()), Controller(), ckpt, "ck")
