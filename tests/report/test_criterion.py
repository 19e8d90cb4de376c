"""Where an n_z lies against the grid's best region."""

from __future__ import annotations

import pytest

from ald_tune.report.criterion import (
    edge_distance,
    epoch_noise,
    grid_position,
    in_region,
    near_edge_bound,
)
from ald_tune.sweeps.results import TrialRecord


def test_an_nz_between_grid_points_is_in_the_region_when_both_neighbours_are():
    grid, region = [2, 4, 8, 16], [4, 8]
    assert in_region(4, grid, region) and in_region(6, grid, region)
    assert not in_region(12, grid, region) and not in_region(3, grid, region)
    assert not in_region(32, grid, region)


def test_epoch_noise_of_one_seed():
    flat = TrialRecord("t", history=[{"epoch": e, "m": 1.0} for e in range(12)])
    assert epoch_noise([flat], "m") == (0.0, 8)


GRID = [2, 4, 6, 8, 12, 16, 24, 32, 48, 64]  # digits' grid


def test_near_the_edge_is_the_larger_of_edge_plus_two_and_one_and_a_half_edges():
    assert [near_edge_bound(e) for e in (1, 2, 3, 4, 6, 7, 10, 16)] == [
        3,
        4,
        5,
        6,
        9.0,
        10.5,
        15.0,
        24.0,
    ]


@pytest.mark.parametrize(
    ("edge", "region_top", "nz", "near"),
    [
        (4, 16, 4, True),  # the edge itself
        (4, 16, 6, True),  # edge + 2 = 1.5 x edge = 6: the bound is inclusive
        (4, 16, 7, False),  # one past it (off the grid, in the region)
        (8, 32, 12, True),  # 1.5 x 8 = 12 > 8 + 2
        (8, 32, 10, True),  # off the grid, between 8 and 12
        (8, 32, 13, False),
        (2, 16, 4, True),  # 2 + 2 = 4 > 1.5 x 2
        (2, 16, 5, False),
        (16, 64, 24, True),
        (16, 64, 25, False),
        (4, 16, 3, False),  # below the edge: outside the region, never near
        (4, 16, 2, False),
        (4, 4, 5, False),  # within the bound but past a region that ends at the edge
        (4, 4, 4, True),
    ],
)
def test_near_edge_at_its_boundaries(edge, region_top, nz, near):
    region = [g for g in GRID if edge <= g <= region_top]
    assert edge_distance(nz, GRID, region)["near_edge"] is near


def test_grid_steps_above_the_edge():
    region = [4, 6, 8, 12, 16]

    def steps(nz):
        return edge_distance(nz, GRID, region)["steps_above_edge"]

    # On the grid: how many grid points g with edge < g <= n_z.
    assert [steps(nz) for nz in (4, 6, 8, 12, 64)] == [0, 1, 2, 3, 8]
    # Off the grid: that count plus the fraction of the way to the next grid point.
    assert steps(11) == 2.75 and steps(5) == 0.5 and steps(10) == 2.5 and steps(40) == 6.5
    assert steps(13) == pytest.approx(3.25) and steps(17) == 4.125
    # Below the edge: negative; past either end of the grid, the nearest gap goes on.
    assert steps(2) == -1 and steps(3) == -0.5 and steps(1) == -1.5 and steps(80) == 9
    assert edge_distance(11, GRID, region)["nz_over_edge"] == 2.75
    assert edge_distance(7, GRID, region)["nz_over_edge"] == 1.75
    assert edge_distance(10, GRID, [8, 12])["steps_above_edge"] == 0.5  # another edge
    # A one-point grid counts steps of its point's size.
    assert edge_distance(16, [8], [8]) == {
        "near_edge": False,
        "steps_above_edge": 1.0,
        "nz_over_edge": 2.0,
    }


def test_without_a_region_nothing_is_near_an_edge():
    assert edge_distance(8, GRID, []) == dict.fromkeys(
        ("near_edge", "steps_above_edge", "nz_over_edge")
    )
    assert grid_position(12, GRID) == 4 and grid_position(14, GRID) == 4.5
