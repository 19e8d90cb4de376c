"""The cheapest answer to "how many latent dimensions?": the intrinsic dimension of the data.

No training: scikit-dimension's TwoNN (Facco et al. 2017, from the ratio of each point's
two nearest-neighbour distances) and MLE (Levina and Bickel 2005, from the k nearest
neighbours) estimate the dimension of the manifold the training split lies on, on a
fixed seeded subsample. ``compare`` runs it beside the grid and ALD as a baseline
(docs/comparison.md, "Baselines"); its n_z is the estimate rounded to an integer (at
least 1), and its CPU seconds are counted as its compute.
"""

from __future__ import annotations

import math
import time
from typing import Any

#: Points the estimators see (a fixed seeded subsample of the training split).
DEFAULT_SAMPLES = 2000
ESTIMATORS = ("twonn", "mle")


def estimate_intrinsic_dim(
    x: Any, *, n_samples: int = DEFAULT_SAMPLES, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Estimate the intrinsic dimension of the samples ``x`` (N, ...) with each estimator.

    Args:
        x: a tensor or array of N samples of any shape (flattened to (N, D)).
        n_samples: the size of the seeded subsample (all of ``x`` when smaller).
        seed: the subsample's seed.

    Returns:
        ``{"twonn": {...}, "mle": {...}}``, each with ``dimension`` (the estimate),
        ``n_z`` (rounded, at least 1), ``cpu_s`` (this process's CPU seconds, the subsample
        included), ``wall_s`` and ``n_samples``.

    Raises:
        ValueError: fewer than 3 samples, or samples with no variation.
    """
    import numpy as np

    arr = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
    arr = arr.reshape(len(arr), -1)
    if len(arr) < 3:
        raise ValueError(f"the intrinsic dimension needs at least 3 samples, got {len(arr)}.")
    idx = np.random.default_rng(seed).permutation(len(arr))[: min(n_samples, len(arr))]
    sub = arr[np.sort(idx)]
    # Duplicate points give zero neighbour distances (log 0 in both estimators).
    sub = np.unique(sub, axis=0)
    if len(sub) < 3:
        raise ValueError("the intrinsic dimension needs at least 3 distinct samples.")
    import skdim  # scikit-dimension: the estimators themselves

    out = {}
    for name, est in (("twonn", skdim.id.TwoNN()), ("mle", skdim.id.MLE())):
        t0, c0 = time.perf_counter(), time.process_time()
        dim = float(est.fit(sub).dimension_)
        out[name] = {
            "dimension": dim,
            "n_z": max(1, round(dim)) if math.isfinite(dim) else None,
            "cpu_s": time.process_time() - c0,
            "wall_s": time.perf_counter() - t0,
            "n_samples": len(sub),
        }
    return out
