"""Every method's answer and its compute to the answer, ranked (report.methods)."""

from __future__ import annotations

import pytest
from test_build import EPOCHS, MEANS, NZ, ald_trials, grid_trials, trial

from ald_tune.report.build import build_report, markdown
from ald_tune.report.methods import INTRINSIC_NAMES


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
    )
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
    rep = build_report(grid, ald, units_baseline=False)
    assert sorted(x["method"] for x in rep["methods"]) == ["ALD", "grid"]


def test_the_intrinsic_estimators_have_report_names():
    assert INTRINSIC_NAMES == {"twonn": "TwoNN", "mle": "MLE"}
