"""Nested (tail) dropout: prefix sampling, the loss, exact prefix models, the curve."""

from __future__ import annotations

import math

import pytest
import torch

from ald_tune.config.schema import load_config
from ald_tune.engine.model import VAE, MLPNets
from ald_tune.engine.nested_dropout import (
    evaluate_prefixes,
    nested_loss,
    prefix_mask,
    prefix_model,
    prefix_sizes,
    sample_prefixes,
)
from ald_tune.engine.trainer import Trainer
from ald_tune.errors import ConfigError


def tiny_vae(n_z: int = 8, seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    return VAE(MLPNets((1, 4, 4), hidden=(16,), n_z=n_z))


def test_prefix_sizes_are_the_candidates_that_fit_plus_the_whole_model():
    assert prefix_sizes([2, 4, 6, 8, 12, 16, 64], 16) == [2, 4, 6, 8, 12, 16]
    assert prefix_sizes([16, 2, 2, 100], 10) == [2, 10]  # sorted, unique, widest = n_z
    assert prefix_sizes([], 5) == [5]


def test_prefix_lengths_are_drawn_uniformly_over_the_sizes_and_reproducibly():
    sizes = [2, 4, 8]
    k = sample_prefixes(30_000, sizes, torch.Generator().manual_seed(1))
    assert k.dtype == torch.long and k.shape == (30_000,)
    counts = {s: int((k == s).sum()) for s in sizes}
    assert set(k.unique().tolist()) == set(sizes)
    assert all(abs(c / 30_000 - 1 / 3) < 0.02 for c in counts.values()), counts
    again = sample_prefixes(30_000, sizes, torch.Generator().manual_seed(1))
    assert torch.equal(k, again)  # the run's generator alone decides (a resume repeats it)


def test_prefix_mask_keeps_the_first_k_units():
    mask = prefix_mask(torch.tensor([1, 3, 4]), 4)
    assert mask.tolist() == [[1, 0, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]


def test_the_loss_drops_the_tail_and_charges_kl_for_kept_units_only():
    vae, x = tiny_vae(), torch.rand(6, 1, 4, 4)
    gen = torch.Generator().manual_seed(0)
    # every sample keeps the whole model: the plain ELBO, same noise
    torch.manual_seed(3)
    whole = nested_loss(vae, x, 1.0, [8], gen)
    torch.manual_seed(3)
    plain = vae.loss(x, 1.0)
    for a, b in zip(whole, plain):
        torch.testing.assert_close(a, b)
    # one unit kept: the KL is that unit's alone
    mu, logvar = vae.encode(x)
    kl0 = (0.5 * (mu[:, 0] ** 2 + logvar[:, 0].exp() - logvar[:, 0] - 1)).mean()
    _, _, kl = nested_loss(vae, x, 1.0, [1], gen)
    torch.testing.assert_close(kl, kl0)
    # the dropped units get no gradient from the decoder side: dec_in's columns k: stay 0
    vae.zero_grad()
    nested_loss(vae, x, 1.0, [3], gen)[0].backward()
    assert torch.count_nonzero(vae.nets.dec_in.weight.grad[:, 3:]) == 0
    assert torch.count_nonzero(vae.nets.dec_in.weight.grad[:, :3]) > 0


def test_every_prefix_decodes_as_the_wide_model_with_its_tail_zeroed():
    vae = tiny_vae()
    z = torch.randn(5, 8)
    for k in (1, 3, 8):
        cut = prefix_model(vae, k)
        assert cut.n_z == k and vae.n_z == 8  # a copy: the wide model is untouched
        masked = z * prefix_mask(torch.full((5,), k), 8)
        torch.testing.assert_close(cut.decode(z[:, :k]), vae.decode(masked))
        mu_cut, _ = cut.encode(torch.rand(2, 1, 4, 4).clamp(0, 1))
        assert mu_cut.shape == (2, k)
    with pytest.raises(ValueError, match=r"prefix length must be in \[1, n_z=8\]"):
        prefix_model(vae, 0)


class _FakeEvaluator:
    """Returns the n_z it is shown (as recon_loss) and one KL per unit."""

    def __call__(self, model, epoch):
        return {"recon_loss": float(model.n_z), "fid_gen": 1.0}, [0.1] * (model.n_z - 1) + [0.0]


def test_the_curve_has_one_entry_per_prefix_with_its_own_metrics():
    curve = evaluate_prefixes(tiny_vae(), _FakeEvaluator(), [2, 4, 8], epoch=0, kl_threshold=0.05)
    assert list(curve) == [2, 4, 8]
    assert [c["recon_loss"] for c in curve.values()] == [2.0, 4.0, 8.0]
    assert [c["units_in_use"] for c in curve.values()] == [1.0, 3.0, 7.0]
    assert all(c["eval_time_s"] >= 0 for c in curve.values())


def tiny_cfg(cache_dir, *extra):
    return load_config(
        "search_spaces/digits.yaml",
        overrides=[
            "train.epochs=2",
            "model.hidden=[16]",
            f"eval.cache_dir={cache_dir}",
            "eval.n_fid=50",
            "grid.n_z=[2, 4, 6, 8, 12]",
            "train.nested_dropout=true",
            *extra,
        ],
    )


def test_a_nested_run_ends_with_one_curve_entry_per_grid_n_z(cache_dir):
    trainer = Trainer(tiny_cfg(cache_dir), fixed_n_z=8)
    results = list(trainer)
    assert trainer.prefixes == [2, 4, 6, 8] and trainer.model.n_z == 8
    assert "prefixes" not in results[0].record  # only the last epoch evaluates the prefixes
    curve = results[-1].record["prefixes"]
    assert list(curve) == ["2", "4", "6", "8"]  # one per grid n_z that fits (str: JSON, Tune)
    for k, c in curve.items():
        assert all(math.isfinite(c[m]) for m in ("recon_loss", "fid_gen", "fid_recon", "kl"))
        assert -1 <= c["silhouette"] <= 1 and c["units_in_use"] <= int(k)
    # the whole model's prefix is the epoch's own evaluation, same noise
    assert curve["8"]["recon_loss"] == pytest.approx(results[-1].record["recon_loss"])
    # the prefix evaluations count as the last epoch's evaluation time
    assert results[-1].record["eval_time_s"] >= sum(c["eval_time_s"] for c in curve.values())


def test_nested_dropout_needs_a_fixed_size_run(cache_dir):
    with pytest.raises(ConfigError, match=r"train.nested_dropout=true .* --fixed-nz"):
        Trainer(tiny_cfg(cache_dir))
