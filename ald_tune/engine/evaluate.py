"""Per-epoch evaluation on the validation split: the four ALD metrics and more.

Every epoch records (the method's four metrics, and more):

- ``recon_loss``: mean per-sample BCE summed over pixels (lower is better);
- ``kl`` and ``neg_elbo`` = recon_loss + kl (nats, lower is better; no β,
  so runs with different β compare on the true bound);
- ``fid_gen``: FID of decoded prior samples z ~ N(0, I) against a fixed
  reference set of real validation images (lower is better);
- ``fid_recon``: FID of the reconstructions of that reference set (lower);
- ``silhouette`` of posterior means of validation samples (higher);
- ``accuracy`` (clustering accuracy, when labels exist) and ``active_units``.

All randomness here comes from a generator seeded by (seed, epoch), so the
training RNG stream is untouched and a resumed run evaluates identically.
"""

from __future__ import annotations

import os
from dataclasses import fields
from typing import Any

import torch

from ald_tune.config.paths import default_cache_dir
from ald_tune.data.datasets import ImageData, check_enough_samples
from ald_tune.engine import metrics
from ald_tune.engine.features import FIDScorer, get_extractor
from ald_tune.errors import ConfigError, DataError, shown

#: The fix when the validation split itself is too small: no eval setting can help.
MORE_DATA = "raise data.limit or data.val_fraction (or use more data)"


def check_eval_sizes(eval_cfg, val: ImageData) -> None:
    """Fail before training when the validation split is too small for the evaluation.

    The fix names the eval field while lowering it can help, else the split's size.
    """
    for name, needed in (("n_fid", eval_cfg.n_fid), ("n_silhouette", eval_cfg.n_silhouette)):
        if name == "n_fid" and not val.is_image:
            continue  # FID compares images; feature vectors have none
        low = _smallest(eval_cfg, name)
        fix = None
        if val.n_samples < low:
            fix = f"{MORE_DATA}: eval.{name} cannot go below {low}"
        check_enough_samples(
            val, needed, what=f"eval.{name}", source=f"{val.name} validation split", fix=fix
        )


def _smallest(eval_cfg, name: str) -> int:
    """The smallest value the config allows for eval field ``name``."""
    return {f.name: f for f in fields(eval_cfg)}[name].metadata["check"].low


def check_cache_dir(eval_cfg, images: bool = True) -> None:
    """The classifier FID extractor's cache folder can be made and written.

    Raises:
        ConfigError: naming the folder (``eval.cache_dir``) and the fix.
    """
    if eval_cfg.fid_extractor != "classifier" or not images:
        return
    folder = eval_cfg.cache_dir or default_cache_dir()
    fix = "Fix: set eval.cache_dir to a writable folder."
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"eval.cache_dir {shown(folder)} cannot be created ({exc.strerror or exc}). {fix}"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"eval.cache_dir {shown(folder)} is not writable. {fix}")


def cluster_count(eval_cfg, val: ImageData) -> int:
    """K-means' k: ``eval.n_clusters``, else the number of classes the labels hold (two or
    more: labels of one class say nothing about clusters, and k=1 would make the
    silhouette NaN every epoch), else 10."""
    if eval_cfg.n_clusters:
        return int(eval_cfg.n_clusters)
    classes = val.n_classes
    return classes if classes is not None and classes >= 2 else 10


def check_clusters(eval_cfg, val: ImageData) -> None:
    """Fail before training when the silhouette could only be NaN for the whole run: fewer
    silhouette samples than clusters, or ground-truth labels of one class.

    Raises:
        ConfigError: naming the field, the value and the fix.
    """
    n = min(eval_cfg.n_silhouette, val.n_samples)
    if eval_cfg.silhouette_labels == "true":
        if val.y is None:
            raise ConfigError(
                f"eval.silhouette_labels='true' needs labels; {val.name} has none. "
                "Fix: eval.silhouette_labels=kmeans."
            )
        classes = int(val.y[:n].unique().numel())
        if classes < 2:
            raise ConfigError(
                f"eval.silhouette_labels='true': the first {n} validation samples of "
                f"{val.name} hold {classes} class; a silhouette needs two. "
                "Fix: eval.silhouette_labels=kmeans."
            )
        return
    k = cluster_count(eval_cfg, val)
    if n <= k and val.n_samples < eval_cfg.n_silhouette:
        # The split is the limit, not eval.n_silhouette: raising it cannot help.
        raise DataError(
            f"the {val.name} validation split has {val.n_samples} sample(s), too few for a "
            f"silhouette over K-means with k={k} clusters (it needs more samples than "
            f"clusters; eval.n_silhouette={eval_cfg.n_silhouette} cannot add any). "
            f"Fix: {MORE_DATA}."
        )
    if n <= k:
        raise ConfigError(
            f"eval.n_silhouette={eval_cfg.n_silhouette} gives {n} samples for K-means with "
            f"k={k} clusters; the silhouette needs more samples than clusters. "
            f"Fix: raise eval.n_silhouette above {k}, or lower eval.n_clusters."
        )


