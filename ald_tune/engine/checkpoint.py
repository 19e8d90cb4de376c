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
from ald_tune.config.schema import MAX_NZ
from ald_tune.errors import DataError, shown

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


def _first_line(exc: BaseException) -> str:
    """The start of an error's text, without torch's advice to load with
    ``weights_only=False`` (which would run the file's code)."""
    text = str(exc).split("\n")[0]
    text = text.split("weights_only")[0].rstrip(" ,.(") if "weights_only" in text else text
    return shown(text, 160)[1:-1]


#: The widest feature vector a stored model may declare (a tampered file could ask for more).
MAX_FEATURES = 1 << 20


def _sample_shape_ok(shape: Any) -> bool:
    if not isinstance(shape, (list, tuple)) or not all(
        isinstance(d, int) and not isinstance(d, bool) for d in shape
    ):
        return False
    if len(shape) == 1:
        return 1 <= shape[0] <= MAX_FEATURES
    return len(shape) == 3 and shape[0] in (1, 3) and all(1 <= d <= 4096 for d in shape)


def check_stored_shape(n_z: Any, image_shape: Any, weights: Any, source: str) -> None:
    """A stored n_z and image shape are bounded and agree with the stored weights, checked
    before any model is built (a tampered file could otherwise ask for huge tensors).

    Raises:
        DataError: naming the file, the value and what was expected.
    """
    if isinstance(n_z, bool) or not isinstance(n_z, int) or not 1 <= n_z <= MAX_NZ:
        raise DataError(f"{source}: stored n_z {shown(n_z)} is not an int in [1, {MAX_NZ}].")
    if not _sample_shape_ok(image_shape):
        raise DataError(
            f"{source}: stored sample shape {shown(image_shape)} is neither an image "
            f"[C in (1, 3), H, W] with sides in [1, 4096] nor a feature vector [D] with D in "
            f"[1, {MAX_FEATURES}]."
        )
    if isinstance(weights, dict):
        for key, dim in (("mu_head.weight", 0), ("logvar_head.weight", 0), ("dec_in.weight", 1)):
            found = [v for k, v in weights.items() if str(k).endswith(key)]
            if found and (
                not torch.is_tensor(found[0]) or found[0].dim() != 2 or found[0].shape[dim] != n_z
            ):
                raise DataError(
                    f"{source}: its weights ({key}) do not hold n_z={n_z} units; "
                    "the file is damaged or was edited."
                )


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load and check a checkpoint written by :func:`save_checkpoint`.

    Raises:
        DataError: missing file, not a checkpoint, or a newer schema.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, CHECKPOINT_FILE)
    if not os.path.isfile(path):
        raise DataError(
            f"checkpoint {shown(path)} does not exist. Fix: pass the checkpoint.pt "
            "of a run (or the folder holding it)."
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for bad/unsafe files
        raise DataError(
            f"checkpoint {shown(path)} cannot be loaded safely ({type(exc).__name__}: "
            f"{_first_line(exc)}); it runs no code and is not loaded. Fix: pass a "
            "checkpoint.pt written by ald-tune."
        ) from None
    missing = [k for k in REQUIRED if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise DataError(
            f"checkpoint {shown(path)} is not an ald-tune checkpoint "
            f"(missing {missing}). Fix: pass a checkpoint.pt written by ald-tune."
        )
    if not isinstance(ckpt["schema_version"], int):
        raise DataError(f"checkpoint {shown(path)}: schema_version is not an int.")
    check_stored_shape(ckpt["n_z"], ckpt["image_shape"], ckpt["model"], f"checkpoint {shown(path)}")
    if ckpt["schema_version"] > SCHEMA_VERSION:
        raise DataError(
            f"checkpoint {path!r} has schema {ckpt['schema_version']}, newer than "
            f"this ald-tune ({__version__}, schema {SCHEMA_VERSION}). Upgrade ald-tune."
        )
    return ckpt
