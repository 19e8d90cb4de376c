"""How one value prints in a report's Markdown tables (:mod:`ald_tune.report.tables`).

A missing or non-finite number prints "–", a flag "yes"/"no", a grid-step count or an
n_z / edge ratio with two decimals at most, a seed count as "k/N".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ald_tune.report.json_record import Record
from ald_tune.report.record import AldSection, Criterion, GapMetric, GridRow, Method


def cell(v: Any, digits: int = 3) -> str:
    """A number with ``digits`` decimals (significant digits from 1000 up); "–" if missing."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    return f"{v:.{digits}g}" if abs(v) >= 1000 else f"{v:.{digits}f}"


def step_cell(v: Any) -> str:
    """A grid-step count or an n_z / edge ratio: two decimals at most ("2.75", "3", "-1");
    a list (ALD's seeds) comma-separated."""
    if isinstance(v, list):
        return ", ".join(step_cell(x) for x in v) if any(x is not None for x in v) else "–"
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.2f}".rstrip("0").rstrip(".")


def seeds_cell(m: Method | dict, flag: str, count: str) -> Any:
    """A method's in-region / near-edge cell: ALD's as "k/N" seeds, others yes/no."""
    m = m.to_dict() if isinstance(m, Record) else m
    if "n_seeds" in m and m[flag] is not None:
        return f"{m[count]}/{m['n_seeds']}"
    return m[flag]


def near_text(c: Criterion, a: AldSection) -> str:
    """The ALD headline's part about the edge (empty without a region)."""
    if c.plateau_edge is None:
        return ""
    return (
        f"; {a.n_near_edge}/{len(a.seeds)} near its edge (n_z <= "
        f"{step_cell(c.near_edge_max_nz)}), on average "
        f"{step_cell(a.steps_above_edge_mean)} grid "
        f"steps above it, {step_cell(a.nz_over_edge_mean)}x the edge"
    )


def md_table(head: list[str], rows: list[list[Any]]) -> list[str]:
    """A Markdown table's lines, a blank line after it; non-text cells through :func:`cell`.

    By hand, not ``tabulate`` (which pandas' ``DataFrame.to_markdown`` needs): it is not
    a dependency, and its ``pipe`` and ``github`` formats (tabulate 0.10, tried on a
    report's grid rows) pad every column to its widest cell, right-align numbers with
    ``|------:|`` rules and print NaN as ``nan``, so every table of every report would
    change: the report rebuilt from MLflow is compared byte for byte, and
    ``docs/results.md`` is generated from it. The cells' own rules are :func:`cell`.
    """
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(c if isinstance(c, str) else cell(c) for c in r) + " |" for r in rows]
    return out + [""]


def region_cell(row: GridRow | dict) -> str:
    """A grid row's best-region cell: "no", "yes" or "yes (noise hole)"."""
    row = row.to_dict() if isinstance(row, Record) else row
    if not row["in_region"]:
        return "no"
    return "yes" if row.get("within_tolerance", True) else "yes (noise hole)"


def not_recorded(metrics: Sequence[str] | None, then: str) -> str:
    """The sentence naming the metrics the runs did not record (empty if none)."""
    if not metrics:
        return ""
    return (
        f" Not recorded: {', '.join(metrics)} (no FID for feature vectors, which are not "
        f"images); {then}."
    )


def gap_cell(x: GapMetric) -> str:
    """A gap against its tolerance: "gap (tolerance)"."""
    return f"{cell(x.gap)} ({cell(x.tolerance)})"
