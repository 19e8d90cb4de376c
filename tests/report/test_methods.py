"""Every method's answer and its compute to the answer, ranked (report.methods)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_build import EPOCHS, MEANS, NZ, ald_trials, grid_trials, trial

from ald_tune.report.build import build_report, markdown
from ald_tune.report.methods import INTRINSIC_NAMES, model_cost


def test_every_method_ranked_with_its_compute_to_the_answer():
    grid = grid_trials()
    for t in grid:  # the widest trial ends with 9 units in use (seed 0) and 10 (seed 1)
        t.history[-1]["units_in_use"] = 9.0 + t.seed if t.nz == 32 else 4.0
    ald = ald_trials(finals=(8, 16))
    for t in ald:  # the stop decision at epoch 3 (0-based): the answer after 4 epochs
        for h in t.history:
            h["stopped"] = float(h["epoch"] >= 3)
    asha = [
        trial({m: MEANS[m][nz] for m in MEANS}, n_z_grid=nz, epochs=4 if nz < 16 else EPOCHS)
        for nz in NZ
    ]
    for t in asha[:3]:
        t.status = "STOPPED"
    intrinsic = {
        "twonn": {"dimension": 2.4, "n_z": 2, "cpu_s": 0.5, "wall_s": 0.4, "n_samples": 100},
        "mle": {"dimension": 12.2, "n_z": 12, "cpu_s": 0.3, "wall_s": 0.2, "n_samples": 100},
    }
    rep = build_report(
        grid,
        ald,
        asha=asha,
        wall={"grid": 50.0, "ald": 25.0, "asha": 30.0},
        intrinsic=intrinsic,
        rule="ald-tune",
    ).to_dict()
    m = {x["method"]: x for x in rep["methods"]}
    assert set(m) == {
        "grid",
        "grid + ASHA",
        "units in use (grid n_z = 32)",
        "intrinsic dimension (TwoNN)",
        "intrinsic dimension (MLE)",
        "ALD (ald-tune)",
    }
    ald_m = m["ALD (ald-tune)"]
    assert ald_m["answer_trial_epochs"] == 4 and ald_m["total_trial_epochs"] == EPOCHS
    assert ald_m["answer_cpu_s"] == pytest.approx(4 * 2.0) and ald_m["total_cpu_s"] == 2 * EPOCHS
    assert ald_m["answer_wall_s"] == pytest.approx(4.0)  # one run's own seconds to its stop
    assert [s["answer_epochs"] for s in rep["ald"]["seeds"]] == [4, 4]
    g = m["grid"]
    assert g["answer_cpu_s"] == g["total_cpu_s"] == pytest.approx(10 * EPOCHS)
    assert g["answer_wall_s"] == 50.0
    assert m["grid + ASHA"]["n_z"] == 16 and m["grid + ASHA"]["answer_trial_epochs"] == 32
    units = m["units in use (grid n_z = 32)"]
    assert units["n_z"] == 10 and units["in_region"]  # median of 9 and 10, rounded up
    assert units["answer_trial_epochs"] == EPOCHS  # one widest trial
    assert m["intrinsic dimension (TwoNN)"]["distance"] == 6  # 2 is 6 below the edge 8
    assert m["intrinsic dimension (MLE)"]["in_region"]  # 12: between 8 and 16
    # Ranked by distance, then compute to the answer: every method in the region first,
    # the cheapest of them (MLE, no training) at the top.
    assert [x["rank"] for x in rep["methods"]] == list(range(1, 7))
    assert rep["methods"][0]["method"] == "intrinsic dimension (MLE)"
    assert rep["methods"][-1]["method"] == "intrinsic dimension (TwoNN)"
    text = markdown(rep)
    assert "## Every method ranked" in text and "| 1 | intrinsic dimension (MLE) | 12 |" in text
    # Baselines turned off leave the report.
    rep = build_report(grid, ald, units_baseline=False).to_dict()
    assert sorted(x["method"] for x in rep["methods"]) == ["ALD", "grid"]


def test_the_intrinsic_estimators_have_report_names():
    assert INTRINSIC_NAMES == {"twonn": "TwoNN", "mle": "MLE"}


def _ranked(rep):
    return [x["method"] for x in rep["methods"]]


def test_ranked_by_region_then_near_the_edge_then_compute_to_a_trained_model():
    """Best region [8, 16, 32], edge 8, near it: n_z <= 12. Each method's place follows
    from the three keys, whatever its compute to the answer."""
    grid = grid_trials()  # 10 trials of 10 CPU-s each: the grid costs 100 to a model
    for t in grid:  # the widest trial says 16 units (in the region, not near the edge)
        t.history[-1]["units_in_use"] = 16.0
    intrinsic = {  # no training, so cheapest to the answer; plus one run (10 CPU-s)
        "twonn": {"dimension": 3.6, "n_z": 4, "cpu_s": 0.1, "wall_s": 0.1, "n_samples": 50},
        "mle": {"dimension": 11.6, "n_z": 12, "cpu_s": 0.2, "wall_s": 0.1, "n_samples": 50},
    }
    ald = ald_trials(finals=(8, 9, 12), cpu=5.0)  # one run = 50 CPU-s, every seed near
    rep = build_report(grid, ald, intrinsic=intrinsic, rule="ald-tune").to_dict()
    assert _ranked(rep) == [
        "intrinsic dimension (MLE)",  # in, near, 10.2 CPU-s to a trained model
        "ALD (ald-tune)",  # in, near (3/3), 50
        "grid",  # in, near (the edge), 100
        "units in use (grid n_z = 32)",  # in, not near (16 > 12): 20
        "intrinsic dimension (TwoNN)",  # out (4 < 8): 10.1, cheapest of all
    ]
    m = {x["key"]: x for x in rep["methods"]}
    assert m["id_mle"]["trained_cpu_s"] == pytest.approx(0.2 + 10.0)
    assert m["id_twonn"]["trained_cpu_s"] == pytest.approx(0.1 + 10.0)
    assert m["ald"]["trained_cpu_s"] == m["ald"]["total_cpu_s"] == 50.0
    assert m["grid"]["trained_cpu_s"] == m["grid"]["total_cpu_s"] == 100.0
    assert m["units"]["trained_cpu_s"] == 20.0  # the widest trial, then a run at 16
    # One ALD seed off the edge: ALD (2/3 near) falls behind every method near it, but
    # stays ahead of those in the region and not near it at all.
    rep = build_report(grid, ald_trials(finals=(8, 9, 16), cpu=5.0), intrinsic=intrinsic).to_dict()
    assert _ranked(rep)[:4] == [
        "intrinsic dimension (MLE)",
        "grid",
        "ALD",
        "units in use (grid n_z = 32)",
    ]
    assert rep["methods"][2]["near_edge"] is False and rep["methods"][2]["n_near_edge"] == 2
    # Out of the region on one seed: after every method in it.
    rep = build_report(grid, ald_trials(finals=(2, 9, 12), cpu=5.0), intrinsic=intrinsic).to_dict()
    assert _ranked(rep)[-2:] == ["ALD", "intrinsic dimension (TwoNN)"]


def test_each_method_against_the_edge_and_its_compute_to_a_trained_model():
    grid = grid_trials()
    for t in grid:
        t.history[-1]["units_in_use"] = 10.0  # off the grid, no fixed run: an estimate
    intrinsic = {
        "twonn": {"dimension": 9.2, "n_z": 9, "cpu_s": 0.5, "wall_s": 0.4, "n_samples": 100},
        "mle": {"dimension": 16.1, "n_z": 16, "cpu_s": 0.3, "wall_s": 0.2, "n_samples": 100},
    }
    fixed = [  # compare's fixed run at ALD's off-grid n_z 9 (shared with TwoNN's answer)
        trial({m: MEANS[m][8] for m in MEANS}, seed=0, n_z_grid=9, cpu=3.0, time_s=20.0)
    ]
    ald = ald_trials(finals=(9, 12))
    rep = build_report(grid, ald, fixed=fixed, intrinsic=intrinsic, wall={"grid": 50.0}).to_dict()
    m = {x["key"]: x for x in rep["methods"]}
    assert set(m) == {"grid", "units", "id_twonn", "id_mle", "ald"}
    fields = ("in_region", "near_edge", "steps_above_edge", "nz_over_edge")
    assert [m["grid"][k] for k in fields] == [True, True, 0, 1]
    assert [m["id_twonn"][k] for k in fields] == [True, True, 0.125, 1.125]
    assert [m["id_mle"][k] for k in fields] == [True, False, 1, 2]
    assert [m["units"][k] for k in fields] == [True, True, 0.25, 1.25]
    assert m["ald"]["n_z"] == [9, 12] and m["ald"]["steps_above_edge"] == [0.125, 0.5]
    assert m["ald"]["nz_over_edge"] == [1.125, 1.5] and m["ald"]["near_edge"] is True
    assert (m["ald"]["n_seeds"], m["ald"]["n_in_region"], m["ald"]["n_near_edge"]) == (2, 2, 2)
    # A trained model at the answer: the fixed run at 9, the grid trial at 16, the grid
    # trial at the nearest grid n_z (8) for 10, each said in the note.
    assert m["id_twonn"]["trained_cpu_s"] == pytest.approx(0.5 + 30.0)
    assert m["id_twonn"]["trained_trial_epochs"] == EPOCHS
    assert m["id_twonn"]["trained_wall_s"] == pytest.approx(0.4 + 20.0)
    assert m["id_twonn"]["note"].endswith("model: the fixed run at n_z 9")
    assert m["id_mle"]["note"].endswith("model: a grid trial at n_z 16")
    assert (
        "model: estimated by the grid trial at the nearest n_z 8 (no run at n_z 10)"
        in (m["units"]["note"])
    )
    assert m["units"]["trained_estimated"] and not m["id_twonn"]["trained_estimated"]
    assert m["units"]["trained_cpu_s"] == m["units"]["answer_cpu_s"] + 10.0
    # Every compute figure three ways, kept side by side.
    for x in rep["methods"]:
        for k in ("answer", "total", "trained"):
            assert {f"{k}_{c}" for c in ("trial_epochs", "cpu_s", "gpu_s", "wall_s")} <= set(x)
    text = markdown(rep)
    assert "| ALD | 9, 12 | 2/2 | 2/2 | 0.12, 0.5 | 1.12, 1.5 |" in text
    assert "| grid | 8 | yes | yes | 0 | 1 | 100.000 | 100.000 | 100.000 |" in text
    assert "then near its edge, then compute to a trained model at the answer" in text


def test_model_cost_prefers_a_grid_trial_then_a_fixed_run_then_the_nearest_grid_point():
    grid = [
        trial({"recon_loss": 1.0}, seed=s, n_z_grid=nz, cpu=nz) for nz in (4, 8) for s in (0, 1)
    ]
    fixed = [trial({"recon_loss": 1.0}, n_z_grid=n, cpu=100.0) for n in (4, 6)]
    assert model_cost(4, grid, fixed) == (
        {"trial_epochs": EPOCHS, "cpu_s": 4.0 * EPOCHS, "gpu_s": 0.0, "wall_s": 10.0},
        "a grid trial at n_z 4",
    )
    assert model_cost(6, grid, fixed)[1] == "the fixed run at n_z 6"
    assert model_cost(6, grid, fixed)[0]["cpu_s"] == 100.0 * EPOCHS
    # 6 without its fixed run: halfway between 4 and 8, the larger (dearer) one stands in.
    assert model_cost(6, grid, [])[1].startswith("estimated by the grid trial at the nearest n_z 8")
    assert model_cost(5, grid, [])[0]["cpu_s"] == 4.0 * EPOCHS
    errored = [replace(t, status="ERROR") for t in grid]  # only finished trials count
    assert model_cost(4, errored, [])[1] == "unknown (no run at n_z 4)"
