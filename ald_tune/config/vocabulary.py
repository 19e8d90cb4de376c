"""The vocabulary, defined once: every metric a run records (its direction and label), and
the dataset names.

Every list of metric names elsewhere (what MLflow tracks, what the report ranks,
what the figures draw, what Optuna and ASHA may minimise, what the ``paper`` rule
may vote on) is derived from :data:`METRICS` here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Metric:
    """One recorded quantity.

    Attributes:
        name: the key in every epoch record, Tune result and MLflow run.
        better: ``min`` (lower is better), ``max`` (higher is better) or ``""`` (neither).
        label: the axis label, with its unit.
    """

    name: str
    better: str
    label: str

    @property
    def axis_label(self) -> str:
        """The label with the direction, for figure axes."""
        arrow = {"min": " (lower is better)", "max": " (higher is better)"}.get(self.better, "")
        return self.label + arrow


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("recon_loss", "min", "recon loss (BCE or Gaussian NLL, nats)"),
        Metric("kl", "", "KL to the prior (nats)"),
        Metric("neg_elbo", "min", "-ELBO (nats)"),
        Metric("fid_gen", "min", "FID of generated samples"),
        Metric("fid_recon", "min", "FID of reconstructions"),
        Metric("silhouette", "max", "silhouette of posterior means"),
        Metric("accuracy", "max", "clustering accuracy"),
        Metric("active_units", "", "active units (Cov > 0.01)"),
        Metric("units_in_use", "", "units in use (mean KL >= ald.kl_threshold)"),
        Metric("train_loss", "min", "training -ELBO (nats)"),
    )
}

#: Which direction is better, for every metric that has one.
DIRECTIONS = {m.name: m.better for m in METRICS.values() if m.better}
#: The validation metrics the grid's table ranks (mean rank) and shows.
RANKED = ("recon_loss", "fid_gen", "fid_recon", "neg_elbo", "silhouette")
#: Averaged into the report's tables.
COLUMNS = (*RANKED, "kl", "accuracy", "active_units", "units_in_use")
#: Metrics Optuna may minimise (lower is better; kl too, as the rate of the VAE).
MINIMISED = (*(m.name for m in METRICS.values() if m.better == "min"), "kl")
#: Metrics the grid's plateau criterion may use (quality measures with a direction).
CRITERION = tuple(m for m in DIRECTIONS if m != "train_loss")
#: The plateau test's metrics by default: the report's criterion, and what the ``ald-tune``
#: rule compares a trial with its twin on (generative quality, each with a direction).
PLATEAU = ("recon_loss", "fid_gen", "fid_recon")
#: The prefix of a paired trial's twin's metrics in an epoch's record (``twin.recon_loss``).
TWIN_PREFIX = "twin."
#: What ``tune.metric`` may name (validation metrics of the last epoch).
TUNE_METRICS = ("neg_elbo", "recon_loss", "fid_gen", "fid_recon")
#: The metrics the ``paper`` rule's slope test may vote on.
VOTING = ("recon_loss", "fid_gen", "fid_recon", "silhouette")
#: What an epoch sends to MLflow (step = epoch) and what every trial record keeps.
TRACKED = (
    "n_z",
    *METRICS,
    "train_time_s",
    "eval_time_s",
    "cpu_time_s",
    "gpu_time_s",
    "stopped",
    "removed",
    # during a paired trial of the ald-tune rule, the twin's plateau metrics
    *(TWIN_PREFIX + m for m in PLATEAU),
)
#: A nested-dropout run's last epoch holds its prefix curve under this key:
#: ``{"<k>": {metric: value}}``, one entry per prefix length k
#: (:mod:`ald_tune.engine.nested_dropout`).
PREFIX_KEY = "prefixes"
#: What each prefix of that curve keeps (in trial records, MLflow and the report).
PREFIX_METRICS = (*COLUMNS, "eval_time_s")
#: The MLflow key of a prefix metric (step = the prefix length k), e.g. ``prefix.fid_gen``.
PREFIX_MLFLOW = "prefix."


def history_row(epoch: int, values: Mapping[str, Any]) -> dict[str, float]:
    """One epoch of a trial record: ``epoch`` plus every :data:`TRACKED` key present, as
    floats (what every producer of a record keeps: Tune's results and files, MLflow)."""
    row: dict[str, float] = {"epoch": int(epoch)}
    for key in TRACKED:
        v = values.get(key)
        if isinstance(v, (int, float)):  # bools too (stopped, removed)
            row[key] = float(v)
    return row


def prefix_curve(value: Any) -> dict[int, dict[str, float]]:
    """A nested run's prefix curve as its last record holds it (``{"<k>": {metric:
    value}}``, under :data:`PREFIX_KEY`), as ``{k: {metric: float}}`` with the
    :data:`PREFIX_METRICS` present, sorted by k; ``{}`` for anything else."""
    if not isinstance(value, Mapping):
        return {}
    out = {}
    for k, vals in value.items():
        try:
            size = float(k)
        except (TypeError, ValueError):
            continue
        if not (math.isfinite(size) and size == int(size) and isinstance(vals, Mapping)):
            continue
        out[int(size)] = {
            m: float(vals[m])
            for m in PREFIX_METRICS
            if isinstance(vals.get(m), (int, float)) and not isinstance(vals.get(m), bool)
        }
    return dict(sorted(out.items()))


#: Per-epoch quantities the figures draw against epoch.
CURVES = ("n_z", "recon_loss", "fid_gen", "fid_recon", "silhouette", "kl")


def axis_label(key: str) -> str:
    """A figure axis label for any recorded key (``n_z`` included)."""
    if key == "n_z":
        return "n_z (latent units)"
    m = METRICS.get(key)
    return m.axis_label if m else key


#: Every dataset ``data.name`` may name.
DATASETS = (
    "digits",
    "mnist",
    "fashion_mnist",
    "eurosat",
    "npz",
    "folder",
    "breast_cancer",
    "manifold",
)
#: The datasets that read ``data.path``: your own file or folder, or the MNIST family's
#: idx files. The others (bundled, generated, or under ``data.root``) ignore it.
PATH_DATASETS = ("npz", "folder", "mnist", "fashion_mnist")
