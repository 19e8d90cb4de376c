"""Nested dropout's answer: the grid's criterion on each run's own prefix curve."""

from __future__ import annotations

import copy
import json

import pytest
from test_build import EPOCHS, MEANS, NZ, ald_trials, grid_trials, trial

from ald_tune.report.build import build_report, markdown
from ald_tune.report.comparison import edge_metrics
from ald_tune.report.figures import _points
from ald_tune.report.nested import curve_edge

# The toy grid (test_build): edge 8, region [8, 16, 32]; tolerances recon 0.4 (2 % of 20),
# fid_gen 0.566 (2 x its seed spread), fid_recon 0.1 (2 % of 5).
OFFSET = {"recon_loss": 3.0, "fid_gen": 5.0, "fid_recon": 1.0, "neg_elbo": 3.0, "silhouette": 0.0}


def curve(shift_edge_to: int | None = None, offset=OFFSET) -> dict[int, dict[str, float]]:
    """The grid's means plus an offset (a nested model is worse at every size); with
    ``shift_edge_to`` 16, the prefix 8 is far off the plateau."""
    out = {nz: {m: MEANS[m][nz] + offset[m] for m in MEANS} for nz in NZ}
    if shift_edge_to == 16:
        out[8] = {m: v + 5.0 for m, v in out[8].items()}
    return out


def nested_trial(seed: int, prefixes: dict, cpu: float = 3.0):
    t = trial({m: MEANS[m][32] for m in MEANS}, seed=seed, n_z_grid=32, cpu=cpu)
    t.kind, t.trial_id, t.prefixes = "nested", f"n{seed}", prefixes
    return t


def crit_of(rep):
    return rep["criterion"]


@pytest.fixture(scope="module")
def report():
    return build_report(
        grid_trials(),
        ald_trials(),
        wall={"grid": 50.0, "ald": 25.0, "nested": 40.0},
        nested=[nested_trial(0, curve()), nested_trial(1, curve(16))],
        rule="ald-tune",
    ).to_dict()


def test_the_answer_is_the_edge_of_the_curves_own_plateau_judged_by_the_grids_spread(report):
    crit = crit_of(report)
    edge = curve_edge(curve(), crit)
    # 3 nats and 5 FID above the grid everywhere, yet its plateau starts where the grid's does
    assert edge["n_z"] == 8 and edge["rule"] == "plateau_edge" and edge["within"] == [8, 16, 32]
    tol = edge["tolerances"]
    assert tol["recon_loss"]["best"] == pytest.approx(23.0)  # the curve's own best ...
    assert tol["recon_loss"]["grid_best"] == pytest.approx(20.0)  # ... beside the grid's
    assert tol["recon_loss"]["tolerance"] == pytest.approx(0.02 * 23.0)  # the floor wins
    spread = crit["tolerances"]["fid_gen"]["spread"]
    assert tol["fid_gen"]["spread"] == spread  # the grid's seed spread, not the curve's
    assert tol["fid_gen"]["tolerance"] == pytest.approx(2 * spread)
    # the plateau test with the grid's best and tolerance: nothing this far above passes
    assert edge["answer_by_grid_best"] is None
    assert curve_edge(curve(offset=dict.fromkeys(OFFSET, 0.0)), crit)["answer_by_grid_best"] == 8
    # a slower curve answers later
    assert curve_edge(curve(16), crit)["n_z"] == 16


def test_a_higher_is_better_metric_and_the_mean_rank_fallback(report):
    crit = {
        "metrics": ["recon_loss", "silhouette"],
        "rel_floor": 0.02,
        "tolerances": {
            "recon_loss": {"best": 20.0, "spread": 0.0, "tolerance": 0.4},
            "silhouette": {"best": 0.5, "spread": 0.01, "tolerance": 0.02},
        },
    }
    c = {
        2: {"recon_loss": 30.0, "silhouette": 0.50},
        4: {"recon_loss": 20.1, "silhouette": 0.49},
        8: {"recon_loss": 20.0, "silhouette": 0.40},
    }
    assert curve_edge(c, crit)["n_z"] == 4  # silhouette 0.49 >= 0.50 - 0.02
    c[4]["silhouette"] = 0.45  # now no prefix passes both: the mean-rank choice stands in
    edge = curve_edge(c, crit)
    assert edge["within"] == [] and edge["rule"].startswith("mean_rank")
    assert edge["n_z"] in c
    assert curve_edge({}, crit)["n_z"] is None  # no curve, no answer