class Evaluator:
    """Computes one epoch's metrics for a model of any n_z.

    Args:
        eval_cfg: an :class:`ald_tune.config.EvalConfig`.
        train: the training split (the classifier FID extractor learns on it).
        val: the validation split (every metric is computed on it).
        seed: the run's seed.
        device: where the model lives.
        fid: compute FID (images only); without it the metrics are the rest.
    """

    def __init__(
        self,
        eval_cfg,
        train: ImageData,
        val: ImageData,
        seed: int,
        device: torch.device,
        *,
        fid: bool = True,
    ) -> None:
        if fid:
            check_eval_sizes(eval_cfg, val)
        self.cfg, self.val, self.seed, self.device = eval_cfg, val, seed, device
        self.fid: FIDScorer | None = None
        if fid and val.is_image:  # FID compares images; feature vectors have none
            cache = eval_cfg.cache_dir or default_cache_dir()
            extractor = get_extractor(
                eval_cfg.fid_extractor,
                train_x=train.x,
                train_y=train.y,
                cache_dir=cache,
                seed=0,
                device=str(device),
            )
            # Authors: the reference is the first 100 *training* images; we use validation
            # images so that fid_recon measures generalisation, not memorisation.
            self.reference = val.x[: eval_cfg.n_fid].to(device)
            self.fid = FIDScorer(extractor, self.reference, device=str(device))
        self.n_clusters = cluster_count(eval_cfg, val)
        self.sil_x = val.x[: eval_cfg.n_silhouette].to(device)
        self.sil_y = None if val.y is None else val.y[: eval_cfg.n_silhouette].numpy()
        self.val_x = val.x.to(device)

    @property
    def fid_extractor(self) -> str:
        """The FID features' name, or ``none`` for feature vectors (no FID)."""
        return self.fid.extractor_name if self.fid is not None else "none"

    @torch.no_grad()
    def __call__(
        self, model, epoch: int, clusters: bool = True
    ) -> tuple[dict[str, float], list[float]]:
        """Return (metrics, per-unit mean KL) for ``model`` after ``epoch``; without
        ``clusters``, no silhouette or accuracy (a paired trial's twin needs neither)."""
        model.eval()
        gen = torch.Generator(device="cpu").manual_seed(self.seed * 1_000_003 + epoch)
        recon, mus, logvars = 0.0, [], []
        for xb in self.val_x.split(500):
            mu, logvar = model.encode(xb)
            eps = torch.randn(mu.shape, generator=gen).to(mu.device)
            recon += float(model.recon_nll(xb, mu + eps * torch.exp(0.5 * logvar)).double().sum())
            mus.append(mu)
            logvars.append(logvar)
        n = len(self.val_x)
        mu, logvar = torch.cat(mus), torch.cat(logvars)  # (N, n_z)
        unit_kl = metrics.unit_kl(mu, logvar)
        out: dict[str, Any] = {"recon_loss": recon / n, "kl": float(unit_kl.sum())}
        out["neg_elbo"] = out["recon_loss"] + out["kl"]  # the ELBO itself has no beta
        out["active_units"] = metrics.active_units(mu)
        if self.fid is not None:
            out.update(self._fids(model, gen))
        if clusters:
            out.update(self._clusters(mu[: len(self.sil_x)]))
        model.train()
        return out, [float(v) for v in unit_kl]

    @torch.no_grad()
    def removal_cost(self, model, units) -> list[float]:
        """Relative rise of the reconstruction loss when each unit alone is set to 0.

        On the evaluation subset, from the posterior means: exactly what removing the
        unit does to the decoder before any retraining (see ``VAE.remove_units``).
        """
        was_training = model.training
        model.eval()
        mu = model.encode(self.sil_x)[0]  # (N, n_z)
        base = float(model.recon_nll(self.sil_x, mu).double().mean())
        scale = abs(base) or 1.0  # a Gaussian NLL may be near 0 or negative
        out = []
        for u in units:
            cut = mu.clone()
            cut[:, u] = 0.0
            out.append((float(model.recon_nll(self.sil_x, cut).double().mean()) - base) / scale)
        model.train(was_training)
        return out

    def _fids(self, model, gen: torch.Generator) -> dict[str, float]:
        assert self.fid is not None
        z = torch.randn(len(self.reference), model.n_z, generator=gen).to(self.device)
        fid_gen = self.fid.score(model.decode(z))
        # Reconstructions from the posterior means (deterministic given the model).
        fid_recon = self.fid.score(model.decode(model.encode(self.reference)[0]))
        return {"fid_gen": fid_gen, "fid_recon": fid_recon}

    def _clusters(self, mu: torch.Tensor) -> dict[str, float]:
        # Posterior means, not sampled z: sampled noise dimensions lower the silhouette
        # mechanically, which made the authors' vote rise whenever units were removed.
        z = mu.double().cpu().numpy()
        clusters = metrics.kmeans_labels(z, self.n_clusters, self.seed)  # once: both uses
        labels = self.sil_y if self.cfg.silhouette_labels == "true" else clusters
        out = {"silhouette": metrics.silhouette(z, labels)}
        if self.sil_y is not None:
            out["accuracy"] = metrics.clustering_accuracy(self.sil_y, clusters)
        return out
