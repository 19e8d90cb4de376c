"""The config's seven sections (data, model, train, ald, eval, grid, tune): frozen
dataclasses whose every field declares its default, its constraint and its help text
(:func:`ald_tune.config.constraints.param`), checked at construction. The five of one run
are here; the sweep's two (grid, tune) are in :mod:`ald_tune.config.sweep_sections`, and
:data:`SECTIONS` names all seven.

:mod:`ald_tune.config.schema` composes them into :class:`~ald_tune.config.schema.Config`
and loads it from a search-space file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ald_tune.config.constraints import (
    MAX_EPOCHS,
    MAX_NZ,
    MAX_WIDTH,
    Bool,
    Choice,
    Float,
    ImportPath,
    Int,
    IntTuple,
    Kwargs,
    Text,
    Votes,
    fail,
    param,
    validate_fields,
)
from ald_tune.config.kinds import RULES
from ald_tune.config.sweep_sections import GridConfig, TuneConfig
from ald_tune.config.vocabulary import DATASETS, PATH_DATASETS, VOTING

METRICS = VOTING
PAPER_VOTES = (("silhouette", "up"), ("fid_gen", "up"), ("fid_recon", "up"), ("recon_loss", "up"))


@dataclass(frozen=True)
class DataConfig:
    """Which data to train on (images or feature vectors) and how to split them."""

    name: str = param(
        "digits",
        Choice(options=DATASETS),
        "dataset: digits (bundled), mnist, fashion_mnist, eurosat, npz (your file: images or "
        "an (N, D) array), folder, breast_cancer (bundled, 569 x 30), manifold (synthetic, "
        "known dimension)",
    )
    path: str | None = param(
        None, Text(optional=True), "file or folder for npz/folder (or idx files for mnist)"
    )
    root: str | None = param(
        None, Text(optional=True), "download/cache folder for torchvision datasets"
    )
    download: bool = param(True, Bool(), "allow torchvision to download missing data")
    limit: int | None = param(
        None, Int(low=2, optional=True), "use only the first N images (quick runs)"
    )
    val_fraction: float = param(
        0.1,
        Float(low=0.0, high=1.0, low_open=True, high_open=True),
        "share of images held out for validation (paper: 0.1)",
    )
    split_seed: int = param(0, Int(low=0), "seed of the train/validation split")
    intrinsic_dim: int = param(
        3, Int(low=1, high=256), "manifold: the number of latent factors d (the true dimension)"
    )
    ambient_dim: int = param(64, Int(low=2, high=MAX_WIDTH), "manifold: the number of features D")
    noise: float = param(0.05, Float(low=0.0, high=10.0), "manifold: the features' noise sd")

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.name == "manifold" and self.intrinsic_dim >= self.ambient_dim:
            raise fail(
                "DataConfig",
                "intrinsic_dim",
                f"below ambient_dim={self.ambient_dim}",
                self.intrinsic_dim,
                "lower data.intrinsic_dim or raise data.ambient_dim",
            )
        if self.name in ("npz", "folder") and self.path is None:
            raise fail(
                "DataConfig",
                "path",
                f"a file or folder when name={self.name!r}",
                None,
                "set data.path to your data file or folder",
            )
        if self.path is not None and self.name not in PATH_DATASETS:
            raise fail(
                "DataConfig",
                "path",
                f"unset when name={self.name!r} (it reads no path; only {PATH_DATASETS} do)",
                self.path,
                "drop data.path, or set data.name=npz or folder for your own data",
            )


@dataclass(frozen=True)
class ModelConfig:
    """The VAE networks (n_z lives in ald.n_z_init / the grid, not here)."""

    arch: str = param(
        "auto", Choice(options=("auto", "mlp", "conv")), "auto: conv for 64x64 RGB, otherwise mlp"
    )
    hidden: tuple[int, ...] = param(
        (400, 400),
        IntTuple(low=1, high=MAX_WIDTH, unique=False),
        "MLP hidden sizes (paper: 400, 400)",
    )
    conv_channels: tuple[int, ...] = param(
        (32, 32, 32, 32),
        IntTuple(low=1, high=MAX_WIDTH, unique=False),
        "conv encoder channels, stride-2 4x4 each",
    )
    conv_hidden: tuple[int, ...] = param(
        (256, 256),
        IntTuple(low=1, high=MAX_WIDTH, unique=False),
        "conv net's linear layers before the heads",
    )
    factory: str | None = param(
        None,
        ImportPath(optional=True, max_len=300),
        "your own VAE: package.module:function, called as f(n_z=, sample_shape=, **kwargs); "
        "it must follow the latent-layer protocol (docs/own-model.md)",
    )
    kwargs: tuple[tuple[str, Any], ...] = param((), Kwargs(), "keyword arguments for model.factory")
    likelihood: str = param(
        "auto",
        Choice(options=("auto", "bernoulli", "gaussian")),
        "p(x|z): auto = bernoulli for images in [0, 1], gaussian for feature vectors",
    )
    gaussian_variance: str = param(
        "learned",
        Choice(options=("learned", "fixed")),
        "gaussian likelihood: a learned variance per feature, or fixed at 1 (standardised data)",
    )

    def __post_init__(self) -> None:
        validate_fields(self)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings, shared by ALD and the grid."""

    epochs: int = param(200, Int(low=1, high=MAX_EPOCHS), "epochs of training (paper: 200)")
    batch_size: int = param(64, Int(low=1, high=1_000_000), "minibatch size (paper: 64)")
    lr: float = param(1e-3, Float(low=0.0, low_open=True), "Adam learning rate (paper: 1e-3)")
    amsgrad: bool = param(True, Bool(), "Adam's amsgrad variant (paper: true)")
    optimizer: str = param(
        "adam", Choice(options=("adam", "adamw")), "adam (paper) or adamw; both are resized"
    )
    weight_decay: float = param(
        0.0, Float(low=0.0, high=1.0), "weight decay (adamw: decoupled; adam: L2)"
    )
    beta: float = param(1.0, Float(low=0.0), "weight of the KL term (paper: 1)")
    seed: int = param(0, Int(low=0), "seed of weights, batches and sampling")
    device: str = param(
        "auto", Choice(options=("auto", "cpu", "cuda")), "auto: CUDA when present, else CPU"
    )
    threads: int = param(0, Int(low=0, high=1024), "torch CPU threads; 0 keeps torch's default")
    nested_dropout: bool = param(
        False,
        Bool(),
        "fixed-size runs only: drop a random tail of the latent units per sample so every "
        "grid-size prefix decodes (compare --baselines nested)",
    )

    def __post_init__(self) -> None:
        validate_fields(self)