def test_each_seed_answers_and_the_method_counts_the_run_then_one_fixed_run(report):
    n = report["nested"]
    assert n["n_z"] == [8, 16] and n["n_in_region"] == 2 and n["distance_mean"] == 0
    s0 = n["seeds"][0]
    assert s0["width"] == 32 and s0["within"] == [8, 16, 32] and s0["cpu_s"] == 3.0 * EPOCHS
    assert s0["fixed_cpu_s"] == pytest.approx(1.0 * EPOCHS)  # a grid trial at n_z 8
    assert [c["n_z"] for c in n["curve_mean"]] == list(NZ)  # one entry per grid n_z
    assert n["curve_mean"][2]["recon_loss"] == pytest.approx(20.2 + 3.0 + 2.5)  # seed 1: +5
    # where each seed lies against the edge 8 (near: n_z <= max(8 + 2, 1.5 x 8) = 12)
    assert [(s["near_edge"], s["steps_above_edge"], s["nz_over_edge"]) for s in n["seeds"]] == [
        (True, 0.0, 1.0),
        (False, 1.0, 2.0),
    ]
    assert n["n_near_edge"] == 1 and n["nz_over_edge_mean"] == 1.5
    m = {x["method"]: x for x in report["methods"]}["nested dropout (n_z = 32)"]
    assert m["key"] == "nested" and m["n_z"] == [8, 16] and m["in_region"] and m["distance"] == 0
    assert (m["n_seeds"], m["n_in_region"], m["n_near_edge"], m["near_edge"]) == (2, 2, 1, False)
    assert m["steps_above_edge"] == [0.0, 1.0] and m["nz_over_edge"] == [1.0, 2.0]
    assert m["answer_trial_epochs"] == EPOCHS and m["answer_cpu_s"] == pytest.approx(30.0)
    assert m["total_cpu_s"] == pytest.approx(30.0)  # what it ran: the wide run
    # to a trained model: the wide run plus one fixed run at its answer (a grid trial)
    assert m["trained_trial_epochs"] == 2 * EPOCHS and m["trained_cpu_s"] == pytest.approx(40.0)
    assert "model: a grid trial at n_z 8; model: a grid trial at n_z 16" in m["note"]
    assert not m["trained_estimated"]
    # ranked like ALD, by the share of its seeds: 2/2 in the region beats ALD's 1/2 (7, 9)
    ranks = {x["key"]: x["rank"] for x in report["methods"]}
    assert ranks["grid"] < ranks["nested"] < ranks["ald"]
    assert report["cost"]["nested"]["n_trials"] == 2
    assert report["cost"]["nested"]["wall_s"] == 40.0
    text = markdown(report)
    assert "## Nested dropout: one run of n_z = 32 per seed" in text
    assert "| 0 | 8 | yes | yes | 0 | 1 | 8, 16, 32 | – |" in text
    assert "| 1 | 16 | yes | no | 1 | 2 | 16, 32 | – |" in text
    assert "| metric | grid best | curve best (seed 0) |" in text
    # said plainly, at the top: which of the two one-run methods ranks higher, and at what cost
    head = text[: text.index("## Grid")]
    assert (
        "- **nested dropout beats ALD (ald-tune) here** (rank 2 against 3): nested dropout n_z "
        "8, 16, 1/2 near the edge 8 (mean 1.5x it); ALD 7, 9, 1/2 (1x). Per seed, CPU-s to "
        "the answer 30.0 against ALD's 20.0; to a trained model 40.0 against 20.0." in head
    )
    swapped = copy.deepcopy(report)
    for x in swapped["methods"]:
        x["rank"] = {"nested": 3, "ald": 2}.get(x["key"], x["rank"])
    assert "- ALD (ald-tune) ranks above nested dropout here (rank 2 against 3)" in markdown(
        swapped
    )
    assert "| 8 | 20.200 / 25.700 |" in text  # the grid beside the curve (mean of seeds)
    json.dumps(report, allow_nan=False)  # JSON-ready


def test_without_a_nested_sweep_the_report_has_no_nested_part():
    rep = build_report(grid_trials(), ald_trials()).to_dict()
    assert "nested" not in rep and "Nested dropout" not in markdown(rep)
    assert not [x for x in rep["methods"] if x["method"].startswith("nested")]
    assert "nested dropout beats" not in markdown(rep) and "above nested" not in markdown(rep)
    # a nested run that did not finish (no curve) is counted, not used
    broken = nested_trial(0, {})
    broken.status = "ERROR"
    rep = build_report(grid_trials(), ald_trials(), nested=[broken]).to_dict()
    assert rep["nested"]["n_errored"] == 1 and rep["nested"]["seeds"] == []
    assert not [x for x in rep["methods"] if x["method"].startswith("nested")]


def test_mlflow_metrics_and_the_figure_hold_each_seeds_answer(report):
    got = edge_metrics(report)
    assert {k: v for k, v in got.items() if k.startswith("report.nested.seed.1.")} == {
        "report.nested.seed.1.n_z": 16.0,
        "report.nested.seed.1.in_region": 1.0,
        "report.nested.seed.1.near_edge": 0.0,
        "report.nested.seed.1.steps_above_edge": 1.0,
        "report.nested.seed.1.nz_over_edge": 2.0,
    }
    assert got["report.method.nested.rank"] == 2.0
    assert got["report.method.nested.n_near_edge"] == 1.0
    assert got["report.method.nested.trained_cpu_s"] == pytest.approx(40.0)
    assert "report.method.nested.n_z" not in got  # per seed, under report.nested.seed.*
    # one marker per seed: its wide run plus the grid trial at its answer, at its n_z
    nested = [p for p in _points([report]) if p["label"].startswith("nested dropout")]
    assert nested == [
        {"label": "nested dropout (n_z = 32): n_z 8, 16", "xy": [(40.0, 8.0), (40.0, 16.0)]}
    ]
