"""The report's figures: labelled axes (metric and direction), n_z ticks at the grid's
points, titles naming the dataset and the rule, 150 dpi PNG plus SVG."""

from __future__ import annotations

import re

import pytest
from PIL import Image
from test_build import ald_trials, grid_trials

from ald_tune.report.build import build_report
from ald_tune.report.figures import (
    DPI,
    plot_ald_vs_epoch,
    plot_cost_vs_distance,
    plot_metrics_vs_nz,
    svg_path,
)


@pytest.fixture(scope="module")
def report():
    asha = [t for t in grid_trials(seeds=(0,)) if t.n_z_grid in (8, 16)]
    return build_report(grid_trials(), ald_trials(), asha=asha, dataset="toy", rule="ald-tune")


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


def test_cost_against_distance(report, tmp_path):
    path = plot_cost_vs_distance([report], str(tmp_path / "c.png"))
    t = texts(path)
    assert "CPU-seconds to the answer (log)" in t and "trial-epochs to the answer (log)" in t
    assert any("distance to the best region" in x and "lower is better" in x for x in t)
    assert {"grid", "grid + ASHA", "ALD (ald-tune)"} <= set(t)
    assert any(x.startswith("toy, rules ald-tune:") for x in t)
