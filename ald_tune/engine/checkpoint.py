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
plain scalars only, so a tampered file cannot run code. torch does not check the
zip's CRCs, so a changed byte would load as a changed weight: the file carries a
SHA-256 of its content (``"sha256"``, :func:`content_digest`), verified on load.
Restore builds the model at the stored n_z first (see
:meth:`ald_tune.engine.trainer.Trainer.from_checkpoint`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from typing import Any

import torch

from ald_tune._version import __version__
from ald_tune.config.constraints import MAX_NZ
from ald_tune.errors import DataError, shown

SCHEMA_VERSION = 1
CHECKPOINT_FILE = "checkpoint.pt"
#: The key of the content's SHA-256 (files written before it was added have none).
DIGEST_KEY = "sha256"
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
    body = {"schema_version": SCHEMA_VERSION, "package_version": __version__, **ckpt}
    body.pop(DIGEST_KEY, None)
    body[DIGEST_KEY] = content_digest(body)
    try:
        torch.save(body, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def content_digest(obj: Any) -> str:
    """SHA-256 of a checkpoint's content: every tensor's dtype, shape and bytes, every
    key, value and container, in order. Written by hand: torch has no content hash, and
    hashing the file would need a second pass over a temporary copy."""
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def _feed(h: Any, obj: Any) -> None:
    if torch.is_tensor(obj):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)};".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, Mapping):
        h.update(f"D{len(obj)};".encode())
        for k, v in obj.items():
            _feed(h, k)
            _feed(h, v)
    elif isinstance(obj, (list, tuple)):
        h.update(f"{'L' if isinstance(obj, list) else 'U'}{len(obj)};".encode())
        for v in obj:
            _feed(h, v)
    else:
        h.update(_leaf(obj))


def _leaf(obj: Any) -> bytes:
    """The bytes hashed for one value that holds no others."""
    if isinstance(obj, str):
        raw = obj.encode("utf-8", "surrogatepass")
        return f"S{len(raw)};".encode() + raw
    if isinstance(obj, bool) or obj is None:
        return f"{obj};".encode()
    if isinstance(obj, int):
        return f"I{int(obj)};".encode()
    if isinstance(obj, float):
        return f"F{float(obj)!r};".encode()
    # torch.dtype, torch.device, ...: what weights_only loads besides the above
    return f"O{type(obj).__name__}:{obj!r};".encode()


def check_finite(weights: Any, source: str) -> None:
    """Every stored weight is finite: ald-tune never saves NaN or inf weights (a run whose
    weights turn non-finite stops first), so a file that holds them is damaged.

    Raises:
        DataError: naming the file and the weight.
    """
    for k, v in weights.items() if isinstance(weights, Mapping) else ():
        if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise DataError(
                f"{source} is damaged: its weight {shown(str(k), 80)} holds NaN or infinite "
                "values, which ald-tune never saves. Fix: use an earlier checkpoint (or the "
                "run's own file), or train again."
            )


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


def _shape(v: Any) -> tuple[int, ...] | None:
    if torch.is_tensor(v):
        return tuple(v.shape)
    return tuple(v) if isinstance(v, tuple) else None


def check_stored_shape(n_z: Any, image_shape: Any, weights: Any, source: str) -> None:
    """A stored n_z and image shape are bounded and agree with the stored weights (tensors,
    or their shapes as tuples), checked before any model is built (a tampered file could
    otherwise ask for huge tensors).

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
    if isinstance(weights, Mapping):
        for key, dim in (("mu_head.weight", 0), ("logvar_head.weight", 0), ("dec_in.weight", 1)):
            found = [_shape(v) for k, v in weights.items() if str(k).endswith(key)]
            if found and (found[0] is None or len(found[0]) != 2 or found[0][dim] != n_z):
                raise DataError(
                    f"{source}: its weights ({key}) do not hold n_z={n_z} units; "
                    "the file is damaged or was edited."
                )


def check_digest(ckpt: dict[str, Any], source: str) -> None:
    """The content matches the SHA-256 it was saved with (a file without one, written
    before ald-tune stored it, is not checked).

    Raises:
        DataError: the file is damaged.
    """
    if DIGEST_KEY not in ckpt:
        return
    body = {k: v for k, v in ckpt.items() if k != DIGEST_KEY}
    if ckpt[DIGEST_KEY] != content_digest(body):
        raise DataError(
            f"{source} is damaged: its content does not match the SHA-256 it was saved with "
            "(a changed byte, which torch does not detect). Fix: resume from an intact copy "
            "(a sweep keeps the previous checkpoint too), or train again."
        )


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load and check a checkpoint written by :func:`save_checkpoint`: its SHA-256, its
    stored sizes against its weights and their bounds, and that every weight is finite.
    It names a ``model.factory``? Nothing is imported here; see
    :meth:`~ald_tune.engine.trainer.Trainer.from_checkpoint`.

    Raises:
        DataError: missing file, not a checkpoint, a damaged one (a changed byte, NaN
            weights, sizes past their bounds), or a newer schema.
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
    source = f"checkpoint {shown(path)}"
    if isinstance(ckpt, dict):
        check_digest(ckpt, source)  # first: a changed byte can change anything below
    missing = [k for k in REQUIRED if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise DataError(
            f"checkpoint {shown(path)} is not an ald-tune checkpoint "
            f"(missing {missing}). Fix: pass a checkpoint.pt written by ald-tune."
        )
    if not isinstance(ckpt["schema_version"], int):
        raise DataError(f"checkpoint {shown(path)}: schema_version is not an int.")
    check_stored_shape(ckpt["n_z"], ckpt["image_shape"], ckpt["model"], source)
    check_finite(ckpt["model"], source)
    if ckpt["schema_version"] > SCHEMA_VERSION:
        raise DataError(
            f"checkpoint {path!r} has schema {ckpt['schema_version']}, newer than "
            f"this ald-tune ({__version__}, schema {SCHEMA_VERSION}). Upgrade ald-tune."
        )
    return ckpt


def restore_states(model, optimizer, controller, ckpt: dict[str, Any], source: str) -> None:
    """Load a checkpoint's weights, optimizer and controller state into a model built at
    its n_z; the optimizer's moments must have their parameters' shapes (torch does not
    check them, and a wrong one fails later inside a step).

    Raises:
        DataError: naming the file and what does not match.
    """
    try:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        controller.load_state_dict(ckpt["controller"])
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise DataError(
            f"{source}: its weights, optimizer or controller state do not match its "
            f"config ({type(exc).__name__}: {shown(first)}). Fix: resume from the "
            "checkpoint.pt the run wrote, unedited."
        ) from None
    for group in optimizer.param_groups:
        for p in group["params"]:
            for key, value in optimizer.state.get(p, {}).items():
                if torch.is_tensor(value) and value.dim() and value.shape != p.shape:
                    raise DataError(
                        f"{source}: its optimizer state ({key}, {tuple(value.shape)}) does "
                        f"not match its parameter {tuple(p.shape)}; the file is damaged or "
                        "was edited. Fix: resume from the checkpoint.pt the run wrote, unedited."
                    )
