"""The validation data a :class:`~ald_tune.engine.pruner.Pruner` evaluates each epoch:
whatever your loader gives (tensors, or ``(x, y, ...)`` batches whose first item is a
tensor), checked and gathered into one :class:`~ald_tune.data.datasets.ImageData` on the
model's device, with the labels when every batch has integer ones. The errors name the batch
and the fix before any evaluation."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ald_tune.config.sections import EvalConfig
from ald_tune.data.datasets import ImageData
from ald_tune.errors import DataError


def collect_batches(
    val_batches: Iterable[Any] | torch.Tensor,
    device: torch.device,
    max_samples: int,
    eval_cfg: EvalConfig,
) -> ImageData:
    """The first ``max_samples`` validation samples (and labels, when every batch has
    integer ones), on the model's device.

    Args:
        val_batches: a tensor, or an iterable of tensors or ``(x, y, ...)`` batches (a
            DataLoader); read only until ``max_samples`` samples are in.
        device: where the samples go (the model's device).
        max_samples: how many samples to keep (the first ones).
        eval_cfg: ``n_clusters`` and ``silhouette_labels`` (the K-means the samples feed).

    Returns:
        The samples as float32 (copies: no inference tensors), labels as int64 on the CPU
        or None.

    Raises:
        DataError: no batches, a batch that is not a tensor or a tuple starting with one,
            sample shapes that differ, NaN or inf, no more samples than clusters, or no
            labels where ``silhouette_labels`` is ``"true"``.
    """
    if torch.is_tensor(val_batches):
        val_batches = [val_batches]
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor | None] = []
    n = 0
    for i, batch in enumerate(val_batches):
        x, y = split_batch(batch, i)
        xs.append(x.detach().to(device, torch.float32).clone())  # no inference tensors
        ys.append(y)
        n += len(x)
        if n >= max_samples:
            break
    if not xs:
        raise DataError("Pruner.step: val_batches gave no batches. Fix: pass validation data.")
    shapes = {tuple(x.shape[1:]) for x in xs}
    if len(shapes) != 1:
        raise DataError(
            f"Pruner.step: validation batches differ in sample shape ({sorted(shapes)}). "
            "Fix: give batches of one sample shape."
        )
    x = torch.cat(xs)[:max_samples]
    if not bool(torch.isfinite(x).all()):
        raise DataError("Pruner.step: the validation data hold NaN/inf. Fix: clean them.")
    y = None
    if all(v is not None for v in ys):
        y = torch.cat([v for v in ys if v is not None])[: len(x)].cpu().clone()
    _check_for_kmeans(len(x), y, eval_cfg)
    return ImageData(x=x.contiguous(), y=y, name="validation batches")


def _check_for_kmeans(n: int, y: torch.Tensor | None, eval_cfg: EvalConfig) -> None:
    """More samples than K-means clusters, and labels where the silhouette is to use them."""
    k = eval_cfg.n_clusters or (int(y.unique().numel()) if y is not None else 10)
    if n <= k:
        raise DataError(
            f"Pruner.step: {n} validation samples for K-means with k={k}; the "
            "silhouette needs more samples than clusters. Fix: give more validation "
            "data or set eval_cfg={'n_clusters': ...}."
        )
    if eval_cfg.silhouette_labels == "true" and y is None:
        raise DataError(
            "Pruner.step: eval.silhouette_labels='true' needs labels in every batch. "
            "Fix: batches as (x, y) or silhouette_labels='kmeans'."
        )


def split_batch(batch: Any, i: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(x, y or None) from one validation batch."""
    if torch.is_tensor(batch):
        return batch, None
    if isinstance(batch, (tuple, list)) and batch and torch.is_tensor(batch[0]):
        y = batch[1] if len(batch) > 1 else None
        if (
            torch.is_tensor(y)
            and y.dim() == 1
            and not y.is_floating_point()
            and len(y) == len(batch[0])
        ):
            return batch[0], y.long()
        return batch[0], None
    raise DataError(
        f"Pruner.step: validation batch {i} is a {type(batch).__name__}; expected a tensor or "
        "an (x, y, ...) tuple whose first item is a tensor."
    )
