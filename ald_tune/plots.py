"""Matplotlib figures (Agg backend, written to PNG files)."""

from __future__ import annotations

import math
from typing import Any, Sequence

from .vocabulary import CURVES, axis_label

PANELS = CURVES


def plot_history(history: Sequence[dict[str, Any]], path: str, title: str = "") -> str:
    """n_z and the metrics against epoch, one panel each; returns ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(12, 6), sharex=True)
    epochs = [h["epoch"] for h in history]
    for ax, key in zip(axes.flat, PANELS):
        vals = [h.get(key, math.nan) for h in history]
        ax.plot(epochs, vals, drawstyle="steps-post" if key == "n_z" else "default")
        ax.set_ylabel(axis_label(key), fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path
