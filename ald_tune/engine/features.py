"""FID: the scorer (:class:`FIDScorer`) and, re-exported from
:mod:`ald_tune.engine.extractors`, the feature extractors it takes.

Two extractors, named by :data:`EXTRACTORS`: ``"inception"`` (the standard FID
Inception-v3, comparable with published FIDs, meant for GPUs) and ``"classifier"`` (a small
CNN trained once on the dataset and cached; fast on CPUs, comparable only between runs
sharing the same cached network). Every value should be logged with its extractor's name.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ald_tune.engine.extractors import (
    EXTRACTORS,
    ClassifierExtractor,
    FeatureExtractor,
    classifier_extractor,
    get_extractor,
    inception_extractor,
)

__all__ = [
    "EXTRACTORS",
    "ClassifierExtractor",
    "FIDScorer",
    "FeatureExtractor",
    "classifier_extractor",
    "get_extractor",
    "inception_extractor",
]


class FIDScorer:
    """FID of image sets against one fixed reference set, whose statistics are computed once.

    Args:
        extractor: The feature extractor; its name labels every value.
        reference: Real images ``(N, C, H, W)`` in ``[0, 1]``, ``N >= 2``.
        device: Where features and statistics are computed (the extractor is moved there).
        batch_size: Images per extractor call.

    Raises:
        ValueError: If ``reference`` holds fewer than 2 images or ``batch_size < 1``.

    Example:
        >>> from ald_tune.engine.features import classifier_extractor
        >>> x = torch.rand(200, 1, 8, 8)
        >>> extractor = classifier_extractor(x, None, cache_dir=None, n_epochs=1)
        >>> scorer = FIDScorer(extractor, x[:100])
        >>> scorer.score(x[:100]) < 1e-3, scorer.extractor_name
        (True, 'classifier')
    """

    def __init__(
        self,
        extractor: FeatureExtractor,
        reference: Tensor,
        *,
        device: str | torch.device = "cpu",
        batch_size: int = 100,
    ) -> None:
        from torchmetrics.image.fid import FrechetInceptionDistance

        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(
                f"The 'batch_size' parameter of FIDScorer must be an int >= 1. "
                f"Got {batch_size!r} instead."
            )
        _check_fid_images(reference, "reference")
        self._extractor = extractor
        self._device = torch.device(device)
        self._batch_size = batch_size
        # A custom module gets the images exactly as given (normalize=True only means "float, not
        # uint8"); torchmetrics accumulates the statistics in float64.
        fid = FrechetInceptionDistance(feature=extractor, reset_real_features=False, normalize=True)
        self._fid = fid.to(self._device)
        for batch in reference.split(batch_size):
            self._fid.update(batch.to(self._device, torch.float32), real=True)

    @property
    def extractor_name(self) -> str:
        """Name of the extractor that labels the values (``"inception"``, ``"classifier"``)."""
        return self._extractor.name

    def score(self, images: Tensor) -> float:
        """FID of ``images`` against the reference set.

        Args:
            images: Images ``(N, C, H, W)`` in ``[0, 1]``, ``N >= 2``, shaped like the
                reference.

        Returns:
            The Frechet distance between the Gaussians fitted to both feature sets, in squared
            feature units: ``[0, inf)``, lower is better, 0 for identical feature statistics
            (tiny negative numerical residues are clamped to 0.0). ``nan`` if ``images``
            contain NaN or inf (e.g. a diverged decoder).

        Raises:
            ValueError: If fewer than 2 images are given.
        """
        _check_fid_images(images, "images")
        if not torch.isfinite(images).all():
            return float("nan")
        self._fid.reset()  # keeps the real statistics (reset_real_features=False)
        try:
            for batch in images.split(self._batch_size):
                self._fid.update(batch.to(self._device, torch.float32), real=False)
            value = float(self._fid.compute())
        finally:
            self._fid.reset()
        return max(value, 0.0) if math.isfinite(value) else float("nan")


def _check_fid_images(images: Tensor, what: str) -> None:
    if images.ndim != 4 or images.shape[0] < 2:
        raise ValueError(
            f"FID needs at least 2 {what} of shape (N, C, H, W). Got {tuple(images.shape)} instead."
        )
