"""The report's ALD section: each seed against the grid, the fixed run and the control."""

from __future__ import annotations

import math

from test_build import MEANS, ald_trials, grid_trials, trial

from ald_tune.report.ald_seeds import ald_section, at_nz, versus
from ald_tune.report.build import build_report


def test_at_nz_takes_the_finished_trials_at_exactly_that_n_z():
    grid = grid_trials()
    assert {t.n_z_grid for t in at_nz(grid, 8)} == {8}
    assert len(at_nz(grid, 8)) == 2
    assert at_nz(grid, 9) == []


def test_a_seed_uses_the_fixed_run_at_its_n_z_else_the_grid_trial():
    rep = build_report(grid_trials(), ald_trials(finals=(7, 8))).to_dict()
    fixed = [trial({m: MEANS[m][8] for m in MEANS}, seed=0, n_z_grid=7)]
    sec = ald_section(
        ald_trials(finals=(7, 8)),
        3,
        rep["grid"]["rows"],
        rep["criterion"],
        fixed,
        grid_trials(),
    )
    assert [s["fixed_source"] for s in sec["seeds"]] == ["fixed", "grid"]
    assert (sec["n_trials"], sec["n_errored"], sec["n_fixed_compared"]) == (3, 1, 2)
    assert sec["control_pairs"] == 2 * 5  # two ordered pairs of seeds at each of 5 n_z
    vs = versus(sec, rep["grid"]["rows"], 8)
    assert vs["n_fixed_seeds"] == 2 and vs["optimum_nz"] == 8
    assert math.isfinite(vs["metrics"]["recon_loss"]["ald_minus_fixed"])
