"""The comparison report as a typed record: :class:`Report` and its sections.

:func:`ald_tune.report.build.build_report` returns a :class:`Report`; the Markdown, the
figures, the comparison and the MLflow rebuild read its attributes. ``comparison.json``
is :meth:`Report.to_dict`, and :meth:`Report.from_dict` reads it back, also a file written
by an older version: a section or field that the code has always read as optional may be
absent, and it stays absent when written again. Every record keeps the order of the keys
it was read from, so ``Report.from_dict(d).to_dict() == d`` key for key and the JSON
written from it is the same bytes (the MLflow rebuild relies on that).

Where a section holds one value per metric (a grid row's ``recon_loss``,
``recon_loss_std``, ...; an ALD seed's final metrics; a curve's series), those keys are
kept in one dict field (``metrics`` / ``series``), read as ``row.metrics["recon_loss"]``.

Example:
    >>> rep = Report.from_dict(json.load(open("comparison.json")))  # doctest: +SKIP
    >>> rep.criterion.plateau_edge, rep.recommendation.n_z          # doctest: +SKIP
    (8, 8)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ald_tune.report.json_record import REST, Record


# ---------------------------------------------------------------- grid and criterion
@dataclass(frozen=True, kw_only=True)
class GridRow(Record):
    """One grid n_z: its seeds, each metric's mean, sd and count, cost, ranks."""

    n_z: int
    n_seeds: int
    seeds: tuple[Any, ...] = ()
    metrics: dict[str, Any] = field(default_factory=dict, metadata=REST)
    epochs: float | None = None
    cpu_s: float | None = None
    within_tolerance: bool | None = None
    in_region: bool = False
    ranks: dict[str, float | None] | None = None
    mean_rank: float | None = None


@dataclass(frozen=True, kw_only=True)
class Optimum(Record):
    """One metric's best grid n_z and value."""

    n_z: int | None
    value: float | None


@dataclass(frozen=True, kw_only=True)
class GridSection(Record):
    """The grid: one row per n_z, each metric's optimum and the mean-rank choice."""

    n_trials: int
    n_errored: int
    rows: tuple[GridRow, ...]
    n_seeds: int
    optimum_by_metric: dict[str, Optimum]
    mean_rank_nz: int | None


@dataclass(frozen=True, kw_only=True)
class Tolerance(Record):
    """One criterion metric's best grid value, spread and tolerance."""

    best: float | None
    best_nz: int | None
    spread: float | None
    spread_source: str
    rel_floor: float | None
    tolerance: float | None
    direction: str


@dataclass(frozen=True, kw_only=True)
class Criterion(Record):
    """The plateau-edge criterion: tolerances, best region, edge and the optimum used."""

    metrics: tuple[str, ...]
    rel_floor: float
    tolerances: dict[str, Tolerance]
    within_tolerance: tuple[int, ...] = ()
    noise_holes: tuple[int, ...] = ()
    best_region: tuple[int, ...] = ()
    plateau_edge: int | None = None
    near_edge_max_nz: float | None = None
    not_recorded: tuple[str, ...] | None = None
    optimum_nz: int | None = None
    optimum_rule: str | None = None


# ---------------------------------------------------------------- ALD
@dataclass(frozen=True, kw_only=True)
class GapMetric(Record):
    """One criterion metric: ALD's final value, the fixed run's, the gap and tolerance."""

    ald: float | None
    fixed: float | None
    gap: float | None
    tolerance: float | None
    within: bool


@dataclass(frozen=True, kw_only=True)
class Gap(Record):
    """ALD's final model against the fixed run at its n_z, per criterion metric."""

    metrics: dict[str, GapMetric]
    within: bool


@dataclass(frozen=True, kw_only=True)
class SeedAnswer(Record):
    """What every one-run method's seed holds: its answer against the grid's best region
    and plateau edge, and its run's cost (ALD's and nested dropout's seeds add their own)."""

    seed: Any
    trial_id: Any = None
    in_region: bool
    nearest_region_nz: int | None = None
    distance: int | None = None
    near_edge: bool | None = None
    steps_above_edge: float | None = None
    nz_over_edge: float | None = None
    epochs: int | None = None
    cpu_s: float | None = None


