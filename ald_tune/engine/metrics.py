"""Evaluation metrics: small functions returning plain Python floats.

Each metric states its range, which direction is better and what it returns in
degenerate cases. :class:`FIDScorer` takes a feature extractor from
:mod:`ald_tune.engine.features` (which re-exports it).

Example:
    >>> import torch
    >>> unit_kl(torch.zeros(4, 3), torch.zeros(4, 3)).tolist()
    [0.0, 0.0, 0.0]
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "active_units",
    "clustering_accuracy",
    "kmeans_labels",
    "recon_loss",
    "silhouette",
    "unit_kl",
]


def recon_loss(x: Tensor, x_hat: Tensor) -> float:
    """Mean over samples of the binary cross-entropy summed over pixels.

    Args:
        x: Targets, shape ``(N, ...)``, values in ``[0, 1]``.
        x_hat: Reconstruction probabilities, same shape as ``x``, values in
            ``[0, 1]`` (decoder outputs after the sigmoid).

    Returns:
        The loss in nats per sample. Range ``[0, inf)`` for binary ``x``
        (for grey-level ``x`` the minimum is the entropy of ``x``, above 0);
        lower is better. Probabilities of exactly 0 or 1 are handled as torch's
        BCE does (log clamped at -100), so the value is always finite.
        ``N == 0`` returns ``nan``.

    Raises:
        ValueError: If the shapes of ``x`` and ``x_hat`` differ.
    """
    if x.shape != x_hat.shape:
        raise ValueError(
            f"recon_loss needs x and x_hat of the same shape. Got {tuple(x.shape)} "
            f"and {tuple(x_hat.shape)} instead."
        )
    if x.shape[0] == 0:
        return float("nan")
    bce = torch.nn.functional.binary_cross_entropy(
        x_hat.double(), x.double(), reduction="none"
    )  # (N, ...)
    return float(bce.reshape(x.shape[0], -1).sum(dim=1).mean())


def unit_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """Per-unit KL divergence of the posterior to the standard normal prior.

    ``KL(N(mu, exp(logvar)) || N(0, 1)) = 0.5 * (mu^2 + exp(logvar) - logvar - 1)``,
    averaged over samples.

    Args:
        mu: Posterior means, shape ``(N, n_z)``.
        logvar: Posterior log-variances, shape ``(N, n_z)``.

    Returns:
        Tensor of shape ``(n_z,)`` in nats, each entry in ``[0, inf)``. A unit
        near 0 carries no information about the input (it is "collapsed" to
        the prior); ald-tune removes the lowest-KL units first.

    Raises:
        ValueError: If ``mu`` and ``logvar`` are not matching 2-D tensors.
    """
    if mu.ndim != 2 or mu.shape != logvar.shape:
        raise ValueError(
            "unit_kl needs mu and logvar of the same shape (N, n_z). Got "
            f"{tuple(mu.shape)} and {tuple(logvar.shape)} instead."
        )
    kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0)  # (N, n_z)
    return kl.mean(dim=0)


def active_units(mu: Tensor, threshold: float = 0.01) -> int:
    """Number of active latent units (Burda et al., 2016).

    Unit ``u`` is active when ``Cov_x(E[z_u | x]) = Var_x(mu_u) > threshold``.

    Args:
        mu: Posterior means of validation samples, shape ``(N, n_z)``.
        threshold: Variance above which a unit counts as active.

    Returns:
        An int in ``[0, n_z]``; more active units means more of the latent
        space is used (not by itself better). Fewer than 2 samples: the
        variance is undefined and 0 is returned.

    Raises:
        ValueError: If ``mu`` is not 2-D.
    """
    if mu.ndim != 2:
        raise ValueError(f"active_units needs mu of shape (N, n_z). Got {tuple(mu.shape)} instead.")
    if mu.shape[0] < 2:
        return 0
    # Population variance (divide by N), as in Burda et al.'s estimator.
    var = mu.double().var(dim=0, unbiased=False)  # (n_z,)
    return int((var > threshold).sum())


def kmeans_labels(z: np.ndarray, n_clusters: int, seed: int, n_init: int = 1) -> np.ndarray:
    """K-means cluster labels of latents, deterministic given ``seed``.

    Args:
        z: Latents, shape ``(N, n_z)``; a torch tensor is accepted too.
        n_clusters: Number of clusters; reduced to ``N`` when ``N`` is smaller.
        seed: Random state of K-means.
        n_init: K-means restarts (scikit-learn's default for k-means++ init is 1;
            more restarts cost proportionally more every epoch).

    Returns:
        Integer labels, shape ``(N,)``.
    """
    from sklearn.cluster import KMeans

    z = _as_2d_numpy(z)
    k = max(1, min(int(n_clusters), z.shape[0]))
    return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(z)


def silhouette(
    z: np.ndarray | Tensor,
    labels: np.ndarray | Tensor | None = None,
    *,
    n_clusters: int = 10,
    seed: int = 0,
) -> float:
    """Silhouette score of latents, with K-means pseudo-labels by default.

    Args:
        z: Posterior latents (usually the means), shape ``(N, n_z)``; ``n_z``
            may be 1.
        labels: Cluster or class labels, shape ``(N,)``. ``None`` clusters
            ``z`` with K-means into ``n_clusters`` groups first.
        n_clusters: Number of K-means clusters when ``labels`` is ``None``.
        seed: K-means random state when ``labels`` is ``None``.

    Returns:
        A float in ``[-1, 1]``; higher is better (tighter, better separated
        clusters). ``nan`` means undefined: fewer than 2 distinct labels, or
        ``N <= n_labels``.

    Raises:
        ValueError: If ``labels`` does not have one entry per row of ``z``.
    """
    from sklearn.metrics import silhouette_score

    z = _as_2d_numpy(z)
    # The authors' code scores ground-truth labels; ald-tune defaults to K-means (no labels needed).
    if labels is None:
        if z.shape[0] < 2:
            return float("nan")
        labels = kmeans_labels(z, n_clusters, seed)
    labels = np.asarray(labels).reshape(-1)
    if labels.shape[0] != z.shape[0]:
        raise ValueError(
            f"silhouette needs one label per sample. Got {labels.shape[0]} labels "
            f"for {z.shape[0]} samples instead."
        )
    n_labels = np.unique(labels).size
    if n_labels < 2 or z.shape[0] <= n_labels:
        return float("nan")
    score = float(silhouette_score(z, labels))
    return score if math.isfinite(score) else float("nan")


def clustering_accuracy(y_true: np.ndarray | Tensor, y_pred: np.ndarray | Tensor) -> float:
    """Accuracy of cluster labels under the best one-to-one label matching.

    The matching of predicted clusters to true classes is found with the
    Hungarian algorithm (``scipy.optimize.linear_sum_assignment``), so label
    names do not matter: a permutation of the true labels scores 1.0.

    Args:
        y_true: True class labels, shape ``(N,)``.
        y_pred: Cluster labels, shape ``(N,)``.

    Returns:
        A float in ``[0, 1]``; higher is better. Clusters left unmatched (more
        clusters than classes) count as errors. ``N == 0`` returns ``nan``.

    Raises:
        ValueError: If the label arrays differ in length.
    """
    from scipy.optimize import linear_sum_assignment

    y_true = np.asarray(_to_numpy(y_true)).reshape(-1)
    y_pred = np.asarray(_to_numpy(y_pred)).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            "clustering_accuracy needs y_true and y_pred of the same length. Got "
            f"{y_true.shape[0]} and {y_pred.shape[0]} instead."
        )
    if y_true.size == 0:
        return float("nan")
    true_ids, true_idx = np.unique(y_true, return_inverse=True)
    pred_ids, pred_idx = np.unique(y_pred, return_inverse=True)
    counts = np.zeros((pred_ids.size, true_ids.size), dtype=np.int64)
    np.add.at(counts, (pred_idx, true_idx), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / y_true.size)


def _to_numpy(a: np.ndarray | Tensor) -> np.ndarray:
    if isinstance(a, Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def _as_2d_numpy(z: np.ndarray | Tensor) -> np.ndarray:
    z = _to_numpy(z).astype(np.float64, copy=False)
    if z.ndim == 1:  # a single latent unit given as (N,)
        z = z[:, None]
    if z.ndim != 2:
        raise ValueError(f"Latents must have shape (N, n_z). Got {z.shape} instead.")
    return z
