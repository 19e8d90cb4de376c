"""How one value prints in a report's Markdown tables."""

from __future__ import annotations

import math

from ald_tune.report.cells import cell, md_table, region_cell, seeds_cell, step_cell


def test_numbers_flags_and_missing_values():
    assert [cell(None), cell(math.nan), cell(True), cell(False), cell(7)] == [
        "–",
        "–",
        "yes",
        "no",
        "7",
    ]
    assert cell(1.23456) == "1.235"
    assert cell(1.23456, 1) == "1.2"
    assert cell(12345.6) == "1.23e+04"


def test_grid_steps_and_ratios_keep_two_decimals_at_most():
    assert [step_cell(2.75), step_cell(3.0), step_cell(-1), step_cell(None)] == [
        "2.75",
        "3",
        "-1",
        "–",
    ]
    assert step_cell([1, 2.5]) == "1, 2.5"
    assert step_cell([None, None]) == "–"


def test_cells_that_count_seeds_and_the_region():
    assert (
        seeds_cell({"n_seeds": 3, "in_region": False, "n_in_region": 2}, "in_region", "n_in_region")
        == "2/3"
    )
    assert seeds_cell({"in_region": True}, "in_region", "n_in_region") is True
    assert region_cell({"in_region": False}) == "no"
    assert region_cell({"in_region": True, "within_tolerance": False}) == "yes (noise hole)"


def test_a_table_has_a_header_a_rule_and_a_blank_line_after_it():
    assert md_table(["a", "b"], [["x", 0.5]]) == ["| a | b |", "|---|---|", "| x | 0.500 |", ""]