@dataclass(frozen=True, kw_only=True)
class AldSeed(SeedAnswer):
    """One ALD seed: its final n_z against the region, metrics, cost and the fixed run."""

    n_z: int
    metrics: dict[str, Any] = field(default_factory=dict, metadata=REST)
    answer_epochs: int | None = None
    answer_cpu_s: float | None = None
    epochs_at_final_size: int | None = None
    fixed_source: str | None = None
    fixed: dict[str, float | None] | None = None
    gap: Gap | None = None


@dataclass(frozen=True, kw_only=True)
class AldSection(Record):
    """ALD: one entry per finished seed, then their summary."""

    n_trials: int
    n_errored: int
    seeds: tuple[AldSeed, ...]
    n_z: tuple[int, ...]
    n_z_mean: float | None = None
    n_z_std: float | None = None
    n_in_region: int = 0
    distance_mean: float | None = None
    distance_max: int | None = None
    n_near_edge: int | None = None
    steps_above_edge_mean: float | None = None
    nz_over_edge_mean: float | None = None
    final: dict[str, float | None]
    n_fixed_compared: int | None = None
    n_as_good_as_fixed: int | None = None
    control_pairs: int | None = None
    control_within: int | None = None
    votes_not_recorded: tuple[str, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class VersusMetric(Record):
    """One metric: ALD's mean final value against the grid optimum and the fixed runs."""

    ald: float | None
    grid_optimum: float | None
    fixed_at_ald_nz: float | None
    ald_minus_optimum: float | None
    ald_minus_fixed: float | None
    ald_vs_optimum_rel: float | None


@dataclass(frozen=True, kw_only=True)
class Versus(Record):
    """ALD's mean final metrics against the grid optimum and the fixed runs at its n_z."""

    optimum_nz: int | None
    n_fixed_seeds: int
    metrics: dict[str, VersusMetric]


# ---------------------------------------------------------------- cost and curves
@dataclass(frozen=True, kw_only=True)
class Cost(Record):
    """One sweep's cost: trials, trial-epochs, CPU-, GPU- and wall seconds."""

    n_trials: int
    n_errored: int
    n_stopped: int | None = None
    trial_epochs: float
    cpu_s: float | None
    gpu_s: float | None
    cpu_source: tuple[str, ...] = ()
    wall_s: float | None = None
    nodes: tuple[str, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class Speedup(Record):
    """ALD's speed-up over one baseline sweep (baseline / ALD)."""

    compute: float | None = None
    compute_per_seed: float | None = None
    trial_epochs: float | None = None
    wall: float | None = None


@dataclass(frozen=True, kw_only=True)
class Curve(Record):
    """One run's metrics per epoch (``series``: ``n_z``, ``recon_loss``, ...)."""

    seed: Any
    epoch: tuple[int, ...]
    series: dict[str, list[float | None]] = field(default_factory=dict, metadata=REST)


@dataclass(frozen=True, kw_only=True)
class Curves(Record):
    """The ALD runs' and the fixed runs' (at the grid optimum) curves, for the figures."""

    ald: tuple[Curve, ...] = ()
    fixed_optimum: tuple[Curve, ...] = ()
    fixed_optimum_nz: int | None = None


# ---------------------------------------------------------------- nested dropout
@dataclass(frozen=True, kw_only=True)
class NestedTolerance(Record):
    """One criterion metric on a nested run's curve: its own best, the grid's best and
    spread, and the tolerance (:func:`ald_tune.report.nested.curve_edge`)."""

    best: float | None
    grid_best: float | None
    spread: float | None
    tolerance: float | None


@dataclass(frozen=True, kw_only=True)
class CurvePoint(Record):
    """The nested prefix curve's mean over seeds at one n_z (``metrics``: per metric)."""

    n_z: int
    metrics: dict[str, float | None] = field(default_factory=dict, metadata=REST)


@dataclass(frozen=True, kw_only=True)
class NestedSeed(SeedAnswer):
    """One nested-dropout seed: its prefix curve's answer against the region and cost."""

    width: int
    n_z: int | None
    rule: str | None = None
    within: tuple[int, ...] = ()
    answer_by_grid_best: int | None = None
    prefix_eval_s: float | None = None
    fixed_cpu_s: float | None = None
    tolerances: dict[str, NestedTolerance]
    curve: dict[str, dict[str, float | None]]


@dataclass(frozen=True, kw_only=True)
class NestedSection(Record):
    """Nested dropout: each seed's answer, their summary and the mean prefix curve."""

    n_trials: int
    n_errored: int
    seeds: tuple[NestedSeed, ...]
    n_z: tuple[int, ...]
    n_in_region: int
    distance_mean: float | None = None
    n_near_edge: int | None = None
    steps_above_edge_mean: float | None = None
    nz_over_edge_mean: float | None = None
    curve_mean: tuple[CurvePoint, ...] = ()


# ---------------------------------------------------------------- conclusions
@dataclass(frozen=True, kw_only=True)
class Method(Record):
    """One method's answer, where it lies against the edge, its compute and rank."""

    key: str | None = None
    method: str
    n_z: Any
    in_region: bool | None = None
    distance: int | None = None
    near_edge: bool | None = None
    steps_above_edge: float | None = None
    nz_over_edge: float | None = None
    n_seeds: int | None = None
    n_in_region: int | None = None
    n_near_edge: int | None = None
    answer_trial_epochs: float | None = None
    answer_cpu_s: float | None = None
    answer_gpu_s: float | None = None
    answer_wall_s: float | None = None
    total_trial_epochs: float | None = None
    total_cpu_s: float | None = None
    total_gpu_s: float | None = None
    total_wall_s: float | None = None
    trained_trial_epochs: float | None = None
    trained_cpu_s: float | None = None
    trained_gpu_s: float | None = None
    trained_wall_s: float | None = None
    trained_estimated: bool | None = None
    runs: int | None = None
    note: str = ""
    rank: int


@dataclass(frozen=True, kw_only=True)
class Recommendation(Record):
    """One n_z from ALD's per-seed answers (:func:`ald_tune.report.build.recommend`)."""

    n_z: int | None
    rule: str | None = None
    per_seed: tuple[int, ...] = ()
    plateau_edge: int | None = None
    in_region: bool | None = None
    near_edge: bool | None = None
    steps_above_edge: float | None = None
    nz_over_edge: float | None = None
    reason: str = ""
    per_seed_vs_edge: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, kw_only=True)
class Headline(Record):
    """The numbers a reader wants first (also logged to MLflow as metrics)."""

    grid_plateau_nz: int | None = None
    grid_optimum_nz: int | None = None
    grid_mean_rank_nz: int | None = None
    grid_region_min: int | None = None
    grid_region_max: int | None = None
    ald_nz_mean: float | None = None
    ald_nz_std: float | None = None
    ald_in_region_fraction: float | None = None
    ald_distance_mean: float | None = None
    near_edge_max_nz: float | None = None
    ald_near_edge_fraction: float | None = None
    ald_steps_above_edge_mean: float | None = None
    ald_nz_over_edge_mean: float | None = None
    recommended_nz: int | None = None
    recommended_steps_above_edge: float | None = None
    recommended_nz_over_edge: float | None = None
    speedups: dict[str, float | None] = field(default_factory=dict, metadata=REST)

    def items(self) -> list[tuple[str, Any]]:
        """The headline's ``(name, value)`` pairs, in the written order."""
        return list(self.to_dict().items())


@dataclass(frozen=True, kw_only=True)
class Report(Record):
    """One ALD rule's comparison against the grid (``comparison.json``).

    ``nested`` is present with a nested-dropout sweep; ``methods`` and
    ``recommendation`` may be absent in a report written by an older version.
    """

    dataset: str = ""
    rule: str | None = None
    grid: GridSection
    criterion: Criterion
    ald: AldSection
    vs: Versus
    cost: dict[str, Cost]
    speedup: dict[str, Speedup]
    curves: Curves = Curves()
    nested: NestedSection | None = None
    methods: tuple[Method, ...] = ()
    recommendation: Recommendation | None = None
    headline: Headline = Headline()

    def method(self, key: str) -> Method | None:
        """The ranked method with this key (``"ald"``, ``"grid"``, ``"nested"``, ...)."""
        return next((m for m in self.methods if m.key == key), None)


def as_report(report: Report | dict[str, Any]) -> Report:
    """A :class:`Report`, also from the dict of a ``comparison.json``."""
    return report if isinstance(report, Report) else Report.from_dict(report)
