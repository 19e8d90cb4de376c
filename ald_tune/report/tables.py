"""A comparison report's Markdown: the printed summary, ``comparison.md`` and ``rules.md``.

Everything here reads only the :class:`~ald_tune.report.record.Report` of
:func:`ald_tune.report.build.build_report`, so a report loaded back from
``comparison.json`` (:meth:`~ald_tune.report.record.Report.from_dict`) renders the
same. :func:`side_by_side` puts the reports of several ALD rules (one grid) in one table.
"""

from __future__ import annotations

from ald_tune.config.vocabulary import RANKED
from ald_tune.report.cells import (
    cell,
    gap_cell,
    md_table,
    near_text,
    not_recorded,
    region_cell,
    seeds_cell,
    step_cell,
)
from ald_tune.report.nested_text import nested_lines, nested_vs_ald
from ald_tune.report.record import (
    AldSection,
    Cost,
    Criterion,
    GridSection,
    Method,
    Report,
    Speedup,
    Versus,
    as_report,
)

TABLE = RANKED


def markdown_text(r: Report | dict) -> str:
    """The report as Markdown: headline, grid, criterion, ALD seeds, versus, cost."""
    r = as_report(r)
    return "\n".join(
        _headline_lines(r)
        + _grid_lines(r.grid)
        + _criterion_lines(r.criterion)
        + _ald_lines(r.ald)
        + gap_table(r.ald)
        + _versus_lines(r.vs)
        + nested_lines(r)
        + _cost_lines(r.cost)
        + _methods_lines(r.methods)
    )


def _headline_lines(r: Report) -> list[str]:
    """The title and the headline bullets: the grid's optimum, ALD's n_z, the speed-ups,
    the recommendation and nested dropout against ALD where the report has them."""
    c, a, g, h = r.criterion, r.ald, r.grid, r.headline.speedups
    region = ", ".join(map(str, c.best_region)) or "none"
    lines = [
        f"# ALD vs grid search{': ' + r.dataset if r.dataset else ''}",
        "",
        f"- **Grid optimum (plateau edge)**: n_z = {cell(c.plateau_edge)}; best region "
        f"{{{region}}}; mean-rank choice n_z = {cell(g.mean_rank_nz)}",
        f"- **ALD's n_z**: {', '.join(map(str, a.n_z))} (mean {cell(a.n_z_mean, 1)}, "
        f"sd {cell(a.n_z_std, 1)}); {a.n_in_region}/{len(a.seeds)} in the best "
        f"region, mean distance {cell(a.distance_mean, 1)}" + near_text(c, a),
        f"- **ALD speed-up over the grid**: compute {cell(h.get('speedup_compute'), 2)}x "
        f"(per ALD seed {cell(h.get('speedup_compute_per_seed'), 2)}x), wall time "
        f"{cell(h.get('speedup_wall'), 2)}x",
    ]
    rec = r.recommendation
    if rec is not None and rec.n_z is not None:
        lines.append(
            f"- **Recommended n_z: {rec.n_z}** (rule {rec.rule!r}, per seed "
            f"{list(rec.per_seed)}: {rec.reason})"
        )
    if (s := r.speedup.get("asha")) is not None:
        lines.append(
            f"- **ALD speed-up over grid + ASHA**: compute {cell(s.compute, 2)}x "
            f"(per seed {cell(s.compute_per_seed, 2)}x), wall {cell(s.wall, 2)}x"
        )
    if vs_nested := nested_vs_ald(r):
        lines.append("- " + vs_nested)
    return lines + [""]


def _grid_lines(g: GridSection) -> list[str]:
    """The grid's table (one row per n_z) and each metric's optimal n_z."""
    lines = [
        f"## Grid ({g.n_seeds} seed(s) per n_z, {g.n_errored} errored trial(s) left out)",
        "",
    ]
    lines += md_table(
        ["n_z", "seeds", *TABLE, "mean rank", "best region"],
        [
            [x.n_z, x.n_seeds, *[x.metrics[m] for m in TABLE], x.mean_rank, region_cell(x)]
            for x in g.rows
        ],
    )
    return lines + md_table(
        ["", *TABLE], [["optimal n_z", *[g.optimum_by_metric[m].n_z for m in TABLE]]]
    )


