"""Tests of ald_tune.engine.metrics: hand-computed values and library cross-checks."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from sklearn.datasets import make_blobs
from sklearn.metrics import silhouette_score

from ald_tune.engine.features import FeatureExtractor, FIDScorer
from ald_tune.engine.metrics import (
    active_units,
    clustering_accuracy,
    kmeans_labels,
    recon_loss,
    silhouette,
    unit_kl,
)

# --- recon_loss -------------------------------------------------------------------------------


def test_recon_loss_hand_computed_2x2():
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [1.0, 1.0]]])  # (2, 2, 2)
    x_hat = torch.tensor([[[0.5, 0.5], [0.25, 0.75]], [[0.5, 0.5], [0.5, 0.5]]])
    sample_1 = 2 * math.log(2) + 2 * math.log(4 / 3)  # -log .5 - log .5 - log .75 - log .75
    sample_2 = 4 * math.log(2)
    value = recon_loss(x, x_hat)
    assert isinstance(value, float)
    assert value == pytest.approx((sample_1 + sample_2) / 2, rel=1e-12)


def test_recon_loss_matches_torch_bce_summed_over_pixels():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(16, 1, 8, 8, generator=gen)
    x_hat = torch.rand(16, 1, 8, 8, generator=gen).clamp(0.01, 0.99)
    expected = torch.nn.functional.binary_cross_entropy(x_hat, x, reduction="sum").item() / 16
    assert recon_loss(x, x_hat) == pytest.approx(expected, rel=1e-5)


def test_recon_loss_is_finite_for_saturated_probabilities():
    x = torch.tensor([[1.0, 0.0]])
    assert math.isfinite(recon_loss(x, torch.tensor([[0.0, 1.0]])))
    assert recon_loss(x, x.clone()) == pytest.approx(0.0)


def test_recon_loss_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        recon_loss(torch.zeros(2, 4), torch.zeros(2, 5))


# --- unit_kl and active_units -----------------------------------------------------------------


def test_unit_kl_hand_values():
    mu = torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 2.0]])
    logvar = torch.zeros(2, 3)
    kl = unit_kl(mu, logvar)
    assert kl.shape == (3,)
    # unit 0: 0; unit 1: 0.5 * 1; unit 2: mean(0, 0.5 * 4) = 1.
    torch.testing.assert_close(kl, torch.tensor([0.0, 0.5, 1.0]))


def test_unit_kl_matches_torch_distributions():
    gen = torch.Generator().manual_seed(1)
    mu, logvar = torch.randn(50, 4, generator=gen), torch.randn(50, 4, generator=gen)
    posterior = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    prior = torch.distributions.Normal(torch.zeros(()), torch.ones(()))
    expected = torch.distributions.kl_divergence(posterior, prior).mean(dim=0)
    torch.testing.assert_close(unit_kl(mu, logvar), expected, rtol=1e-5, atol=1e-6)


def test_unit_kl_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        unit_kl(torch.zeros(3, 2), torch.zeros(3, 4))


def test_active_units_counts_units_with_variance_above_threshold():
    signs = torch.tensor([1.0, -1.0, 1.0, -1.0])[:, None]  # population variance of a * signs is a^2
    scales = torch.tensor([1.0, math.sqrt(0.02), math.sqrt(0.005), 0.0])
    mu = signs * scales + torch.tensor([3.0, -2.0, 0.5, 7.0])  # offsets do not matter
    assert active_units(mu) == 2
    assert active_units(mu, threshold=0.5) == 1
    assert active_units(mu, threshold=0.001) == 3
    assert isinstance(active_units(mu), int)


def test_active_units_degenerate_cases():
    assert active_units(torch.ones(1, 5)) == 0
    with pytest.raises(ValueError, match=r"\(N, n_z\)"):
        active_units(torch.ones(5))


# --- silhouette and clustering ----------------------------------------------------------------


def test_silhouette_with_labels_equals_sklearn():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(60, 3))
    labels = rng.integers(0, 4, size=60)
    value = silhouette(z, labels)
    assert isinstance(value, float)
    assert value == pytest.approx(silhouette_score(z, labels), rel=1e-12)
    assert silhouette(torch.as_tensor(z), torch.as_tensor(labels)) == pytest.approx(value)


def test_silhouette_kmeans_is_high_for_separated_blobs_and_deterministic():
    z, _ = make_blobs(n_samples=300, n_features=5, centers=4, cluster_std=0.3, random_state=0)
    value = silhouette(z, n_clusters=4, seed=0)
    assert value > 0.8
    assert silhouette(z, n_clusters=4, seed=0) == value


def test_silhouette_single_latent_unit():
    z = np.concatenate([np.zeros(20), np.ones(20) * 10])[:, None]  # (40, 1)
    assert silhouette(z, n_clusters=2) > 0.9
    assert silhouette(z[:, 0], n_clusters=2) == silhouette(z, n_clusters=2)


@pytest.mark.parametrize(
    ("z", "labels"),
    [
        (np.random.default_rng(0).normal(size=(10, 2)), np.zeros(10)),  # one label
        (np.random.default_rng(0).normal(size=(4, 2)), np.arange(4)),  # N <= n_labels
        (np.random.default_rng(0).normal(size=(1, 2)), None),  # one sample
    ],
)
def test_silhouette_degenerate_is_nan(z, labels):
    assert math.isnan(silhouette(z, labels))


def test_silhouette_kmeans_on_identical_points_is_nan():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's ConvergenceWarning: fewer distinct clusters
        assert math.isnan(silhouette(np.ones((20, 3)), n_clusters=3))


def test_silhouette_rejects_label_count_mismatch():
    with pytest.raises(ValueError, match="one label per sample"):
        silhouette(np.zeros((5, 2)), np.zeros(4))


def test_kmeans_labels_shape_and_determinism():
    z, _ = make_blobs(n_samples=100, n_features=3, centers=3, random_state=1)
    labels = kmeans_labels(z, n_clusters=3, seed=5)
    assert labels.shape == (100,)
    assert np.unique(labels).size == 3
    np.testing.assert_array_equal(labels, kmeans_labels(z, n_clusters=3, seed=5))
    assert kmeans_labels(z[:2], n_clusters=10, seed=0).shape == (2,)  # k reduced to N


def test_clustering_accuracy_permuted_labels_is_one():
    y_true = np.array([0, 0, 1, 1, 2, 2, 2])
    permutation = np.array([2, 0, 1])
    assert clustering_accuracy(y_true, permutation[y_true]) == 1.0
    shifted = torch.as_tensor(permutation[y_true] + 7)
    assert clustering_accuracy(torch.as_tensor(y_true), shifted) == 1.0


def test_clustering_accuracy_hand_computed_partial():
    y_true = [0, 0, 0, 1, 1, 1]
    y_pred = [1, 1, 0, 0, 0, 0]
    # Best matching: cluster 1 -> class 0 (2 right), cluster 0 -> class 1 (3 right).
    assert clustering_accuracy(y_true, y_pred) == pytest.approx(5 / 6)
    # More clusters than classes: two clusters stay unmatched.
    assert clustering_accuracy([0, 0, 1, 1], [0, 1, 2, 3]) == pytest.approx(0.5)


def test_clustering_accuracy_rejects_length_mismatch():
    with pytest.raises(ValueError, match="same length"):
        clustering_accuracy([0, 1], [0, 1, 1])


# --- FIDScorer --------------------------------------------------------------------------------


class TinyConvExtractor(FeatureExtractor):
    """A fixed random conv net that counts how many batches it has seen."""

    def __init__(self, in_channels: int = 1) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        weight = torch.randn(8, in_channels, 3, 3, generator=gen)
        self.weight = torch.nn.Parameter(weight, requires_grad=False)
        self.num_features = 8
        self.name = "tiny"
        self.n_calls = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.n_calls += 1
        out = torch.nn.functional.conv2d(images, self.weight, padding=1).relu()  # (N, 8, H, W)
        return out.mean(dim=(2, 3))  # (N, 8)


def _fid_by_hand(feats_a: torch.Tensor, feats_b: torch.Tensor) -> float:
    a, b = feats_a.double().numpy(), feats_b.double().numpy()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


def test_fid_with_tiny_extractor_is_zero_on_itself_and_counts_calls():
    gen = torch.Generator().manual_seed(0)
    reference = torch.rand(50, 1, 8, 8, generator=gen)
    extractor = TinyConvExtractor()
    scorer = FIDScorer(extractor, reference, batch_size=20)
    assert extractor.n_calls == 3  # reference statistics: 50 images in batches of 20
    assert scorer.extractor_name == "tiny"
    assert abs(scorer.score(reference)) < 1e-3
    assert extractor.n_calls == 6  # only the scored images were extracted again
    darker = reference * 0.3
    first = scorer.score(darker)
    assert first > 1e-2
    assert scorer.score(darker) == pytest.approx(first)  # reference statistics unchanged
    assert extractor.n_calls == 12


def test_fid_matches_formula_on_features():
    gen = torch.Generator().manual_seed(1)
    reference = torch.rand(40, 1, 8, 8, generator=gen)
    images = torch.rand(30, 1, 8, 8, generator=gen) ** 2
    extractor = TinyConvExtractor()
    value = FIDScorer(extractor, reference).score(images)
    with torch.no_grad():
        expected = _fid_by_hand(extractor(reference), extractor(images))
    assert value == pytest.approx(expected, rel=1e-4)


def test_fid_needs_two_images():
    reference = torch.rand(10, 1, 8, 8)
    with pytest.raises(ValueError, match="at least 2"):
        FIDScorer(TinyConvExtractor(), reference[:1])
    scorer = FIDScorer(TinyConvExtractor(), reference)
    with pytest.raises(ValueError, match="at least 2"):
        scorer.score(reference[:1])
    assert scorer.score(reference[:2]) >= 0.0


def test_fid_of_non_finite_images_is_nan_and_scorer_recovers():
    reference = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    scorer = FIDScorer(TinyConvExtractor(), reference)
    assert math.isnan(scorer.score(torch.full((4, 1, 8, 8), float("nan"))))
    assert abs(scorer.score(reference)) < 1e-3


def test_fid_rejects_bad_batch_size():
    with pytest.raises(ValueError, match="'batch_size'.*Got 0 instead"):
        FIDScorer(TinyConvExtractor(), torch.rand(4, 1, 8, 8), batch_size=0)


def test_fid_clamps_tiny_negative_values_to_zero(monkeypatch):
    scorer = FIDScorer(TinyConvExtractor(), torch.rand(6, 1, 8, 8))
    monkeypatch.setattr(scorer._fid, "compute", lambda: torch.tensor(-1e-9))
    assert scorer.score(torch.rand(4, 1, 8, 8)) == 0.0