@dataclass(frozen=True)
class ALDConfig:
    """The pruning rule and its stop test (docs/rules.md)."""

    rule: str = param(
        "ald-tune",
        Choice(options=RULES),
        "ald-tune: paired trials against a twin (docs/rules.md); paper: the authors' rule "
        "(metric slopes); units: the units in use (ald-tune 0.2's rule)",
    )
    n_z_init: int = param(64, Int(low=1, high=MAX_NZ), "latent units at the start (paper: 64)")
    n_z_min: int = param(1, Int(low=1, high=MAX_NZ), "never prune below this many units")
    n_remove: int = param(
        5, Int(low=1, high=MAX_NZ), "units removed per decision before the switch (paper: 5)"
    )
    fine_step: int = param(
        1, Int(low=1, high=MAX_NZ), "units removed per decision after the switch (paper: 1)"
    )
    patience: int = param(5, Int(low=1, high=MAX_EPOCHS), "epochs between decisions (paper: 5)")
    window: int = param(
        20,
        Int(low=4, high=MAX_EPOCHS),
        "epochs of history for the switch and stop tests (paper: 20)",
    )
    votes: tuple[tuple[str, str], ...] = param(
        PAPER_VOTES,
        Votes(metrics=METRICS),
        "metric -> slope direction that votes to stop; all must agree",
    )
    unit_selection: str = param(
        "lowest_kl",
        Choice(options=("lowest_kl", "last")),
        "which units go: lowest mean KL, or the last (authors)",
    )
    kl_threshold: float = param(
        0.05,
        Float(low=0.0),
        "units not in use have a mean KL below this (nats): ald-tune and units rules",
    )
    kl_dead: float = param(
        0.01, Float(low=0.0), "units rule: units below this mean KL (nats) go at any decision"
    )
    reserve: int = param(
        4,
        Int(low=0, high=MAX_NZ),
        "ald-tune rule: units beyond those in use kept at its first cut; units rule: at "
        "least this many units beyond those in use stay "
        "until the stop (room to emerge)",
    )
    confirm: int = param(
        1,
        Int(low=1, high=MAX_EPOCHS),
        "units rule: decisions in a row in which the count in use has not grown",
    )
    margin: int = param(
        1,
        Int(low=0, high=MAX_NZ),
        "ald-tune and units rules: spare units beyond those in use in the answer (docs/rules.md)",
    )
    settle: float = param(
        0.3,
        Float(low=0.0, high=1.0),
        "units rule: no stop before this share of train.epochs is done (units still "
        "collapse and re-emerge then; docs/rules.md)",
    )
    rise: float = param(
        0.25,
        Float(low=0.0),
        "units rule: a waiting unit whose KL grew by more than this share since the last "
        "decision is emerging: the count is not settled",
    )
    final_share: float = param(
        1.0,
        Float(low=0.0, high=1.0),
        "ald-tune and units rules: the final size trains for at least this share of train.epochs "
        "(1: as long as a model trained at that size from scratch); a stop after "
        "(1 - share) x train.epochs extends the run (0: it ends at train.epochs)",
    )
    max_recon_increase: float = param(
        0.005,
        Float(low=0.0),
        "units rule: at the stop a unit not in use stays if zeroing it alone raises "
        "the validation recon by more than this share",
    )
    noise_z: float = param(
        2.0,
        Float(low=0.0),
        "ald-tune rule: a removal stands while no criterion metric is worse than the twin's "
        "by more than this many times its epoch-to-epoch noise (2, as the report's "
        "tolerance: twice the spread)",
    )
    n_epochs_after_stop: int | None = param(
        None,
        Int(low=0, optional=True),
        "None trains to the last epoch (paper); N ends the run N epochs after the stop",
    )

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.n_z_min > self.n_z_init:
            raise fail(
                "ALDConfig",
                "n_z_min",
                f"an int in [1, n_z_init={self.n_z_init}]",
                self.n_z_min,
                "lower ald.n_z_min or raise ald.n_z_init",
            )
        if self.fine_step > self.n_remove:
            raise fail(
                "ALDConfig", "fine_step", f"an int in [1, n_remove={self.n_remove}]", self.fine_step
            )
        if self.kl_dead > self.kl_threshold:
            raise fail(
                "ALDConfig",
                "kl_dead",
                f"a float in [0, kl_threshold={self.kl_threshold}]",
                self.kl_dead,
                "lower ald.kl_dead or raise ald.kl_threshold",
            )


