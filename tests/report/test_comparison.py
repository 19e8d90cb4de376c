"""A whole comparison: reports per rule, printed and written the same way everywhere."""

from __future__ import annotations

import json

from test_build import ald_trials, grid_trials

from ald_tune.config.kinds import SweepKind
from ald_tune.report.comparison import Comparison, recommendation_text, render
from ald_tune.sweeps.results import SweepRecord


def sweep(kind, trials, wall):
    return SweepRecord(kind=kind, name=str(kind), trials=trials, wall_s=wall, dataset="toy")


def test_one_report_per_rule_the_main_rule_first(tmp_path):
    comp = Comparison(
        grid=sweep(SweepKind("grid"), grid_trials(), 50.0),
        alds={
            "paper": sweep(SweepKind("ald", "paper"), ald_trials((2, 4)), 9.0),
            "ald-tune": sweep(SweepKind("ald", "ald-tune"), ald_trials(), 8.0),
        },
        dataset="toy",
    ).build()
    text = render(comp)
    assert text.index("# rule: paper") < text.index("# rule: ald-tune")
    assert text.rstrip().endswith(recommendation_text(comp.recommendation))
    assert comp.recommendation["rule"] == "paper" and comp.recommendation["n_z"] == 4
    paths = comp.write(str(tmp_path))
    for rule in ("paper", "ald-tune"):
        data = json.loads((tmp_path / rule / "comparison.json").read_text())
        assert data["rule"] == rule and data["cost"]["ald"]["wall_s"] == comp.alds[rule].wall_s
    assert json.loads((tmp_path / "recommendation.json").read_text()) == comp.recommendation
    assert (tmp_path / "rules.md").read_text().startswith("## ALD rules side by side (toy)")
    assert paths["comparison"]["fig_cost"].endswith("fig_cost_vs_distance.png")
    assert (tmp_path / "fig_cost_vs_distance.svg").stat().st_size > 1000
