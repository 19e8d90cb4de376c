"""What a finished run leaves on disk: history, its plot, image grids and the model.

``model.safetensors`` holds the weights (no pickle) with the config snapshot,
n_z, image shape and a SHA-256 of the weights in its metadata, so :func:`load_model`
rebuilds the net at the stored n_z (shapes checked first on the meta device) before
loading, and never imports a factory the caller did not name.
"""

from __future__ import annotations

import json
import math
import os
import textwrap
from collections.abc import Sequence
from typing import Any

import torch

from ald_tune.config.schema import Config
from ald_tune.config.vocabulary import CURVES, axis_label
from ald_tune.engine.budget import check_weights, meta_model
from ald_tune.engine.checkpoint import (
    DIGEST_KEY,
    _first_line,
    check_finite,
    check_stored_shape,
    content_digest,
)
from ald_tune.engine.model import build_model
from ald_tune.engine.user_code import Factory, allowed_factory
from ald_tune.errors import ConfigError, DataError, shown

MODEL_FILE = "model.safetensors"
HISTORY_PANELS = CURVES


@torch.no_grad()
def image_grids(model, val_x: torch.Tensor, n: int, seed: int) -> dict[str, torch.Tensor]:
    """Prior samples and (original, reconstruction) pairs as (H, W, C) uint8 grids."""
    from torchvision.utils import make_grid

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, model.n_z, generator=gen).to(device)
    samples = model.decode(z).cpu()
    x = val_x[: n // 2].to(device)
    recon = model.decode(model.encode(x)[0]).cpu()
    pairs = torch.stack([x.cpu(), recon], 1).flatten(0, 1)  # (n, C, H, W): original, recon, ...
    model.train(was_training)
    nrow = int(n**0.5)
    scale = max(1, -(-28 // samples.shape[-1]))  # tiles of >= 28 px, so 8x8 digits stay legible
    out = {}
    for key, imgs in (("samples", samples), ("reconstructions", pairs)):
        if scale > 1:
            imgs = torch.nn.functional.interpolate(imgs, scale_factor=scale, mode="nearest")
        grid = make_grid(imgs, nrow=nrow, padding=1, pad_value=1.0)  # (C, H, W)
        out[key] = (grid.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0)
    return out


def captioned(img: torch.Tensor, text: str, band: int = 12) -> torch.Tensor:
    """An (H, W, C) uint8 grid with a white band on top holding ``text`` (PIL's built-in
    font), e.g. "epoch 12, n_z 9": MLflow's image slider shows a step, not the model's
    size, and a grid should say which model drew it."""
    import numpy as np
    from PIL import Image, ImageDraw

    h, w, c = img.shape
    mode, white = ("RGB", (255, 255, 255)) if c == 3 else ("L", 255)
    canvas = Image.new(mode, (w, h + band), white)
    canvas.paste(Image.fromarray(img.numpy() if c == 3 else img[..., 0].numpy()), (0, band))
    ImageDraw.Draw(canvas).text((2, 0), text, fill=0 if c == 1 else (0, 0, 0))
    return torch.from_numpy(np.array(canvas)).reshape(h + band, w, c)


def save_png(img: torch.Tensor, path: str) -> None:
    from PIL import Image

    arr = img.numpy()
    Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(path)


def save_model(
    model, cfg_dict: dict[str, Any], image_shape, path: str, stats: dict | None = None
) -> str:
    """Save weights as safetensors with the architecture in the metadata (and, for feature
    vectors, the training split's per-feature mean and sd that standardise new data), and
    a SHA-256 of the weights (safetensors checks no checksum) that :func:`load_model`
    verifies."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {
        "config": json.dumps(cfg_dict),
        "n_z": str(model.n_z),
        "image_shape": json.dumps(list(image_shape)),
        DIGEST_KEY: content_digest(dict(sorted(state.items()))),
    }
    if stats is not None:
        meta["stats"] = json.dumps(stats)
    save_file(state, path, metadata=meta)
    return path


def load_model(path: str, factory: Factory | None = None):
    """Rebuild a saved VAE at its stored n_z and load its weights (no pickle). A model of
    feature vectors carries ``model.stats`` (the training split's per-feature ``mean`` and
    ``std``): standardise new data with them before encoding.

    What a model file may do: name the built-in net, n_z, the sample shape and the weights.
    What it may not: choose code. A file whose config names a ``model.factory`` is rebuilt
    only when the caller names that factory (``factory=``: the path, equal to the stored
    one, or the callable itself); otherwise nothing is imported.

    Args:
        path: a ``model.safetensors`` written by ald-tune.
        factory: the user's model factory, when the file was trained with one.

    Raises:
        DataError: a missing or unreadable file, missing or bad metadata, a factory the
            caller did not name, weights that do not match the stored config and n_z
            (checked on the meta device before anything is allocated), or a damaged file
            (its SHA-256 differs, or NaN weights).
        ConfigError: a stored config that breaks a field's range, or a model too large
            for this machine's free memory.
    """
    source = f"model file {shown(path)}"
    if not os.path.isfile(path):
        raise DataError(f"{source} does not exist. Fix: pass a model.safetensors of a run.")
    meta, shapes = _read_header(path, source)
    cfg, n_z, image_shape = _stored_setup(meta, source)
    check_stored_shape(n_z, image_shape, shapes, source)
    allowed = allowed_factory(
        cfg.model.factory, factory, source, "load_model(path, factory='PATH')"
    )
    planned = meta_model(cfg.model, image_shape, n_z, allowed)
    if planned is not None:
        check_weights(planned, shapes, source)  # every shape, before anything is allocated
    weights = _read_weights(path, source)
    if DIGEST_KEY in meta and meta[DIGEST_KEY] != content_digest(dict(sorted(weights.items()))):
        raise DataError(
            f"{source} is damaged: its weights do not match the SHA-256 they were saved "
            "with (a changed byte). Fix: use an intact copy of the run's model file."
        )
    check_finite(weights, source)
    model = build_model(cfg.model, tuple(image_shape), n_z, factory=allowed)
    check_weights(model, shapes, source)  # a user's net that cannot be built on meta
    # standardise new data with these
    model.stats = json.loads(meta["stats"]) if "stats" in meta else None
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise DataError(
            f"{source}: its weights do not match its stored config ({_first_line(exc)})."
        ) from None
    return model


def _stored_setup(meta: dict[str, str], source: str) -> tuple[Config, Any, Any]:
    """The config, n_z and sample shape a model file's metadata stores (unchecked shapes)."""
    try:
        cfg = Config.from_dict(json.loads(meta["config"]), source=source)
        return cfg, json.loads(meta["n_z"]), json.loads(meta["image_shape"])
    except (KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise DataError(
            f"{source} has no usable ald-tune metadata ({type(exc).__name__}: "
            f"{shown(str(exc), 80)}). Fix: pass a model.safetensors written by "
            "ald-tune."
        ) from None


def _read_header(path: str, source: str) -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
    """The metadata and every tensor's shape, read from the header (no tensor is loaded)."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt") as fh:
            meta = fh.metadata() or {}
            shapes = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
    except Exception as exc:  # safetensors raises several types for damaged files
        raise DataError(
            f"{source} is not a readable safetensors file ({type(exc).__name__})."
            " Fix: pass a model.safetensors written by ald-tune."
        ) from None
    return meta, shapes


def _read_weights(path: str, source: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(path)
    except Exception as exc:  # safetensors raises several types for damaged files
        raise DataError(
            f"{source} is not a readable safetensors file ({type(exc).__name__})."
            " Fix: pass a model.safetensors written by ald-tune."
        ) from None


def save_run_outputs(trainer, out_dir: str) -> dict[str, str]:
    """Write history.json, samples.png, reconstructions.png and the model to ``out_dir``."""
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    paths = {"history": os.path.join(out_dir, "history.json")}
    with open(paths["history"], "w", encoding="utf-8") as fh:
        json.dump(trainer.summary(), fh, indent=1, default=float)
    for key, img in trainer.images().items():
        paths[key] = os.path.join(out_dir, f"{key}.png")
        save_png(img, paths[key])
    paths["model"] = save_model(
        trainer.model,
        trainer.cfg.to_dict(),
        trainer.train_data.image_shape,
        os.path.join(out_dir, MODEL_FILE),
        stats=trainer.train_data.stats,
    )
    return paths


def plot_history(history: Sequence[dict[str, Any]], path: str, title: str = "") -> str:
    """n_z and the metrics against epoch, one panel each; returns ``path``."""
    # matplotlib's Figure outside pyplot: nothing global changes (no backend switch, no
    # figure left open), so a notebook that trains keeps its own backend.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 6))
    axes = fig.subplots(2, 3, sharex=True)
    epochs = [h["epoch"] for h in history]
    for ax, key in zip(axes.flat, HISTORY_PANELS):
        vals = [h.get(key, math.nan) for h in history]
        ax.plot(epochs, vals, drawstyle="steps-post" if key == "n_z" else "default")
        ax.set_ylabel("\n".join(textwrap.wrap(axis_label(key), 30)), fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    return path
