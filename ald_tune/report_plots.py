"""How a comparison report looks: its Markdown tables and its three figures.

``side_by_side`` puts the reports of several ALD rules (one grid) in one table.

Everything here reads only the JSON-ready dict of :func:`ald_tune.report.build_report`,
so a report loaded back from ``comparison.json`` renders the same. Every figure is
written as a 150 dpi PNG and an SVG beside it, with each axis naming its metric and
which direction is better, n_z ticks at the grid's points, and a title naming the
dataset and the rule.

* ``fig_metrics_vs_nz`` (the paper's Figure 2): every metric against n_z for the
  grid (mean ± spread over seeds), the best region shaded, the tolerance line of each
  criterion metric, and ALD's chosen n_z per seed as vertical lines and points.
* ``fig_ald_vs_epoch`` (the paper's Figure 3): ALD's n_z and metrics against epoch
  for each seed, beside the fixed run at the grid optimum (dashed).
* ``fig_cost_vs_distance``: each method's compute (CPU-s and trial-epochs per answer)
  against its distance to the grid's best region (grid, grid + ASHA, each ALD rule).
"""

from __future__ import annotations

import math
import os
from typing import Any

from .vocabulary import RANKED, axis_label

PANELS = ("recon_loss", "fid_gen", "fid_recon", "neg_elbo", "silhouette", "kl")
EPOCH_PANELS = ("n_z", *[p for p in PANELS if p != "neg_elbo"])
TABLE = RANKED
DPI = 150


def _f(v: Any, digits: int = 3) -> str:
    if v is None or isinstance(v, float) and not math.isfinite(v):
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    return f"{v:.{digits}g}" if abs(v) >= 1000 else f"{v:.{digits}f}"


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(c if isinstance(c, str) else _f(c) for c in r) + " |" for r in rows]
    return out + [""]


def _region_cell(row: dict) -> str:
    if not row["in_region"]:
        return "no"
    return "yes" if row.get("within_tolerance", True) else "yes (noise hole)"


def markdown_text(r: dict) -> str:
    """The report as Markdown: headline, grid, criterion, ALD seeds, versus, cost."""
    c, a, g, h = r["criterion"], r["ald"], r["grid"], r["headline"]
    region = ", ".join(map(str, c["best_region"])) or "none"
    lines = [f"# ALD vs grid search{': ' + r['dataset'] if r['dataset'] else ''}", "",
             f"- **Grid optimum (plateau edge)**: n_z = {_f(c['plateau_edge'])}; best region "
             f"{{{region}}}; mean-rank choice n_z = {_f(g['mean_rank_nz'])}",
             f"- **ALD's n_z**: {', '.join(map(str, a['n_z']))} (mean {_f(a['n_z_mean'], 1)}, "
             f"sd {_f(a['n_z_std'], 1)}); {a['n_in_region']}/{len(a['seeds'])} in the best "
             f"region, mean distance {_f(a['distance_mean'], 1)}",
             f"- **ALD speed-up over the grid**: compute {_f(h.get('speedup_compute'), 2)}x "
             f"(per ALD seed {_f(h.get('speedup_compute_per_seed'), 2)}x), wall time "
             f"{_f(h.get('speedup_wall'), 2)}x", ""]
    rec = r.get("recommendation") or {}
    if rec.get("n_z") is not None:
        lines[-1:] = [f"- **Recommended n_z: {rec['n_z']}** (rule {rec['rule']!r}, per seed "
                      f"{rec['per_seed']}: {rec['reason']})", ""]
    if "asha" in r["speedup"]:
        s = r["speedup"]["asha"]
        lines[-1:] = [f"- **ALD speed-up over grid + ASHA**: compute {_f(s['compute'], 2)}x "
                      f"(per seed {_f(s['compute_per_seed'], 2)}x), wall {_f(s['wall'], 2)}x", ""]
    lines += [f"## Grid ({g['n_seeds']} seed(s) per n_z, {g['n_errored']} errored trial(s) "
              "left out)", ""]
    lines += _table(["n_z", "seeds", *TABLE, "mean rank", "best region"],
                    [[x["n_z"], x["n_seeds"], *[x[m] for m in TABLE], x["mean_rank"],
                      _region_cell(x)] for x in g["rows"]])
    lines += _table(["", *TABLE], [["optimal n_z", *[g["optimum_by_metric"][m]["n_z"]
                                                     for m in TABLE]]])
    lines += [f"## Criterion: plateau edge over {', '.join(c['metrics'])}", "",
              f"Smallest grid n_z whose every criterion metric is within tolerance of the grid's "
              f"best; tolerance = max({c['rel_floor']} x |best|, 2 x spread over seeds). "
              f"The best region runs from that edge to the largest n_z within tolerance "
              f"(one span: a noisy miss inside it is a noise hole). An ALD n_z between two "
              f"grid points is in the region when both are. "
              f"Optimum rule used: {c['optimum_rule']}.", ""]
    lines += _table(["metric", "best", "at n_z", "spread", "spread from", "tolerance"],
                    [[m, t["best"], t["best_nz"], t["spread"], t["spread_source"], t["tolerance"]]
                     for m, t in c["tolerances"].items()])
    lines += [f"## ALD seeds ({a['n_errored']} errored trial(s) left out)", ""]
    lines += _table(["seed", "n_z", "in region", "distance", *TABLE[:3], "silhouette", "epochs",
                     "CPU-s", "fixed run at its n_z"],
                    [[s["seed"], s["n_z"], s["in_region"], s["distance"], *[s[m] for m in TABLE[:3]],
                      s["silhouette"], s["epochs"], s["cpu_s"], s["fixed_source"]]
                     for s in a["seeds"]])
    v = r["vs"]
    lines += [f"## Final metrics: ALD (mean over seeds) vs grid optimum (n_z = "
              f"{_f(v['optimum_nz'])}) vs fixed runs at ALD's n_z ({v['n_fixed_seeds']} seed(s))",
              ""]
    lines += _table(["metric", "ALD", "grid optimum", "fixed at ALD's n_z", "ALD - optimum"],
                    [[m, x["ald"], x["grid_optimum"],
                      x["fixed_at_ald_nz"] if x["fixed_at_ald_nz"] is not None else "not run",
                      x["ald_minus_optimum"]] for m, x in v["metrics"].items()])
    lines += ["## Cost", ""]
    lines += _table(["method", "trials", "errored", "trial-epochs", "CPU-s", "GPU-s", "wall s",
                     "CPU-s from"],
                    [[k, x["n_trials"], x["n_errored"], x["trial_epochs"], x["cpu_s"], x["gpu_s"],
                      x["wall_s"], ", ".join(x["cpu_source"])] for k, x in r["cost"].items()])
    lines += ["## Each method's answer and its compute", ""]
    lines += _table(["method", "n_z", "in best region", "distance", "CPU-s per answer",
                     "trial-epochs per answer"],
                    [[x["method"], ", ".join(map(str, x["n_z"])) if isinstance(x["n_z"], list)
                      else _f(x["n_z"]), x["in_region"], x["distance"], x["cpu_s"],
                      x["trial_epochs"]] for x in r.get("methods", [])])
    return "\n".join(lines)


