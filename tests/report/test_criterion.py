"""Where an n_z lies against the grid's best region."""

from __future__ import annotations

from ald_tune.report.criterion import epoch_noise, in_region
from ald_tune.sweeps.results import TrialRecord


def test_an_nz_between_grid_points_is_in_the_region_when_both_neighbours_are():
    grid, region = [2, 4, 8, 16], [4, 8]
    assert in_region(4, grid, region) and in_region(6, grid, region)
    assert not in_region(12, grid, region) and not in_region(3, grid, region)
    assert not in_region(32, grid, region)


def test_epoch_noise_of_one_seed():
    flat = TrialRecord("t", history=[{"epoch": e, "m": 1.0} for e in range(12)])
    assert epoch_noise([flat], "m") == (0.0, 8)
