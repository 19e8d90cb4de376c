"""A report's files: ``comparison.json``, ``.csv``, ``.md`` and its three figures
(:func:`write_report`), and its Markdown (:func:`markdown`). The report itself is built
by :func:`ald_tune.report.build.build_report` (which re-exports these).
"""

from __future__ import annotations

import csv
import json
import os

from ald_tune.config.vocabulary import COLUMNS
from ald_tune.report.criterion import edge_distance
from ald_tune.report.figures import plot_ald_vs_epoch, plot_cost_vs_distance, plot_metrics_vs_nz
from ald_tune.report.record import Report, as_report
from ald_tune.report.tables import markdown_text

__all__ = ["FILES", "markdown", "write_report"]

FILES = (
    "comparison.json",
    "comparison.csv",
    "comparison.md",
    "fig_metrics_vs_nz.png",
    "fig_ald_vs_epoch.png",
    "fig_cost_vs_distance.png",
)


def markdown(report: Report | dict) -> str:
    """The report as Markdown tables (the printed summary and ``comparison.md``); also
    the dict of a ``comparison.json``."""
    return markdown_text(as_report(report))


def write_report(report: Report | dict, out_dir: str) -> dict[str, str]:
    """Write comparison.json/.csv/.md and the figures (PNG and SVG) into ``out_dir``.

    ``report``: a :class:`~ald_tune.report.record.Report`, or the dict of a
    ``comparison.json``.

    Returns:
        ``{"json", "csv", "md", "fig_metrics", "fig_epochs", "fig_cost"}`` -> absolute
        paths (each figure's SVG lies beside its PNG).
    """
    report = as_report(report)
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    paths = dict(
        zip(
            ("json", "csv", "md", "fig_metrics", "fig_epochs", "fig_cost"),
            (os.path.join(out_dir, f) for f in FILES),
        )
    )
    with open(paths["json"], "w", encoding="utf-8") as fh:
        json.dump(report.to_dict(), fh, indent=1, allow_nan=False)
    _write_csv(report, paths["csv"])
    with open(paths["md"], "w", encoding="utf-8") as fh:
        fh.write(markdown(report))
    plot_metrics_vs_nz(report, paths["fig_metrics"])
    plot_ald_vs_epoch(report, paths["fig_epochs"])
    plot_cost_vs_distance([report], paths["fig_cost"])
    return paths


def _write_csv(report: Report, path: str) -> None:
    head = [
        "method",
        "n_z",
        "seed",
        "n_seeds",
        *COLUMNS,
        "mean_rank",
        "in_region",
        "distance",
        "near_edge",
        "steps_above_edge",
        "nz_over_edge",
        "epochs",
        "cpu_s",
    ]
    rows = report.grid.rows
    grid_nz, region = [r.n_z for r in rows], list(report.criterion.best_region)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, head, extrasaction="ignore", restval="")
        w.writeheader()
        for r in rows:
            w.writerow(
                {
                    **r.to_dict(),
                    **edge_distance(r.n_z, grid_nz, region),
                    "method": "grid",
                    "seed": "",
                    "distance": 0 if r.in_region else "",
                }
            )
        for s in report.ald.seeds:
            w.writerow({**s.to_dict(), "method": "ald", "n_seeds": 1})