def _criterion_lines(c: Criterion) -> list[str]:
    """The plateau-edge criterion in words and its tolerance per metric."""
    lines = [
        f"## Criterion: plateau edge over {', '.join(c.metrics)}",
        "",
        f"Smallest grid n_z whose every criterion metric is within tolerance of the grid's "
        f"best; tolerance = max({c.rel_floor} x |best|, 2 x spread over seeds). "
        f"The best region runs from that edge to the largest n_z within tolerance "
        f"(one span: a noisy miss inside it is a noise hole). An ALD n_z between two "
        f"grid points is in the region when both are. "
        f"Grid steps above the edge: how many grid n_z lie above the edge up to n_z (off "
        f"the grid, plus the fraction of the way to the next grid point; negative below "
        f"it). Near the edge: in the region and n_z <= max(edge + 2, 1.5 x edge)"
        f"{' = ' + step_cell(c.near_edge_max_nz) if c.near_edge_max_nz else ''}. "
        f"Optimum rule used: {c.optimum_rule}."
        + not_recorded(c.not_recorded, "the criterion uses the others"),
        "",
    ]
    return lines + md_table(
        ["metric", "best", "at n_z", "spread", "spread from", "tolerance"],
        [
            [m, t.best, t.best_nz, t.spread, t.spread_source, t.tolerance]
            for m, t in c.tolerances.items()
        ],
    )


_ALD_HEAD = [
    "seed",
    "n_z",
    "in region",
    "distance",
    "near edge",
    "grid steps above edge",
    "n_z / edge",
    *TABLE[:3],
    "silhouette",
    "epochs",
    "answer at epoch",
    "CPU-s",
    "fixed run at its n_z",
]


def _ald_lines(a: AldSection) -> list[str]:
    """ALD's seeds: one row per seed (its n_z against the region, metrics, cost)."""
    lines = [f"## ALD seeds ({a.n_errored} errored trial(s) left out)", ""]
    if a.votes_not_recorded:
        lines += [
            "The paper rule voted on the metrics the runs record;"
            + not_recorded(a.votes_not_recorded, "they did not vote"),
            "",
        ]
    return lines + md_table(
        _ALD_HEAD,
        [
            [
                s.seed,
                s.n_z,
                s.in_region,
                s.distance,
                s.near_edge,
                step_cell(s.steps_above_edge),
                step_cell(s.nz_over_edge),
                *[s.metrics[m] for m in TABLE[:3]],
                s.metrics["silhouette"],
                s.epochs,
                s.answer_epochs,
                s.cpu_s,
                s.fixed_source,
            ]
            for s in a.seeds
        ],
    )


def _versus_lines(v: Versus) -> list[str]:
    """Final metrics: ALD's mean against the grid optimum and the fixed runs at its n_z."""
    lines = [
        f"## Final metrics: ALD (mean over seeds) vs grid optimum (n_z = "
        f"{cell(v.optimum_nz)}) vs fixed runs at ALD's n_z ({v.n_fixed_seeds} seed(s))",
        "",
    ]
    return lines + md_table(
        ["metric", "ALD", "grid optimum", "fixed at ALD's n_z", "ALD - optimum"],
        [
            [
                m,
                x.ald,
                x.grid_optimum,
                # no fixed run: "not run"; fixed runs without the metric (no FID on vectors): "–"
                x.fixed_at_ald_nz
                if x.fixed_at_ald_nz is not None or v.n_fixed_seeds
                else "not run",
                x.ald_minus_optimum,
            ]
            for m, x in v.metrics.items()
        ],
    )


def _cost_lines(cost: dict[str, Cost]) -> list[str]:
    """Each sweep's cost: trials, trial-epochs, CPU-, GPU- and wall seconds."""
    return ["## Cost", ""] + md_table(
        ["method", "trials", "errored", "trial-epochs", "CPU-s", "GPU-s", "wall s", "CPU-s from"],
        [
            [
                k,
                x.n_trials,
                x.n_errored,
                x.trial_epochs,
                x.cpu_s,
                x.gpu_s,
                x.wall_s,
                ", ".join(x.cpu_source),
            ]
            for k, x in cost.items()
        ],
    )


_METHODS_INTRO = [
    "## Every method ranked: in the best region, then near its edge, then compute to a "
    "trained model at the answer",
    "",
    "Compute to a trained model: until a model at the method's n_z has trained (ALD: its "
    "run; grid and grid + ASHA: their total; units in use, intrinsic dimension and nested "
    "dropout: the answer plus one fixed run at that n_z, its cost as the note says). "
    "Compute to the answer: until its n_z was known (ALD: through its stop decision; "
    "nested dropout: its wide run; grid: its last trial; grid + ASHA: its last surviving "
    "trial). ALD, nested-dropout and units-in-use figures are per run (one seed); ALD's "
    "and nested dropout's in-region and near-edge cells count their seeds.",
    "",
]
_METHODS_HEAD = [
    "rank",
    "method",
    "n_z",
    "in best region",
    "near edge",
    "grid steps above edge",
    "n_z / edge",
    "CPU-s to a trained model",
    "trial-epochs to a trained model",
    "trial-epochs to answer",
    "CPU-s to answer",
    "GPU-s to answer",
    "wall s to answer",
    "how",
]


