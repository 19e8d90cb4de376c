"""Nested dropout in a comparison report's Markdown (:mod:`ald_tune.report.tables`).

Each seed's answer from its prefix curve, the curve beside the grid, and the one
headline sentence that sets nested dropout against ALD in the ranking.
"""

from __future__ import annotations

from ald_tune.report.cells import cell, md_table, step_cell
from ald_tune.report.record import NestedSection, NestedSeed, Report


def nested_lines(r: Report) -> list[str]:
    """Nested dropout: each seed's answer from its prefix curve, and the curve (mean over
    seeds) beside the grid at each n_z (none without a nested sweep)."""
    n = r.nested
    if not n or not n.seeds:
        return []
    first_seed = n.seeds[0]
    tols = first_seed.tolerances
    lines = [
        f"## Nested dropout: one run of n_z = {first_seed.width} per seed, every "
        f"prefix evaluated ({n.n_in_region}/{len(n.seeds)} answers in the best region)",
        "",
        "Answer: the smallest prefix within tolerance of the curve's own best on every "
        "criterion metric, tolerance = max(rel_floor x |curve best|, 2 x the grid's spread) "
        "(docs/comparison.md). Beside it, the answer of the plateau test with the grid's "
        "best and tolerance.",
        "",
    ]
    first = f"seed {first_seed.seed}"
    lines += md_table(
        ["metric", "grid best", f"curve best ({first})", "grid spread", f"tolerance ({first})"],
        [[m, t.grid_best, t.best, t.spread, t.tolerance] for m, t in tols.items()],
    )
    return lines + _nested_seed_lines(n.seeds) + _nested_curve_lines(r, n)


_NESTED_HEAD = [
    "seed",
    "n_z",
    "in region",
    "near edge",
    "grid steps above edge",
    "n_z / edge",
    "prefixes within tolerance",
    "with the grid's best",
    "epochs",
    "CPU-s (prefix evaluation, wall s)",
]


def _nested_seed_lines(seeds: tuple[NestedSeed, ...]) -> list[str]:
    """One row per nested-dropout seed: its answer against the region, and its cost."""
    return md_table(
        _NESTED_HEAD,
        [
            [
                s.seed,
                s.n_z,
                s.in_region,
                s.near_edge,
                step_cell(s.steps_above_edge),
                step_cell(s.nz_over_edge),
                ", ".join(map(str, s.within)) or "none",
                s.answer_by_grid_best,
                s.epochs,
                f"{cell(s.cpu_s)} ({cell(s.prefix_eval_s)})",
            ]
            for s in seeds
        ],
    )


def _nested_curve_lines(r: Report, n: NestedSection) -> list[str]:
    """The prefix curve (mean over seeds) beside the grid's row at each n_z."""
    metrics = list(r.criterion.metrics)
    grid = {x.n_z: x.metrics for x in r.grid.rows}
    return md_table(
        ["n_z", *[f"{m}: grid / nested" for m in metrics]],
        [
            [
                c.n_z,
                *[
                    f"{cell(grid.get(c.n_z, {}).get(m))} / {cell(c.metrics.get(m))}"
                    for m in metrics
                ],
            ]
            for c in n.curve_mean
        ],
    )


def nested_vs_ald(r: Report) -> str:
    """One plain sentence: nested dropout against ALD in the ranking, where each answers
    against the edge and what each costs ("" without both or without an edge)."""
    nest, ald, edge = r.method("nested"), r.method("ald"), r.criterion.plateau_edge
    if not nest or not ald or edge is None or r.nested is None:
        return ""
    a, n = r.ald, r.nested
    if nest.rank < ald.rank:  # the winner's rank first
        verdict = f"**nested dropout beats {ald.method} here** (rank {nest.rank} "
        verdict += f"against {ald.rank})"
    else:
        verdict = f"{ald.method} ranks above nested dropout here (rank {ald.rank} "
        verdict += f"against {nest.rank})"
    return (
        f"{verdict}: nested dropout n_z "
        f"{', '.join(map(str, nest.n_z))}, {n.n_near_edge}/{len(n.seeds)} near the "
        f"edge {edge} (mean {step_cell(n.nz_over_edge_mean)}x it); ALD "
        f"{', '.join(map(str, a.n_z))}, {a.n_near_edge}/{len(a.seeds)} "
        f"({step_cell(a.nz_over_edge_mean)}x). Per seed, CPU-s to the answer "
        f"{cell(nest.answer_cpu_s, 1)} against ALD's {cell(ald.answer_cpu_s, 1)}; to a "
        f"trained model {cell(nest.trained_cpu_s, 1)} against {cell(ald.trained_cpu_s, 1)}."
    )
