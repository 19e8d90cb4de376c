"""The sweep's two config sections: ``grid`` (the grid baseline's n_z values) and
``tune`` (how Ray Tune, or Optuna, runs a sweep's trials). Like the run's five
(:mod:`ald_tune.config.sections`, whose :data:`~ald_tune.config.sections.SECTIONS` names
all seven), frozen dataclasses whose fields declare their default, constraint and help.
"""

from __future__ import annotations

from dataclasses import dataclass

from ald_tune.config.constraints import (
    MAX_EPOCHS,
    MAX_NZ,
    Bool,
    Choice,
    Float,
    FloatPair,
    Int,
    IntTuple,
    param,
    validate_fields,
)
from ald_tune.config.vocabulary import TUNE_METRICS


@dataclass(frozen=True)
class GridConfig:
    """The grid baseline: one fixed-size trial per n_z."""

    n_z: tuple[int, ...] = param(
        (2, 4, 8, 16, 32, 64),
        IntTuple(low=1, high=MAX_NZ, unique=True),
        "latent sizes of the grid (distinct, positive)",
    )

    def __post_init__(self) -> None:
        validate_fields(self)


@dataclass(frozen=True)
class TuneConfig:
    """How Ray Tune (or Optuna) runs the trials of a sweep."""

    num_samples: int = param(
        3, Int(low=1, high=10_000), "ALD trials: seeds (or Optuna trials with search=optuna)"
    )
    grid_seeds: int = param(
        1, Int(low=1, high=1000), "seeds per grid point (their spread sets the tolerance)"
    )
    search: str = param(
        "none",
        Choice(options=("none", "optuna")),
        "none: seeds only; optuna: TPE over lr and beta while ALD handles n_z",
    )
    lr_range: tuple[float, float] = param(
        (1e-4, 3e-3), FloatPair(), "Optuna's log-uniform lr range"
    )
    beta_range: tuple[float, float] = param((0.5, 2.0), FloatPair(), "Optuna's beta range")
    metric: str = param(
        "neg_elbo",
        Choice(options=TUNE_METRICS),
        "what Optuna and ASHA minimise (validation, last epoch)",
    )
    scheduler: str = param(
        "fifo",
        Choice(options=("fifo", "asha")),
        "grid scheduler: fifo, or asha (early-stops weak grid points)",
    )
    asha_grace: int = param(10, Int(low=1, high=MAX_EPOCHS), "ASHA's grace period in epochs")
    cpus_per_trial: float = param(
        1.0, Float(low=0.0, low_open=True), "CPUs a trial holds (= its torch threads)"
    )
    gpus_per_trial: float = param(
        0.0, Float(low=0.0), "GPU share a trial holds (0.5 = two per GPU)"
    )
    max_concurrent_trials: int = param(
        0,
        Int(low=0, high=10_000),
        "trials of a sweep running at once; 0: as many as the CPUs and GPUs allow "
        "(1: one trial after another in one worker process)",
    )
    max_failures: int = param(
        1, Int(low=0, high=1000), "retries of a failed trial from its checkpoint"
    )
    checkpoint_every: int = param(
        5,
        Int(low=1, high=MAX_EPOCHS),
        "epochs between trial checkpoints (a retry redoes at most N-1)",
    )
    checkpoint_min_s: float = param(
        5.0,
        Float(low=0.0),
        "seconds a trial trains at least between "
        "two checkpoints and MLflow sends (bounds their cost on short "
        "epochs; a retry then redoes at most this long); 0: none",
    )
    reuse_actors: bool = param(
        True,
        Bool(),
        "one worker process serves trial after trial (a new one spends seconds importing "
        "torch, torchmetrics and MLflow: benchmarks/bench_sweeps.py)",
    )
    report_ahead: bool = param(
        True,
        Bool(),
        "train the next epoch while Tune takes this epoch's "
        "report (off under ASHA, which may stop a trial at any report)",
    )

    def __post_init__(self) -> None:
        validate_fields(self)
