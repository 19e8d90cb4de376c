"""Nested (tail) dropout: one wide run in which every prefix of the latent units decodes.

The strongest one-run competitor to ALD (docs/comparison.md, "Nested dropout"). A
fixed-size run at the grid's widest n_z (``train.nested_dropout=true``) draws, for each
training sample, a prefix length k and zeroes z[k:] before decoding, so the first k
units alone must carry what a k-unit VAE would (Rippel, Gelbart & Adams 2014, "Learning
ordered representations with nested dropout"; ``ragulpr/taildropout`` in PyTorch). At
the end of the run each prefix is cut out exactly (:func:`prefix_model`: the surgery
that removes units equals setting them to 0) and evaluated on the validation split with
the run's own :class:`~ald_tune.engine.evaluate.Evaluator` (the grid's FID scorer and
silhouette): one run gives the whole metrics-against-n_z curve
(:func:`evaluate_prefixes`), which the report judges with the grid's criterion
(:mod:`ald_tune.report.nested`).

Example:
    >>> import torch
    >>> from ald_tune.engine.model import MLPNets, VAE
    >>> vae = VAE(MLPNets((1, 4, 4), hidden=(8,), n_z=6))
    >>> gen = torch.Generator().manual_seed(0)
    >>> loss, recon, kl = nested_loss(vae, torch.rand(5, 1, 4, 4), 1.0, [2, 4, 6], gen)
    >>> prefix_model(vae, 2).n_z, prefix_sizes([2, 4, 8, 16], 6)
    (2, [2, 4, 6])
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from typing import Any

import torch


def prefix_sizes(candidates: Sequence[int], n_z: int) -> list[int]:
    """The prefix lengths a nested run trains and evaluates: the candidate sizes (the
    grid's n_z values) that fit in its ``n_z`` units, and ``n_z`` itself (the whole
    model), sorted."""
    return sorted({int(k) for k in candidates if 1 <= int(k) <= n_z} | {int(n_z)})


def sample_prefixes(n: int, sizes: Sequence[int], generator: torch.Generator) -> torch.Tensor:
    """One prefix length per sample, uniform over ``sizes``: (n,) int64 on the CPU.

    Rippel et al. draw the truncation index from a geometric distribution over every
    unit, which spends most updates on the first few units; Matryoshka Representation
    Learning (Kusupati et al., NeurIPS 2022) trains a fixed set of nested sizes with
    equal weight. We read the curve at the grid's n_z values only, so each of those
    prefixes gets an equal share of the samples (as each grid trial trains its own size
    on all of them) and no update goes to a length that is never read; drawn per sample
    rather than summed over sizes, a step costs one decoder pass, as a grid trial's does.
    """
    table = torch.as_tensor(list(sizes), dtype=torch.long)
    return table[torch.randint(len(table), (n,), generator=generator)]


def prefix_mask(k: torch.Tensor, n_z: int) -> torch.Tensor:
    """(B, n_z) float mask: 1 for the units before each sample's prefix length ``k``."""
    return (torch.arange(n_z, device=k.device)[None, :] < k[:, None]).float()


def nested_loss(
    model: Any,
    x: torch.Tensor,
    beta: float,
    sizes: Sequence[int],
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The negative ELBO of a batch with each sample's tail of units dropped:
    (loss, recon, kl) as tensors, averaged over the batch.

    z[k:] is set to 0 (the prior's mean) before decoding, and the KL counts the kept
    units only: each sample's loss is then exactly the ELBO of a k-unit VAE that shares
    the wide model's weights, so training minimises the average of the prefix models'
    own objectives, the ones their grid counterparts minimise. (Keeping the KL of the
    dropped units would charge a prefix model for units it never decodes, pushing every
    tail unit towards the prior beyond what its own prefix asks.)
    """
    mu, logvar = model.encode(x)  # (B, n_z) each
    keep = prefix_mask(sample_prefixes(len(x), sizes, generator).to(mu.device), mu.shape[1])
    z = (mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)) * keep  # (B, n_z)
    recon = model.recon_nll(x, z).mean()
    kl = (0.5 * (mu.pow(2) + logvar.exp() - logvar - 1) * keep).sum(1).mean()
    return recon + beta * kl, recon, kl


def prefix_model(model: Any, k: int) -> Any:
    """A copy of ``model`` cut to its first ``k`` units: exactly the wide model with
    z[k:] = 0 (see :mod:`ald_tune.engine.surgery`), a VAE of its own at n_z = k."""
    if not 1 <= k <= model.n_z:
        raise ValueError(f"prefix length must be in [1, n_z={model.n_z}]. Got {k!r} instead.")
    cut = copy.deepcopy(model)
    if k < model.n_z:
        cut.remove_units(list(range(k, model.n_z)))
    return cut


def evaluate_prefixes(
    model: Any, evaluator: Any, sizes: Sequence[int], epoch: int, kl_threshold: float
) -> dict[int, dict[str, float]]:
    """The metrics-against-n_z curve of a nested run: each prefix evaluated on the
    validation split, as a grid trial of that size is at its last epoch.

    Args:
        model: the wide VAE.
        evaluator: the run's :class:`~ald_tune.engine.evaluate.Evaluator` (same FID
            scorer, reference images, silhouette samples and noise seed as every epoch).
        sizes: the prefix lengths (:func:`prefix_sizes`).
        epoch: the epoch the evaluation seeds its noise with (the last one).
        kl_threshold: ``ald.kl_threshold``, for each prefix's ``units_in_use``.

    Returns:
        ``{k: metrics}``: the evaluator's metrics of the k-unit prefix, plus
        ``units_in_use`` and ``eval_time_s`` (seconds this prefix took).
    """
    curve: dict[int, dict[str, float]] = {}
    for k in sizes:
        t0 = time.perf_counter()
        record, unit_kl = evaluator(prefix_model(model, int(k)), epoch)
        used = sum(1 for v in unit_kl if math.isfinite(v) and v >= kl_threshold)
        curve[int(k)] = {
            **{m: float(v) for m, v in record.items()},
            "units_in_use": float(used),
            "eval_time_s": time.perf_counter() - t0,
        }
    return curve
