"""A comparison report's Markdown: the printed summary, ``comparison.md`` and ``rules.md``.

Everything here reads only the JSON-ready dict of
:func:`ald_tune.report.build.build_report`, so a report loaded back from
``comparison.json`` renders the same. :func:`side_by_side` puts the reports of several
ALD rules (one grid) in one table.
"""

from __future__ import annotations

import math
from typing import Any

from ald_tune.config.vocabulary import RANKED

TABLE = RANKED


def _f(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    return f"{v:.{digits}g}" if abs(v) >= 1000 else f"{v:.{digits}f}"


def _x(v: Any) -> str:
    """A grid-step count or an n_z / edge ratio: two decimals at most ("2.75", "3", "-1");
    a list (ALD's seeds) comma-separated."""
    if isinstance(v, list):
        return ", ".join(_x(x) for x in v) if any(x is not None for x in v) else "–"
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.2f}".rstrip("0").rstrip(".")


def _of(m: dict, flag: str, count: str) -> Any:
    """A method's in-region / near-edge cell: ALD's as "k/N" seeds, others yes/no."""
    if "n_seeds" in m and m[flag] is not None:
        return f"{m[count]}/{m['n_seeds']}"
    return m[flag]


def _near_text(c: dict, a: dict) -> str:
    """The ALD headline's part about the edge (empty without a region)."""
    if c.get("plateau_edge") is None:
        return ""
    return (
        f"; {a['n_near_edge']}/{len(a['seeds'])} near its edge (n_z <= "
        f"{_x(c['near_edge_max_nz'])}), on average {_x(a['steps_above_edge_mean'])} grid "
        f"steps above it, {_x(a['nz_over_edge_mean'])}x the edge"
    )


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(c if isinstance(c, str) else _f(c) for c in r) + " |" for r in rows]
    return out + [""]


def _region_cell(row: dict) -> str:
    if not row["in_region"]:
        return "no"
    return "yes" if row.get("within_tolerance", True) else "yes (noise hole)"


def _not_recorded(metrics: list[str] | None, then: str) -> str:
    if not metrics:
        return ""
    return (
        f" Not recorded: {', '.join(metrics)} (no FID for feature vectors, which are not "
        f"images); {then}."
    )