def side_by_side(reports: dict) -> str:
    """One Markdown table: each ALD rule's chosen n_z against the grid's best region."""
    def num(v, fmt):
        return format(v, fmt) if isinstance(v, (int, float)) else "n/a"

    first = next(iter(reports.values()))
    crit = first["criterion"]
    lines = [f"## ALD rules side by side ({first.get('dataset', '')}): grid optimum n_z = "
             f"{crit.get('optimum_nz')}, best region {crit.get('best_region')}", "",
             "| rule | n_z per seed | recommended n_z | mean | sd | in best region | "
             "mean distance | one ALD run / grid compute | speed-up, all seeds (compute) | "
             "speed-up (wall) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for rule, r in reports.items():
        a, sp = r["ald"], r["speedup"].get("grid", {})
        per_seed = sp.get("compute_per_seed")
        share = 1 / per_seed if isinstance(per_seed, (int, float)) and per_seed else None
        rec = (r.get("recommendation") or {}).get("n_z")
        lines.append(f"| {rule} | {a['n_z']} | {_f(rec)} | {num(a['n_z_mean'], '.1f')} | "
                     f"{num(a['n_z_std'], '.1f')} | {a['n_in_region']}/{len(a['n_z'])} | "
                     f"{num(a['distance_mean'], '.1f')} | {num(share, '.3f')} | "
                     f"{num(sp.get('compute'), '.2f')}x | {num(sp.get('wall'), '.2f')}x |")
    return "\n".join(lines)


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _title(r: dict, what: str) -> str:
    rule = f", rule {r['rule']!r}" if r.get("rule") else ""
    return f"{r.get('dataset') or 'dataset'}{rule}: {what}"


def _nz_axis(ax, nz: list[int], extra: list[int]) -> None:
    """Log-2 n_z axis with integer ticks at the grid's points."""
    if min(nz + extra) > 0:
        ax.set_xscale("log", base=2)
    ax.set_xticks(nz)
    ax.set_xticklabels([str(n) for n in nz])
    ax.minorticks_off()
    ax.set_xlabel(axis_label("n_z"))


def plot_metrics_vs_nz(r: dict, path: str) -> str:
    """Figure 2: every metric against n_z for the grid, ALD's choices marked; returns path."""
    plt = _pyplot()
    rows, c, seeds = r["grid"]["rows"], r["criterion"], r["ald"]["seeds"]
    nz = [x["n_z"] for x in rows]
    fig, axes = plt.subplots(2, 3, figsize=(14, 8))
    for ax, key in zip(axes.flat, PANELS):
        mean = [_nan(x[key]) for x in rows]
        tol = c["tolerances"].get(key)
        fallback = tol["spread"] if tol else 0.0
        err = [_nan(x[key + "_std"]) if x[key + "_std"] is not None else fallback for x in rows]
        ax.errorbar(nz, mean, yerr=err, marker="o", capsize=3, label="grid (mean ± sd)")
        for lo, hi in _spans(nz, c["best_region"]):
            ax.axvspan(lo / 1.08, hi * 1.08, color="tab:green", alpha=0.12, lw=0,
                       label="best region" if lo == c["best_region"][0] else None)
        if tol:
            sign = 1 if tol["direction"] == "min" else -1
            ax.axhline(tol["best"] + sign * tol["tolerance"], color="tab:green", ls=":",
                       label="tolerance")
        for i, s in enumerate(seeds):
            ax.axvline(s["n_z"], color="tab:red", alpha=0.5, lw=1,
                       label="ALD n_z" if i == 0 else None)
            ax.plot([s["n_z"]], [_nan(s[key])], "x", color="tab:red")
        _nz_axis(ax, nz, [s["n_z"] for s in seeds])
        ax.set_ylabel(axis_label(key), fontsize=9)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(_title(r, f"metrics against n_z (plateau edge {c['plateau_edge']}, "
                           "best region shaded)"))
    return _save(fig, plt, path)


def plot_ald_vs_epoch(r: dict, path: str) -> str:
    """Figure 3: ALD's n_z and metrics against epoch per seed, beside the fixed optimum."""
    plt = _pyplot()
    curves = r["curves"]
    fig, axes = plt.subplots(2, 3, figsize=(14, 8), sharex=True)
    for ax, key in zip(axes.flat, EPOCH_PANELS):
        for cv in curves["ald"]:
            ax.plot(cv["epoch"], [_nan(v) for v in cv[key]], alpha=0.8,
                    drawstyle="steps-post" if key == "n_z" else "default",
                    label=f"ALD seed {cv['seed']}")
        for i, cv in enumerate(curves["fixed_optimum"]):
            ax.plot(cv["epoch"], [_nan(v) for v in cv[key]], "k--", alpha=0.7,
                    label=f"fixed n_z={curves['fixed_optimum_nz']}" if i == 0 else None)
        ax.set_ylabel(axis_label(key), fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(_title(r, "ALD runs against epoch, beside the fixed run at the grid optimum"))
    return _save(fig, plt, path)


def plot_cost_vs_distance(reports: list[dict], path: str) -> str:
    """Each method's compute per answer against its distance to the best region.

    One point per method (grid, grid + ASHA when run, each ALD rule; one ALD rule per
    report); left panel CPU-seconds, right panel trial-epochs, both on log axes.
    """
    plt = _pyplot()
    methods: dict[str, dict] = {}
    for r in reports:
        for m in r.get("methods", []):
            methods.setdefault(m["method"], m)  # the grid's is the same in every report
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, key, label in ((axes[0], "cpu_s", "CPU-seconds per answer (log)"),
                           (axes[1], "trial_epochs", "trial-epochs per answer (log)")):
        for i, (name, m) in enumerate(methods.items()):
            x, y = _nan(m[key]), _nan(m["distance"])
            if not (math.isfinite(x) and x > 0 and math.isfinite(y)):
                continue
            ax.scatter([x], [y], s=60, color=f"C{i}", label=name, zorder=3)
            ax.annotate(f"{name}: n_z {m['n_z']}", (x, y), textcoords="offset points",
                        xytext=(6, 6), fontsize=8)
        ax.set_xscale("log")
        ax.margins(x=0.25, y=0.1)
        ax.set_xlabel(label)
        ax.set_ylabel("distance to the best region, in n_z (lower is better; 0 = inside)")
        ax.set_ylim(bottom=-0.5)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    first = reports[0] if reports else {}
    rules = ", ".join(str(r.get("rule")) for r in reports if r.get("rule"))
    fig.suptitle(f"{first.get('dataset') or 'dataset'}"
                 f"{', rules ' + rules if rules else ''}: compute against distance to the "
                 "grid's best region")
    return _save(fig, plt, path)


def _spans(nz: list[int], region: list[int]) -> list[tuple[int, int]]:
    """Runs of consecutive grid n_z inside the region, as (first, last)."""
    spans: list[list[int]] = []
    for i, n in enumerate(nz):
        if n in region:
            if spans and i and nz[i - 1] == spans[-1][1]:
                spans[-1][1] = n
            else:
                spans.append([n, n])
    return [(a, b) for a, b in spans]


def _nan(v: Any) -> float:
    return math.nan if v is None or isinstance(v, list) else float(v)


def svg_path(path: str) -> str:
    """The SVG written beside a figure's PNG."""
    return os.path.splitext(path)[0] + ".svg"


def _save(fig, plt, path: str) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    fig.savefig(svg_path(path))
    plt.close(fig)
    return path
