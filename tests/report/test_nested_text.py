"""Nested dropout in the report's Markdown: absent without a nested sweep, else its tables."""

from __future__ import annotations

from test_build import ald_trials, grid_trials
from test_nested import curve, nested_trial

from ald_tune.report.build import build_report
from ald_tune.report.nested_text import nested_lines, nested_vs_ald


def test_without_a_nested_sweep_there_is_no_nested_text():
    rep = build_report(grid_trials(), ald_trials())
    assert nested_lines(rep) == []
    assert nested_vs_ald(rep) == ""


def test_each_seed_and_the_curve_beside_the_grid():
    rep = build_report(
        grid_trials(), ald_trials(), nested=[nested_trial(0, curve()), nested_trial(1, curve(16))]
    )
    lines = nested_lines(rep)
    assert lines[0].startswith("## Nested dropout: one run of n_z = 32 per seed")
    assert (
        "| n_z | recon_loss: grid / nested | fid_gen: grid / nested | fid_recon: grid / nested |"
        in lines
    )
    seed_rows = [x for x in lines if x.startswith("| 0 | ") or x.startswith("| 1 | ")]
    assert [r.split(" | ")[1] for r in seed_rows] == ["8", "16"]
    assert "nested dropout" in nested_vs_ald(rep)