def markdown_text(r: dict) -> str:
    """The report as Markdown: headline, grid, criterion, ALD seeds, versus, cost."""
    c, a, g, h = r["criterion"], r["ald"], r["grid"], r["headline"]
    region = ", ".join(map(str, c["best_region"])) or "none"
    lines = [
        f"# ALD vs grid search{': ' + r['dataset'] if r['dataset'] else ''}",
        "",
        f"- **Grid optimum (plateau edge)**: n_z = {_f(c['plateau_edge'])}; best region "
        f"{{{region}}}; mean-rank choice n_z = {_f(g['mean_rank_nz'])}",
        f"- **ALD's n_z**: {', '.join(map(str, a['n_z']))} (mean {_f(a['n_z_mean'], 1)}, "
        f"sd {_f(a['n_z_std'], 1)}); {a['n_in_region']}/{len(a['seeds'])} in the best "
        f"region, mean distance {_f(a['distance_mean'], 1)}" + _near_text(c, a),
        f"- **ALD speed-up over the grid**: compute {_f(h.get('speedup_compute'), 2)}x "
        f"(per ALD seed {_f(h.get('speedup_compute_per_seed'), 2)}x), wall time "
        f"{_f(h.get('speedup_wall'), 2)}x",
        "",
    ]
    rec = r.get("recommendation") or {}
    if rec.get("n_z") is not None:
        lines[-1:] = [
            f"- **Recommended n_z: {rec['n_z']}** (rule {rec['rule']!r}, per seed "
            f"{rec['per_seed']}: {rec['reason']})",
            "",
        ]
    if "asha" in r["speedup"]:
        s = r["speedup"]["asha"]
        lines[-1:] = [
            f"- **ALD speed-up over grid + ASHA**: compute {_f(s['compute'], 2)}x "
            f"(per seed {_f(s['compute_per_seed'], 2)}x), wall {_f(s['wall'], 2)}x",
            "",
        ]
    if vs_nested := nested_vs_ald(r):
        lines[-1:] = ["- " + vs_nested, ""]
    lines += [
        f"## Grid ({g['n_seeds']} seed(s) per n_z, {g['n_errored']} errored trial(s) left out)",
        "",
    ]
    lines += _table(
        ["n_z", "seeds", *TABLE, "mean rank", "best region"],
        [
            [x["n_z"], x["n_seeds"], *[x[m] for m in TABLE], x["mean_rank"], _region_cell(x)]
            for x in g["rows"]
        ],
    )
    lines += _table(
        ["", *TABLE], [["optimal n_z", *[g["optimum_by_metric"][m]["n_z"] for m in TABLE]]]
    )
    lines += [
        f"## Criterion: plateau edge over {', '.join(c['metrics'])}",
        "",
        f"Smallest grid n_z whose every criterion metric is within tolerance of the grid's "
        f"best; tolerance = max({c['rel_floor']} x |best|, 2 x spread over seeds). "
        f"The best region runs from that edge to the largest n_z within tolerance "
        f"(one span: a noisy miss inside it is a noise hole). An ALD n_z between two "
        f"grid points is in the region when both are. "
        f"Grid steps above the edge: how many grid n_z lie above the edge up to n_z (off "
        f"the grid, plus the fraction of the way to the next grid point; negative below "
        f"it). Near the edge: in the region and n_z <= max(edge + 2, 1.5 x edge)"
        f"{' = ' + _x(c['near_edge_max_nz']) if c.get('near_edge_max_nz') else ''}. "
        f"Optimum rule used: {c['optimum_rule']}."
        + _not_recorded(c.get("not_recorded"), "the criterion uses the others"),
        "",
    ]
    lines += _table(
        ["metric", "best", "at n_z", "spread", "spread from", "tolerance"],
        [
            [m, t["best"], t["best_nz"], t["spread"], t["spread_source"], t["tolerance"]]
            for m, t in c["tolerances"].items()
        ],
    )
    lines += [f"## ALD seeds ({a['n_errored']} errored trial(s) left out)", ""]
    if a.get("votes_not_recorded"):
        lines += [
            "The paper rule voted on the metrics the runs record;"
            + _not_recorded(a["votes_not_recorded"], "they did not vote"),
            "",
        ]
    lines += _table(
        [
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
        ],
        [
            [
                s["seed"],
                s["n_z"],
                s["in_region"],
                s["distance"],
                s.get("near_edge"),
                _x(s.get("steps_above_edge")),
                _x(s.get("nz_over_edge")),
                *[s[m] for m in TABLE[:3]],
                s["silhouette"],
                s["epochs"],
                s.get("answer_epochs"),
                s["cpu_s"],
                s["fixed_source"],
            ]
            for s in a["seeds"]
        ],
    )
    lines += gap_table(a)
    v = r["vs"]
    lines += [
        f"## Final metrics: ALD (mean over seeds) vs grid optimum (n_z = "
        f"{_f(v['optimum_nz'])}) vs fixed runs at ALD's n_z ({v['n_fixed_seeds']} seed(s))",
        "",
    ]
    lines += _table(
        ["metric", "ALD", "grid optimum", "fixed at ALD's n_z", "ALD - optimum"],
        [
            [
                m,
                x["ald"],
                x["grid_optimum"],
                # no fixed run: "not run"; fixed runs without the metric (no FID on vectors): "–"
                x["fixed_at_ald_nz"]
                if x["fixed_at_ald_nz"] is not None or v["n_fixed_seeds"]
                else "not run",
                x["ald_minus_optimum"],
            ]
            for m, x in v["metrics"].items()
        ],
    )
    lines += nested_lines(r)
    lines += ["## Cost", ""]
    lines += _table(
        ["method", "trials", "errored", "trial-epochs", "CPU-s", "GPU-s", "wall s", "CPU-s from"],
        [
            [
                k,
                x["n_trials"],
                x["n_errored"],
                x["trial_epochs"],
                x["cpu_s"],
                x["gpu_s"],
                x["wall_s"],
                ", ".join(x["cpu_source"]),
            ]
            for k, x in r["cost"].items()
        ],
    )
    lines += [
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
    lines += _table(
        [
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
        ],
        [
            [
                x["rank"],
                x["method"],
                ", ".join(map(str, x["n_z"])) if isinstance(x["n_z"], list) else _f(x["n_z"]),
                _of(x, "in_region", "n_in_region"),
                _of(x, "near_edge", "n_near_edge"),
                _x(x["steps_above_edge"]),
                _x(x["nz_over_edge"]),
                x["trained_cpu_s"],
                x["trained_trial_epochs"],
                x["answer_trial_epochs"],
                x["answer_cpu_s"],
                x["answer_gpu_s"],
                x["answer_wall_s"],
                x["note"],
            ]
            for x in r.get("methods", [])
        ],
    )
    return "\n".join(lines)


def nested_lines(r: dict) -> list[str]:
    """Nested dropout: each seed's answer from its prefix curve, and the curve (mean over
    seeds) beside the grid at each n_z (none without a nested sweep)."""
    n = r.get("nested")
    if not n or not n.get("seeds"):
        return []
    metrics = list(r["criterion"]["metrics"])
    tols = n["seeds"][0]["tolerances"]
    lines = [
        f"## Nested dropout: one run of n_z = {n['seeds'][0]['width']} per seed, every "
        f"prefix evaluated ({n['n_in_region']}/{len(n['seeds'])} answers in the best region)",
        "",
        "Answer: the smallest prefix within tolerance of the curve's own best on every "
        "criterion metric, tolerance = max(rel_floor x |curve best|, 2 x the grid's spread) "
        "(docs/comparison.md). Beside it, the answer of the plateau test with the grid's "
        "best and tolerance.",
        "",
    ]
    first = f"seed {n['seeds'][0]['seed']}"
    lines += _table(
        ["metric", "grid best", f"curve best ({first})", "grid spread", f"tolerance ({first})"],
        [[m, t["grid_best"], t["best"], t["spread"], t["tolerance"]] for m, t in tols.items()],
    )
    lines += _table(
        [
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
        ],
        [
            [
                s["seed"],
                s["n_z"],
                s["in_region"],
                s.get("near_edge"),
                _x(s.get("steps_above_edge")),
                _x(s.get("nz_over_edge")),
                ", ".join(map(str, s["within"])) or "none",
                s["answer_by_grid_best"],
                s["epochs"],
                f"{_f(s['cpu_s'])} ({_f(s['prefix_eval_s'])})",
            ]
            for s in n["seeds"]
        ],
    )
    grid = {x["n_z"]: x for x in r["grid"]["rows"]}
    lines += _table(
        ["n_z", *[f"{m}: grid / nested" for m in metrics]],
        [
            [c["n_z"], *[f"{_f(grid.get(c['n_z'], {}).get(m))} / {_f(c[m])}" for m in metrics]]
            for c in n["curve_mean"]
        ],
    )
    return lines


def nested_vs_ald(r: dict) -> str:
    """One plain sentence: nested dropout against ALD in the ranking, where each answers
    against the edge and what each costs ("" without both or without an edge)."""
    by = {x.get("key"): x for x in r.get("methods", [])}
    nest, ald, edge = by.get("nested"), by.get("ald"), r["criterion"].get("plateau_edge")
    if not nest or not ald or edge is None:
        return ""
    a = r["ald"]
    if nest["rank"] < ald["rank"]:  # the winner's rank first
        verdict = f"**nested dropout beats {ald['method']} here** (rank {nest['rank']} "
        verdict += f"against {ald['rank']})"
    else:
        verdict = f"{ald['method']} ranks above nested dropout here (rank {ald['rank']} "
        verdict += f"against {nest['rank']})"
    n = r["nested"]
    return (
        f"{verdict}: nested dropout n_z "
        f"{', '.join(map(str, nest['n_z']))}, {n['n_near_edge']}/{len(n['seeds'])} near the "
        f"edge {edge} (mean {_x(n['nz_over_edge_mean'])}x it); ALD "
        f"{', '.join(map(str, a['n_z']))}, {a['n_near_edge']}/{len(a['seeds'])} "
        f"({_x(a['nz_over_edge_mean'])}x). Per seed, CPU-s to the answer "
        f"{_f(nest['answer_cpu_s'], 1)} against ALD's {_f(ald['answer_cpu_s'], 1)}; to a "
        f"trained model {_f(nest['trained_cpu_s'], 1)} against {_f(ald['trained_cpu_s'], 1)}."
    )


def gap_table(a: dict) -> list[str]:
    """ALD's final model against the fixed run at its n_z, per seed and criterion metric."""
    seeds = [s for s in a["seeds"] if s.get("gap")]
    if not seeds:
        return []
    metrics = list(seeds[0]["gap"]["metrics"])
    lines = [
        f"## ALD's final model against a model trained at its n_z: "
        f"{a.get('n_as_good_as_fixed')}/{a.get('n_fixed_compared')} seed(s) within tolerance",
        "",
        "Gap = how much worse ALD's final model is than the fixed run at the same n_z "
        "(negative: better), against the criterion's tolerance.",
        "",
    ]
    if a.get("control_pairs"):
        lines += [
            f"Control: two grid seeds at the same n_z pass the same test in "
            f"{a['control_within']}/{a['control_pairs']} ordered pairs (seed and "
            "evaluation noise alone).",
            "",
        ]
    lines += _table(
        [
            "seed",
            "n_z",
            "epochs at final size",
            *[f"{m} gap (tol)" for m in metrics],
            "within tolerance",
        ],
        [
            [
                s["seed"],
                s["n_z"],
                s.get("epochs_at_final_size"),
                *[_gap_cell(s["gap"]["metrics"][m]) for m in metrics],
                s["gap"]["within"],
            ]
            for s in seeds
        ],
    )
    return lines


def _gap_cell(x: dict) -> str:
    return f"{_f(x['gap'])} ({_f(x['tolerance'])})"


def side_by_side(reports: dict) -> str:
    """One Markdown table: each ALD rule's chosen n_z against the grid's best region."""

    def num(v, fmt):
        return format(v, fmt) if isinstance(v, (int, float)) else "n/a"

    first = next(iter(reports.values()))
    crit = first["criterion"]
    lines = [
        f"## ALD rules side by side ({first.get('dataset', '')}): grid optimum n_z = "
        f"{crit.get('optimum_nz')}"
        + (f" (near it: n_z <= {_x(crit['near_edge_max_nz'])})" if crit.get("plateau_edge") else "")
        + f", best region {crit.get('best_region')}",
        "",
        "| rule | n_z per seed | recommended n_z | mean | sd | in best region | "
        "near its edge | grid steps above edge | mean distance | one ALD run / grid compute | "
        "speed-up, all seeds (compute) | speed-up (wall) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rule, r in reports.items():
        a, sp = r["ald"], r["speedup"].get("grid", {})
        per_seed = sp.get("compute_per_seed")
        share = 1 / per_seed if isinstance(per_seed, (int, float)) and per_seed else None
        rec = (r.get("recommendation") or {}).get("n_z")
        near = (
            f"{a['n_near_edge']}/{len(a['n_z'])}"
            if r["criterion"].get("plateau_edge") is not None
            else "–"
        )
        lines.append(
            f"| {rule} | {a['n_z']} | {_f(rec)} | {num(a['n_z_mean'], '.1f')} | "
            f"{num(a['n_z_std'], '.1f')} | {a['n_in_region']}/{len(a['n_z'])} | "
            f"{near} | {_x([s['steps_above_edge'] for s in a['seeds']])} | "
            f"{num(a['distance_mean'], '.1f')} | {num(share, '.3f')} | "
            f"{num(sp.get('compute'), '.2f')}x | {num(sp.get('wall'), '.2f')}x |"
        )
    return "\n".join(lines)
