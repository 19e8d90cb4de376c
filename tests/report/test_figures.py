"""The report's figures: labelled axes (metric and direction), n_z ticks at the grid's
points, titles naming the dataset and the rule, 150 dpi PNG plus SVG."""

from __future__ import annotations

import re

import pytest
from PIL import Image
from test_build import MEANS, ald_trials, grid_trials

from ald_tune.report.build import build_report
from ald_tune.report.figures import (
    DPI,
    _points,
    place_labels,
    plot_ald_vs_epoch,
    plot_cost_vs_distance,
    plot_metrics_vs_nz,
    svg_path,
)


@pytest.fixture(scope="module")
def report():
    asha = [t for t in grid_trials(seeds=(0,)) if t.n_z_grid in (8, 16)]
    return build_report(
        grid_trials(), ald_trials(), asha=asha, dataset="toy", rule="ald-tune"
    ).to_dict()


def texts(path):
    """Every text the SVG holds (matplotlib writes each as a comment beside its glyphs)."""
    return re.findall(r"<!-- (.*?) -->", open(svg_path(path), encoding="utf-8").read())


def test_metrics_against_nz(report, tmp_path):
    path = plot_metrics_vs_nz(report, str(tmp_path / "m.png"))
    assert Image.open(path).info["dpi"] == pytest.approx((DPI, DPI), abs=0.5)
    t = texts(path)
    assert "recon loss (BCE or Gaussian NLL, nats) (lower is better)" in t
    assert "silhouette of posterior means (higher is better)" in t
    assert "n_z (latent units)" in t
    assert all(str(nz) in t for nz in (2, 4, 8, 16, 32))  # ticks at the grid's points
    assert not any(re.fullmatch(r"10\^\{?\d", x) or "^" in x for x in t)  # no 2^k labels
    assert any(x.startswith("toy, rule 'ald-tune': metrics against n_z") for x in t)


def test_ald_against_epoch(report, tmp_path):
    path = plot_ald_vs_epoch(report, str(tmp_path / "e.png"))
    t = texts(path)
    assert "epoch" in t and "n_z (latent units)" in t
    assert "FID of generated samples (lower is better)" in t
    assert any(x.startswith("toy, rule 'ald-tune': ALD runs against epoch") for x in t)


def test_nz_against_compute_to_a_trained_model(report, tmp_path):
    paper = build_report(grid_trials(), ald_trials((40, 41)), dataset="toy", rule="paper").to_dict()
    path = plot_cost_vs_distance([report, paper], str(tmp_path / "c.png"))
    assert Image.open(path).info["dpi"] == pytest.approx((DPI, DPI), abs=0.5)
    t = texts(path)
    assert "CPU-seconds to a trained model at the answer (log; lower is better)" in t
    assert any(x.startswith("n_z chosen (latent units") for x in t)
    assert all(str(nz) in t for nz in (2, 4, 8, 16, 32))  # n_z ticks at the grid's points
    # One label per method, ALD's listing its seeds; the region, its edge and the bound.
    assert {
        "grid: n_z 8",
        "grid + ASHA: n_z 16",
        "ALD (ald-tune): n_z 7, 9",
        "ALD (paper): n_z 40, 41",
        "best region",
        "plateau edge (grid optimum) 8",
        "near the edge: n_z ≤ 12",
    } <= set(t)
    assert any(x.startswith("toy, rules ald-tune, paper: n_z chosen against compute") for x in t)


def test_the_cost_figure_has_one_marker_per_method_and_per_ald_seed(report):
    points = {p["label"]: p["xy"] for p in _points([report])}
    grid = next(m for m in report["methods"] if m["key"] == "grid")
    assert points["grid: n_z 8"] == [(grid["trained_cpu_s"], 8.0)]
    seeds = report["ald"]["seeds"]
    assert points["ALD (ald-tune): n_z 7, 9"] == [(s["cpu_s"], float(s["n_z"])) for s in seeds]


@pytest.mark.parametrize(
    ("anchors", "gap"),
    [
        ([0.5, 0.5, 0.5, 0.5], 0.1),  # every method at one point
        ([0.95, 0.97, 0.99, 0.2], 0.05),  # crowded at the top: pushed back down
        ([0.0, 0.01, 0.02], 0.04),  # crowded at the bottom
        ([0.3, 0.9, 0.1, 0.6, 0.61, 0.62], 0.03),
    ],
)
def test_labels_never_overlap_and_stay_in_the_column(anchors, gap):
    ys = place_labels(anchors, gap)
    assert place_labels(anchors, gap) == ys  # deterministic
    s = sorted(ys)
    assert all(b - a >= gap - 1e-12 for a, b in zip(s, s[1:]))
    assert all(0.0 <= y <= 1.0 for y in ys)
    # the order of the anchors is kept, and a label that has room stays at its anchor
    order = sorted(range(len(anchors)), key=lambda i: (anchors[i], i))
    assert [ys[i] for i in order] == s
    assert place_labels([0.2, 0.8], 0.1) == [0.2, 0.8]


def test_the_cost_figure_without_a_best_region(tmp_path, recwarn):
    means = {**MEANS, "fid_gen": {2: 1.0, 4: 5.0, 8: 10.0, 16: 20.0, 32: 40.0}}
    rep = build_report(grid_trials(means=means), ald_trials(), rule="ald-tune").to_dict()
    assert rep["criterion"]["best_region"] == []
    t = texts(plot_cost_vs_distance([rep], str(tmp_path / "c.png")))
    assert "ALD (ald-tune): n_z 7, 9" in t and "best region" not in t
    assert not [w for w in recwarn if "legend" in str(w.message)]


def test_the_figures_leave_the_callers_matplotlib_backend_alone(report, tmp_path):
    # The notebook renders the report beside its own (inline) figures: no backend switch to
    # Agg, no pyplot figure left open.
    import matplotlib
    import matplotlib.pyplot as plt

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        plot_metrics_vs_nz(report, str(tmp_path / "m.png"))
        plot_ald_vs_epoch(report, str(tmp_path / "e.png"))
        plot_cost_vs_distance([report], str(tmp_path / "c.png"))
        assert matplotlib.get_backend() == "svg" and plt.get_fignums() == []
    finally:
        matplotlib.use(before)
