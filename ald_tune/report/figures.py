"""A comparison report's three figures.

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

from ald_tune.config.vocabulary import axis_label

PANELS = ("recon_loss", "fid_gen", "fid_recon", "neg_elbo", "silhouette", "kl")
EPOCH_PANELS = ("n_z", *[p for p in PANELS if p != "neg_elbo"])
DPI = 150


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
            ax.axvspan(
                lo / 1.08,
                hi * 1.08,
                color="tab:green",
                alpha=0.12,
                lw=0,
                label="best region" if lo == c["best_region"][0] else None,
            )
        if tol:
            sign = 1 if tol["direction"] == "min" else -1
            ax.axhline(
                tol["best"] + sign * tol["tolerance"], color="tab:green", ls=":", label="tolerance"
            )
        for i, s in enumerate(seeds):
            ax.axvline(
                s["n_z"], color="tab:red", alpha=0.5, lw=1, label="ALD n_z" if i == 0 else None
            )
            ax.plot([s["n_z"]], [_nan(s[key])], "x", color="tab:red")
        _nz_axis(ax, nz, [s["n_z"] for s in seeds])
        ax.set_ylabel(axis_label(key), fontsize=9)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(
        _title(r, f"metrics against n_z (plateau edge {c['plateau_edge']}, best region shaded)")
    )
    return _save(fig, plt, path)


def plot_ald_vs_epoch(r: dict, path: str) -> str:
    """Figure 3: ALD's n_z and metrics against epoch per seed, beside the fixed optimum."""
    plt = _pyplot()
    curves = r["curves"]
    fig, axes = plt.subplots(2, 3, figsize=(14, 8), sharex=True)
    for ax, key in zip(axes.flat, EPOCH_PANELS):
        for cv in curves["ald"]:
            ax.plot(
                cv["epoch"],
                [_nan(v) for v in cv[key]],
                alpha=0.8,
                drawstyle="steps-post" if key == "n_z" else "default",
                label=f"ALD seed {cv['seed']}",
            )
        for i, cv in enumerate(curves["fixed_optimum"]):
            ax.plot(
                cv["epoch"],
                [_nan(v) for v in cv[key]],
                "k--",
                alpha=0.7,
                label=f"fixed n_z={curves['fixed_optimum_nz']}" if i == 0 else None,
            )
        ax.set_ylabel(axis_label(key), fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(_title(r, "ALD runs against epoch, beside the fixed run at the grid optimum"))
    return _save(fig, plt, path)


def plot_cost_vs_distance(reports: list[dict], path: str) -> str:
    """Each method's compute to its answer against its distance to the best region.

    One point per method (grid, grid + ASHA, units in use, the intrinsic-dimension
    estimates, each ALD rule; one ALD rule per report); left panel CPU-seconds until the
    answer was known, right panel trial-epochs, both on log axes (a method with no
    training has no trial-epochs and appears on the left only).
    """
    plt = _pyplot()
    methods: dict[str, dict] = {}
    for r in reports:
        for m in r.get("methods", []):
            methods.setdefault(m["method"], m)  # the grid's is the same in every report
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, key, label in (
        (axes[0], "answer_cpu_s", "CPU-seconds to the answer (log)"),
        (axes[1], "answer_trial_epochs", "trial-epochs to the answer (log)"),
    ):
        for i, (name, m) in enumerate(methods.items()):
            x, y = _nan(m[key]), _nan(m["distance"])
            if not (math.isfinite(x) and x > 0 and math.isfinite(y)):
                continue
            ax.scatter([x], [y], s=60, color=f"C{i}", label=name, zorder=3)
            ax.annotate(
                f"{name}: n_z {m['n_z']}",
                (x, y),
                textcoords="offset points",
                xytext=(6, 6),
                fontsize=8,
            )
        ax.set_xscale("log")
        ax.margins(x=0.25, y=0.1)
        ax.set_xlabel(label)
        ax.set_ylabel("distance to the best region, in n_z (lower is better; 0 = inside)")
        ax.set_ylim(bottom=-0.5)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    first = reports[0] if reports else {}
    rules = ", ".join(str(r.get("rule")) for r in reports if r.get("rule"))
    fig.suptitle(
        f"{first.get('dataset') or 'dataset'}"
        f"{', rules ' + rules if rules else ''}: compute to the answer against distance to the "
        "grid's best region"
    )
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
