"""A whole comparison: reports per rule, printed and written the same way everywhere."""

from __future__ import annotations

import json

from test_build import ald_trials, grid_trials

from ald_tune.config.kinds import SweepKind
from ald_tune.report.comparison import (
    EDGE_TAG,
    NEAR_EDGE_TAG,
    Comparison,
    edge_metrics,
    log_comparison,
    recommendation_text,
    render,
)
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


def test_each_ald_parent_holds_the_distances_to_the_edge(tmp_path):
    """Per seed and per method, as metrics and tags on the ALD parent runs (a real SQLite
    store, parent runs made by hand), equal to the report's numbers."""
    from dataclasses import replace

    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    c = MlflowClient(uri)
    exp = c.create_experiment("e", artifact_location=str(tmp_path / "art"))
    ids = {k: c.create_run(exp).info.run_id for k in ("grid", "ald-tune", "paper")}
    comp = Comparison(
        grid=replace(sweep(SweepKind("grid"), grid_trials(), 50.0), parent_run_id=ids["grid"]),
        alds={
            r: replace(sweep(SweepKind("ald", r), ald_trials(finals), 8.0), parent_run_id=ids[r])
            for r, finals in (("ald-tune", (8, 12, 16)), ("paper", (2, 40)))
        },
        dataset="toy",
    ).build()
    log_comparison(uri, comp, comp.write(str(tmp_path / "out")))
    run = c.get_run(ids["ald-tune"]).data
    assert run.tags[EDGE_TAG] == "8" and run.tags[NEAR_EDGE_TAG] == "2/3"
    assert c.get_run(ids["paper"]).data.tags[NEAR_EDGE_TAG] == "0/2"
    got = run.metrics
    want = edge_metrics(comp.reports["ald-tune"])
    assert {k: got[k] for k in want} == want
    # Stored names are vocabulary: pinned here.
    assert {k: want[k] for k in want if k.startswith("report.seed.2.")} == {
        "report.seed.2.n_z": 16.0,
        "report.seed.2.in_region": 1.0,
        "report.seed.2.near_edge": 0.0,
        "report.seed.2.steps_above_edge": 1.0,
        "report.seed.2.nz_over_edge": 2.0,
    }
    assert want["report.method.grid.steps_above_edge"] == 0.0
    assert want["report.method.ald.in_region"] == 1.0 and want["report.method.ald.near_edge"] == 0
    assert "report.method.ald.n_z" not in want  # per seed, under report.seed.*
    assert {k.split(".")[3] for k in want if k.startswith("report.method.grid.")} == {
        "rank",
        "n_z",
        "in_region",
        "near_edge",
        "steps_above_edge",
        "nz_over_edge",
        "trained_cpu_s",
        "answer_cpu_s",
    }
    for k in (
        "near_edge_max_nz",
        "ald_near_edge_fraction",
        "ald_steps_above_edge_mean",
        "ald_nz_over_edge_mean",
        "recommended_steps_above_edge",
        "recommended_nz_over_edge",
    ):
        assert got[f"report.{k}"] == comp.reports["ald-tune"].to_dict()["headline"][k], k
    assert got["report.ald_near_edge_fraction"] == 2 / 3


def test_the_recommendation_says_how_far_it_is_from_the_edge():
    rec = {"n_z": 11, "rule": "r", "per_seed": [11], "reason": "why", "in_region": True}
    edge = {"plateau_edge": 4, "near_edge": False, "steps_above_edge": 2.75, "nz_over_edge": 2.75}
    assert recommendation_text({**rec, **edge}).endswith(
        "why; inside the grid's best region, not near its edge 4: 2.75 grid steps above "
        "it, 2.75x the edge)"
    )
    one = {**edge, "near_edge": True, "steps_above_edge": 1.0, "nz_over_edge": 1.5}
    assert "near its edge 4: 1 grid step above it, 1.5x the edge)" in recommendation_text(
        {**rec, "n_z": 6, **one}
    )
    below = {**edge, "steps_above_edge": -1.0, "nz_over_edge": 0.5}
    assert "outside the grid's best region, not near its edge 4: 1 grid step below it" in (
        recommendation_text({**rec, "n_z": 2, "in_region": False, **below})
    )
    at = {**edge, "near_edge": True, "steps_above_edge": 0.0, "nz_over_edge": 1.0}
    assert recommendation_text({**rec, **at}).endswith(
        "region, at its edge 4 (the grid's optimum))"
    )
    assert recommendation_text(rec).endswith("why; inside the grid's best region)")  # no grid
