"""A comparison report's three figures.

Everything here reads only the :class:`~ald_tune.report.record.Report` of
:func:`ald_tune.report.build_report`, so a report loaded back from ``comparison.json``
renders the same (each function also takes that file's dict). Every figure is
written as a 150 dpi PNG and an SVG beside it, with each axis naming its metric and
which direction is better, n_z ticks at the grid's points, and a title naming the
dataset and the rule.

* ``fig_metrics_vs_nz`` (the paper's Figure 2): every metric against n_z for the
  grid (mean ± spread over seeds), the best region shaded, the tolerance line of each
  criterion metric, and ALD's chosen n_z per seed as vertical lines and points.
* ``fig_ald_vs_epoch`` (the paper's Figure 3): ALD's n_z and metrics against epoch
  for each seed, beside the fixed run at the grid optimum (dashed).
* ``fig_cost_vs_distance``: each method's n_z against its compute to a trained model at
  that n_z (log axis), one marker per method (per seed for ALD), the best region shaded,
  its edge (the grid's optimum) a line, labels that do not overlap.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from ald_tune.config.vocabulary import axis_label
from ald_tune.report.record import Criterion, Report, as_report

PANELS = ("recon_loss", "fid_gen", "fid_recon", "neg_elbo", "silhouette", "kl")
EPOCH_PANELS = ("n_z", *[p for p in PANELS if p != "neg_elbo"])
DPI = 150


def _title(r: Report, what: str) -> str:
    rule = f", rule {r.rule!r}" if r.rule else ""
    return f"{r.dataset or 'dataset'}{rule}: {what}"


def _nz_axis(ax, nz: list[int], extra: list[int]) -> None:
    """Log-2 n_z axis with integer ticks at the grid's points."""
    if min(nz + extra) > 0:
        ax.set_xscale("log", base=2)
    ax.set_xticks(nz)
    ax.set_xticklabels([str(n) for n in nz])
    ax.minorticks_off()
    ax.set_xlabel(axis_label("n_z"))


def plot_metrics_vs_nz(r: Report | dict, path: str) -> str:
    """Figure 2: every metric against n_z for the grid, ALD's choices marked; returns path."""
    r = as_report(r)
    rows, c, seeds = r.grid.rows, r.criterion, r.ald.seeds
    nz = [x.n_z for x in rows]
    region = list(c.best_region)
    fig = new_figure(figsize=(14, 8))
    axes = fig.subplots(2, 3)
    for ax, key in zip(axes.flat, PANELS):
        mean = [_nan(x.metrics[key]) for x in rows]
        tol = c.tolerances.get(key)
        fallback = tol.spread if tol else 0.0
        err = [
            _nan(x.metrics[key + "_std"]) if x.metrics[key + "_std"] is not None else fallback
            for x in rows
        ]
        ax.errorbar(nz, mean, yerr=err, marker="o", capsize=3, label="grid (mean ± sd)")
        for lo, hi in _spans(nz, region):
            ax.axvspan(
                lo / 1.08,
                hi * 1.08,
                color="tab:green",
                alpha=0.12,
                lw=0,
                label="best region" if lo == region[0] else None,
            )
        if tol:
            sign = 1 if tol.direction == "min" else -1
            ax.axhline(
                _nan(tol.best) + sign * _nan(tol.tolerance),
                color="tab:green",
                ls=":",
                label="tolerance",
            )
        for i, s in enumerate(seeds):
            ax.axvline(s.n_z, color="tab:red", alpha=0.5, lw=1, label="ALD n_z" if i == 0 else None)
            ax.plot([s.n_z], [_nan(s.metrics[key])], "x", color="tab:red")
        _nz_axis(ax, nz, [s.n_z for s in seeds])
        ax.set_ylabel(axis_label(key), fontsize=9)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(
        _title(r, f"metrics against n_z (plateau edge {c.plateau_edge}, best region shaded)")
    )
    return _save(fig, path)


