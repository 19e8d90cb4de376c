"""The report's Markdown, and several rules side by side."""

from __future__ import annotations

from test_build import ald_trials, grid_trials

from ald_tune.report.build import build_report
from ald_tune.report.tables import markdown_text, side_by_side


def test_rules_side_by_side_with_the_recommended_nz():
    a = build_report(grid_trials(), ald_trials((8, 9, 16)), rule="ald-tune", dataset="toy")
    b = build_report(grid_trials(), ald_trials((2, 2)), rule="paper", dataset="toy")
    table = side_by_side({"ald-tune": a, "paper": b})
    assert table.startswith("## ALD rules side by side (toy): grid optimum n_z = 8")
    assert "| ald-tune | [8, 9, 16] | 9 |" in table and "| paper | [2, 2] | 2 |" in table
    text = markdown_text(a)
    assert "**Recommended n_z: 9** (rule 'ald-tune', per seed [8, 9, 16]" in text
    assert "## Every method ranked" in text