@dataclass(frozen=True)
class EvalConfig:
    """Per-epoch evaluation on the validation split."""

    fid_extractor: str = param(
        "classifier",
        Choice(options=("classifier", "inception")),
        "FID features: fast cached classifier, or standard Inception",
    )
    n_fid: int = param(100, Int(low=2, high=100_000), "images for each FID (paper: 100)")
    n_silhouette: int = param(
        1000, Int(low=4, high=100_000), "validation samples for the silhouette (paper: 1000)"
    )
    silhouette_labels: str = param(
        "kmeans",
        Choice(options=("kmeans", "true")),
        "kmeans pseudo-labels (no labels needed) or true labels (authors)",
    )
    n_clusters: int | None = param(
        None,
        Int(low=2, high=10_000, optional=True),
        "k for K-means; None uses the number of classes (if two or more), else 10",
    )
    image_every: int = param(
        10, Int(low=1, high=MAX_EPOCHS), "epochs between sample/reconstruction grids"
    )
    cache_dir: str | None = param(
        None,
        Text(optional=True),
        "where the classifier extractor is cached (default ~/.cache/ald_tune)",
    )

    def __post_init__(self) -> None:
        validate_fields(self)


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "ald": ALDConfig,
    "eval": EvalConfig,
    "grid": GridConfig,
    "tune": TuneConfig,
}
