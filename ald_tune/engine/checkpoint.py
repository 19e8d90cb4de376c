"""One versioned checkpoint dict, saved with torch and loaded without pickle code.

Layout (``SCHEMA_VERSION`` 1)::

    {"schema_version": 1, "package_version": "0.1.0",
     "config": {...Config.to_dict()...}, "fixed_n_z": None | int,
     "n_z": 39, "image_shape": [1, 8, 8], "epoch": 41,          # last finished epoch
     "model": state_dict, "optimizer": state_dict,
     "controller": {...json...}, "history": [...], "decisions": [...],
     "rng": {"torch": ByteTensor, "batches": ByteTensor, "cuda": [...]},
     "timing": {"train_s": ..., "eval_s": ..., "wall_s": ...},
     "tracking_run_id": None | str}

Loading uses ``torch.load(weights_only=True)``: tensors, dicts, lists and
plain scalars only, so a tampered file cannot run code. Restore builds the
model at the stored n_z first (see :meth:`ald_tune.engine.trainer.Trainer.from_checkpoint`).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import torch

from ald_tune._version import __version__
from ald_tune.errors import DataError

SCHEMA_VERSION = 1
CHECKPOINT_FILE = "checkpoint.pt"
REQUIRED = (
    "schema_version",
    "config",
    "n_z",
    "image_shape",
    "epoch",
    "model",
    "optimizer",
    "controller",
    "history",
    "decisions",
    "rng",
)


def save_checkpoint(ckpt: dict[str, Any], path: str | os.PathLike) -> str:
    """Write atomically (temp file + rename), so a crash never leaves half a file."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    os.close(fd)
    try:
        torch.save({"schema_version": SCHEMA_VERSION, "package_version": __version__, **ckpt}, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load and check a checkpoint written by :func:`save_checkpoint`.

    Raises:
        DataError: missing file, not a checkpoint, or a newer schema.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, CHECKPOINT_FILE)
    if not os.path.isfile(path):
        raise DataError(f"checkpoint {path!r} does not exist.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for bad/unsafe files
        raise DataError(f"checkpoint {path!r} cannot be loaded safely: {exc}") from None
    missing = [k for k in REQUIRED if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise DataError(f"checkpoint {path!r} is not an ald-tune checkpoint (missing {missing}).")
    if ckpt["schema_version"] > SCHEMA_VERSION:
        raise DataError(
            f"checkpoint {path!r} has schema {ckpt['schema_version']}, newer than "
            f"this ald-tune ({__version__}, schema {SCHEMA_VERSION}). Upgrade ald-tune."
        )
    return ckpt
