"""The intrinsic-dimension baseline: scikit-dimension's estimators on data of known dimension."""

from __future__ import annotations

import numpy as np
import pytest

from ald_tune.data.intrinsic import estimate_intrinsic_dim
from ald_tune.data.sources import make_manifold


def test_estimates_a_known_dimension_on_a_fixed_subsample():
    x = make_manifold(4, 32, 0.01, 1500, seed=0)[0]
    out = estimate_intrinsic_dim(x, n_samples=1000, seed=0)
    assert set(out) == {"twonn", "mle"}
    for est in out.values():
        assert 3.0 <= est["dimension"] <= 5.5 and est["n_z"] in (3, 4, 5)
        assert est["n_samples"] == 1000 and est["cpu_s"] >= 0 and est["wall_s"] >= 0
    assert estimate_intrinsic_dim(x, n_samples=1000, seed=0)["mle"]["dimension"] == pytest.approx(
        out["mle"]["dimension"]
    )  # seeded: the same subsample, the same estimate


def test_duplicates_and_too_few_points_are_refused_clearly():
    with pytest.raises(ValueError, match="at least 3 distinct samples"):
        estimate_intrinsic_dim(np.ones((50, 4)))
    with pytest.raises(ValueError, match="at least 3 samples, got 2"):
        estimate_intrinsic_dim(np.zeros((2, 4)))
