"""The report's Markdown, and several rules side by side."""

from __future__ import annotations

from test_build import MEANS, ald_trials, grid_trials

from ald_tune.report.build import build_report
from ald_tune.report.tables import markdown_text, side_by_side


def test_rules_side_by_side_with_the_recommended_nz():
    a = build_report(
        grid_trials(), ald_trials((8, 9, 16)), rule="ald-tune", dataset="toy"
    ).to_dict()
    b = build_report(grid_trials(), ald_trials((2, 2)), rule="paper", dataset="toy").to_dict()
    table = side_by_side({"ald-tune": a, "paper": b})
    assert table.startswith("## ALD rules side by side (toy): grid optimum n_z = 8")
    assert "| ald-tune | [8, 9, 16] | 9 |" in table and "| paper | [2, 2] | 2 |" in table
    text = markdown_text(a)
    assert "**Recommended n_z: 9** (rule 'ald-tune', per seed [8, 9, 16]" in text
    assert "## Every method ranked" in text


def test_the_distance_to_the_edge_per_seed_and_per_rule():
    a = build_report(
        grid_trials(), ald_trials((8, 12, 16)), rule="ald-tune", dataset="toy"
    ).to_dict()
    b = build_report(grid_trials(), ald_trials((2, 40)), rule="paper", dataset="toy").to_dict()
    table = side_by_side({"ald-tune": a, "paper": b})
    assert "grid optimum n_z = 8 (near it: n_z <= 12), best region [8, 16, 32]" in table
    assert "| in best region | near its edge | grid steps above edge | mean distance |" in table
    assert "| 3/3 | 2/3 | 0, 0.5, 1 | 0.0 |" in table
    assert "| 0/2 | 0/2 | -2, 2.5 |" in table  # 2 below the edge, 40 past the grid's top
    text = markdown_text(a)
    assert "3/3 in the best region, mean distance 0.0; 2/3 near its edge (n_z <= 12), on " in (text)
    assert "on average 0.5 grid steps above it, 1.5x the edge" in text
    assert "Near the edge: in the region and n_z <= max(edge + 2, 1.5 x edge) = 12." in text
    assert "| in region | distance | near edge | grid steps above edge | n_z / edge |" in text
    for row in ("| 0 | 8 | yes | 0 | yes | 0 | 1 |", "| 2 | 16 | yes | 0 | no | 1 | 2 |"):
        assert row in text, row


def test_no_region_no_edge():
    means = {**MEANS, "fid_gen": {2: 1.0, 4: 5.0, 8: 10.0, 16: 20.0, 32: 40.0}}
    rep = build_report(grid_trials(means=means), ald_trials(), rule="ald-tune").to_dict()
    assert rep["criterion"]["near_edge_max_nz"] is None
    assert rep["ald"]["n_near_edge"] == 0 and rep["headline"]["ald_near_edge_fraction"] is None
    assert all(s["near_edge"] is None for s in rep["ald"]["seeds"])
    assert "| r | [7, 9] | 9 | 8.0 | 1.4 | 0/2 | – | – | n/a |" in side_by_side({"r": rep})
    assert "near its edge" not in markdown_text(rep).split("\n")[3]