def _methods_lines(methods: tuple[Method, ...]) -> list[str]:
    """Every method ranked, with its answer against the edge and its compute."""
    return _METHODS_INTRO + md_table(
        _METHODS_HEAD,
        [
            [
                x.rank,
                x.method,
                ", ".join(map(str, x.n_z)) if isinstance(x.n_z, list) else cell(x.n_z),
                seeds_cell(x, "in_region", "n_in_region"),
                seeds_cell(x, "near_edge", "n_near_edge"),
                step_cell(x.steps_above_edge),
                step_cell(x.nz_over_edge),
                x.trained_cpu_s,
                x.trained_trial_epochs,
                x.answer_trial_epochs,
                x.answer_cpu_s,
                x.answer_gpu_s,
                x.answer_wall_s,
                x.note,
            ]
            for x in methods
        ],
    )


def gap_table(a: AldSection) -> list[str]:
    """ALD's final model against the fixed run at its n_z, per seed and criterion metric."""
    seeds = [(s, s.gap) for s in a.seeds if s.gap]
    if not seeds:
        return []
    metrics = list(seeds[0][1].metrics)
    lines = [
        f"## ALD's final model against a model trained at its n_z: "
        f"{a.n_as_good_as_fixed}/{a.n_fixed_compared} seed(s) within tolerance",
        "",
        "Gap = how much worse ALD's final model is than the fixed run at the same n_z "
        "(negative: better), against the criterion's tolerance.",
        "",
    ]
    if a.control_pairs:
        lines += [
            f"Control: two grid seeds at the same n_z pass the same test in "
            f"{a.control_within}/{a.control_pairs} ordered pairs (seed and "
            "evaluation noise alone).",
            "",
        ]
    lines += md_table(
        [
            "seed",
            "n_z",
            "epochs at final size",
            *[f"{m} gap (tol)" for m in metrics],
            "within tolerance",
        ],
        [
            [
                s.seed,
                s.n_z,
                s.epochs_at_final_size,
                *[gap_cell(gap.metrics[m]) for m in metrics],
                gap.within,
            ]
            for s, gap in seeds
        ],
    )
    return lines


def _num(v: object, fmt: str) -> str:
    return format(v, fmt) if isinstance(v, (int, float)) else "n/a"


def side_by_side(reports: dict[str, Report] | dict[str, dict]) -> str:
    """One Markdown table: each ALD rule's chosen n_z against the grid's best region."""
    typed = {rule: as_report(r) for rule, r in reports.items()}
    first = next(iter(typed.values()))
    crit = first.criterion
    lines = [
        f"## ALD rules side by side ({first.dataset}): grid optimum n_z = "
        f"{crit.optimum_nz}"
        + (f" (near it: n_z <= {step_cell(crit.near_edge_max_nz)})" if crit.plateau_edge else "")
        + f", best region {list(crit.best_region)}",
        "",
        "| rule | n_z per seed | recommended n_z | mean | sd | in best region | "
        "near its edge | grid steps above edge | mean distance | one ALD run / grid compute | "
        "speed-up, all seeds (compute) | speed-up (wall) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    return "\n".join(lines + [_side_row(rule, r) for rule, r in typed.items()])


def _side_row(rule: str, r: Report) -> str:
    """One rule's row of :func:`side_by_side`."""
    a, sp = r.ald, r.speedup.get("grid") or Speedup()
    per_seed = sp.compute_per_seed
    share = 1 / per_seed if isinstance(per_seed, (int, float)) and per_seed else None
    rec = r.recommendation.n_z if r.recommendation else None
    near = f"{a.n_near_edge}/{len(a.n_z)}" if r.criterion.plateau_edge is not None else "–"
    return (
        f"| {rule} | {list(a.n_z)} | {cell(rec)} | {_num(a.n_z_mean, '.1f')} | "
        f"{_num(a.n_z_std, '.1f')} | {a.n_in_region}/{len(a.n_z)} | "
        f"{near} | {step_cell([s.steps_above_edge for s in a.seeds])} | "
        f"{_num(a.distance_mean, '.1f')} | {_num(share, '.3f')} | "
        f"{_num(sp.compute, '.2f')}x | {_num(sp.wall, '.2f')}x |"
    )