def plot_ald_vs_epoch(r: Report | dict, path: str) -> str:
    """Figure 3: ALD's n_z and metrics against epoch per seed, beside the fixed optimum."""
    r = as_report(r)
    curves = r.curves
    fig = new_figure(figsize=(14, 8))
    axes = fig.subplots(2, 3, sharex=True)
    for ax, key in zip(axes.flat, EPOCH_PANELS):
        for cv in curves.ald:
            ax.plot(
                list(cv.epoch),
                [_nan(v) for v in cv.series[key]],
                alpha=0.8,
                drawstyle="steps-post" if key == "n_z" else "default",
                label=f"ALD seed {cv.seed}",
            )
        for i, cv in enumerate(curves.fixed_optimum):
            ax.plot(
                list(cv.epoch),
                [_nan(v) for v in cv.series[key]],
                "k--",
                alpha=0.7,
                label=f"fixed n_z={curves.fixed_optimum_nz}" if i == 0 else None,
            )
        ax.set_ylabel(axis_label(key), fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(_title(r, "ALD runs against epoch, beside the fixed run at the grid optimum"))
    return _save(fig, path)


MARKERS = ("s", "D", "^", "v", "P", "X", "o", "*", "h", "p")
# Method colours: matplotlib's cycle without its green, which marks the best region.
COLOURS = ("C0", "C1", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "k")
LABEL_PT = 8  # label font size (points)


def _points(reports: list[Report]) -> list[dict]:
    """One entry per method (the grid's and the baselines' are the same in every report;
    one ALD per report): its label and its markers (x: CPU-s to a trained model, y: n_z;
    ALD and nested dropout: one per seed, each seed's own run). Points that a log axis
    cannot show (no answer, no compute) are left out."""
    methods: dict[str, dict] = {}
    for r in map(as_report, reports):
        for m in r.methods:
            if m.method in methods:
                continue
            if m.key == "ald":
                xy = [(_nan(s.cpu_s), _nan(s.n_z)) for s in r.ald.seeds]
                nz = ", ".join(str(s.n_z) for s in r.ald.seeds)
            elif m.key == "nested" and r.nested:  # its wide run, then a grid trial at the answer
                seeds = r.nested.seeds
                xy = [(_nan(_sum(s.cpu_s, s.fixed_cpu_s)), _nan(s.n_z)) for s in seeds]
                nz = ", ".join(str(s.n_z) for s in seeds)
            else:
                xy, nz = [(_nan(m.trained_cpu_s), _nan(m.n_z))], str(m.n_z)
            xy = [(x, y) for x, y in xy if math.isfinite(x) and x > 0 and math.isfinite(y)]
            est = " (model cost estimated)" if m.trained_estimated else ""
            if xy:
                methods[m.method] = {"label": f"{m.method}: n_z {nz}{est}", "xy": xy}
    return list(methods.values())


def place_labels(anchors: list[float], gap: float, lo: float = 0.0, hi: float = 1.0) -> list[float]:
    """Label heights as close to their ``anchors`` as they can be while every two are at
    least ``gap`` apart and all lie in [lo, hi] (when they fit), in the anchors' order.

    Written by hand: no label-placement library is installed here (adjustText is not a
    dependency), and this one-dimensional version is deterministic, so the same report
    draws the same figure: labels sit in a column beside the axes, sorted by height,
    pushed up just enough to clear the one below, then down from the top if the column
    overflows; a leader line joins each label to its markers.

    Example:
        >>> [round(y, 2) for y in place_labels([0.5, 0.5, 0.9], 0.1)]
        [0.5, 0.6, 0.9]
    """
    order = sorted(range(len(anchors)), key=lambda i: (anchors[i], i))
    ys = [min(max(anchors[i], lo), hi) for i in order]
    for k in range(1, len(ys)):  # up: clear the label below
        ys[k] = max(ys[k], ys[k - 1] + gap)
    if ys and ys[-1] > hi:  # down: back under the top, keeping the gaps
        ys[-1] = hi
        for k in range(len(ys) - 2, -1, -1):
            ys[k] = min(ys[k], ys[k + 1] - gap)
    out = [0.0] * len(anchors)
    for k, i in enumerate(order):
        out[i] = ys[k]
    return out


def _edge_marks(ax, crit: Criterion | None) -> None:
    """The best region shaded, its edge a line, the near-edge bound dotted."""
    if crit is None:
        return
    region, edge = list(crit.best_region), crit.plateau_edge
    if region:
        ax.axhspan(region[0], region[-1], color="tab:green", alpha=0.12, lw=0, label="best region")
    if edge is not None:
        ax.axhline(edge, color="tab:green", lw=1.5, label=f"plateau edge (grid optimum) {edge}")
        bound = crit.near_edge_max_nz
        ax.axhline(bound, color="tab:green", lw=1, ls=":", label=f"near the edge: n_z ≤ {bound:g}")


def plot_cost_vs_distance(reports: Sequence[Report | dict], path: str) -> str:
    """Every method's n_z against its compute to a trained model at that n_z; returns path.

    y: the n_z chosen (log 2, ticks at the grid's points); x: CPU-seconds until a model
    at that n_z has trained (log; ``trained_cpu_s``); one marker per method, one per
    seed for each ALD rule and for nested dropout (that seed's run); the best region
    shaded, its edge (the grid's optimum) a line and the near-edge bound a dotted line.
    Labels sit in a column beside the axes (:func:`place_labels`), joined to their
    markers by leader lines.
    """
    fig = new_figure(figsize=(11, 6))
    ax = fig.subplots()
    fig.subplots_adjust(left=0.08, right=0.6, bottom=0.2, top=0.9)
    typed = [as_report(r) for r in reports]
    first = typed[0] if typed else None
    crit = first.criterion if first else None
    points = _points(typed)
    for i, p in enumerate(points):
        px, py = zip(*p["xy"])
        ax.scatter(px, py, s=50, color=_colour(i), marker=MARKERS[i % len(MARKERS)], zorder=3)
    _edge_marks(ax, crit)
    grid_nz = [x.n_z for x in first.grid.rows] if first else []
    xs = [x for p in points for x, _ in p["xy"]] or [1.0]
    ys = [y for p in points for _, y in p["xy"]] + grid_nz + list(crit.best_region if crit else [])
    ax.set_xscale("log")
    ax.set_xlim(min(xs) / 3, max(xs) * 3)
    ax.set_yscale("log", base=2)
    ax.set_ylim(max(min(ys, default=1), 0.5) / 1.3, max(ys, default=2) * 1.3)
    ax.set_yticks(grid_nz)
    ax.set_yticklabels([str(n) for n in grid_nz])
    ax.minorticks_off()
    ax.set_xlabel("CPU-seconds to a trained model at the answer (log; lower is better)")
    ax.set_ylabel("n_z chosen (latent units; the edge is the grid's optimum)")
    ax.grid(alpha=0.3)
    _labels(ax, fig, points)
    if ax.get_legend_handles_labels()[0]:  # the region and its edge (none without a region)
        fig.legend(loc="lower center", ncol=3, fontsize=8, frameon=False)
    rules = ", ".join(str(r.rule) for r in typed if r.rule)
    dataset = first.dataset if first else ""
    fig.suptitle(
        f"{dataset or 'dataset'}{', rules ' + rules if rules else ''}: n_z chosen "
        "against compute to a trained model"
    )
    return _save(fig, path, tight=False)


def _labels(ax, fig, points: list[dict]) -> None:
    """Each method's label in the column right of the axes, a leader line to each marker."""
    to_axes = ax.transData + ax.transAxes.inverted()
    anchors = [sum(to_axes.transform(xy)[1] for xy in p["xy"]) / len(p["xy"]) for p in points]
    height = ax.get_position().height * fig.get_figheight()  # inches
    gap = 1.5 * LABEL_PT / 72 / height  # one line of text and a half, in axes fractions
    for i, (p, y) in enumerate(zip(points, place_labels(anchors, gap))):
        for k, xy in enumerate(p["xy"]):
            ax.annotate(
                p["label"] if k == 0 else "",
                xy=xy,
                xytext=(1.03, y),
                textcoords="axes fraction",
                fontsize=LABEL_PT,
                color=_colour(i),
                va="center",
                annotation_clip=False,
                arrowprops={"arrowstyle": "-", "color": _colour(i), "lw": 0.5, "alpha": 0.5},
            )


def _colour(i: int) -> str:
    return COLOURS[i % len(COLOURS)]


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


def _sum(a: float | None, b: float | None) -> float | None:
    """a + b, None where either is missing (the report's JSON holds no NaN)."""
    return None if a is None or b is None else a + b


def _nan(v: Any) -> float:
    return math.nan if v is None or isinstance(v, list) else float(v)


def new_figure(**kwargs: Any):
    """A matplotlib ``Figure`` outside pyplot: nothing global changes (no backend switch, no
    figure left open), so a notebook that reports keeps its own backend; ``savefig`` picks
    the writer by file type."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def svg_path(path: str) -> str:
    """The SVG written beside a figure's PNG."""
    return os.path.splitext(path)[0] + ".svg"


def _save(fig, path: str, tight: bool = True) -> str:
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    fig.savefig(svg_path(path))
    return path
