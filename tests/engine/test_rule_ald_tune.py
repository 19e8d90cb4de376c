"""The ``ald-tune`` rule on written histories: the first cut, paired trials, the stop."""

from __future__ import annotations

import json
import math

import pytest

from ald_tune.config.schema import load_config
from ald_tune.config.sections import ALDConfig
from ald_tune.engine.rules.aldtune import ALDTuneRule
from ald_tune.testing.scripted import BEST_N_Z, ScriptedTrainer

CFG = dict(window=4, patience=3, margin=1, n_z_init=16)
TWIN_NOISE = [0.0, 0.1, -0.05]  # the twin's recon wobble: a noise of about 0.1


def rec(recon, fid=10.0, twin=None):
    """One epoch's record; ``twin``: the twin's recon (its FIDs equal the model's)."""
    r = {"recon_loss": recon, "fid_gen": fid, "fid_recon": fid}
    if twin is not None:
        r.update({"twin.recon_loss": twin, "twin.fid_gen": fid, "twin.fid_recon": fid})
    return r


def kl(n_in_use, n_z):
    """``n_in_use`` informative units (KL 1+), the rest collapsed."""
    return [1.0 + i if i < n_in_use else 0.001 for i in range(n_z)]


def trial(cost):
    """Three epochs of a paired trial: the model ``cost`` worse than its twin."""
    return [rec(30.0 + w + cost, twin=30.0 + w) for w in TWIN_NOISE]


def after_first_cut(epochs=60, in_use=5):
    """A rule past its first cut (16 -> in_use + 1), and the history so far."""
    rule = ALDTuneRule(ALDConfig(**CFG), epochs)
    hist = [rec(30.0)] * 4
    d = rule.decide(hist, 16, kl(in_use, 16))
    assert len(d.units) == 16 - in_use - 1 and not d.twin
    return rule, hist + [rec(30.0)] * 3


def test_it_waits_for_the_window_then_cuts_the_units_not_in_use_but_a_spare():
    rule = ALDTuneRule(ALDConfig(**CFG), 60)
    for n in range(1, 4):
        assert "window" in rule.decide([rec(30.0)] * n, 16, kl(5, 16)).reason
    d = rule.decide([rec(30.0)] * 4, 16, kl(5, 16))
    assert not d.twin and "5 in use, 1 spare" in d.reason
    assert not set(d.units) & set(range(5)) and len(d.units) == 10  # the units in use stay


def test_the_first_cut_waits_while_no_unit_is_in_use():
    rule = ALDTuneRule(ALDConfig(**CFG), 60)
    d = rule.decide([rec(30.0)] * 4, 16, kl(0, 16))
    assert not d.units and not d.twin and "first cut waits" in d.reason
    d = rule.decide([rec(30.0)] * 7, 16, kl(3, 16))  # the next decision: units have woken
    assert len(d.units) == 12 and "3 in use, 1 spare" in d.reason


def test_then_a_trial_of_one_unit_in_use_less_beside_a_twin():
    rule, hist = after_first_cut()
    d = rule.decide(hist, 6, kl(5, 6))
    assert d.twin and len(d.units) == 2 and "6 -> 4 (one of the 5 in use less)" in d.reason
    assert d.units == (0, 5)  # the spare and the weakest unit in use (lowest KLs)


def test_while_units_fall_out_of_use_the_trial_cuts_them_but_a_spare():
    rule, hist = after_first_cut()
    d = rule.decide(hist, 6, kl(3, 6))
    assert d.twin and "6 -> 4 (the 3 in use and 1 spare)" in d.reason


def test_a_removal_that_costs_nothing_stands_and_the_next_trial_starts():
    rule, hist = after_first_cut()
    rule.decide(hist, 6, kl(5, 6))  # 6 -> 4
    d = rule.decide(hist + trial(0.0), 4, kl(4, 4), twin_kl=kl(5, 6))
    assert d.verdict == "keep" and d.twin and not d.stop and rule.state.kept == 1
    assert "4 -> 3 (one of the 4 in use less)" in d.reason


def test_after_a_removal_stood_the_first_one_that_hurts_is_undone_and_ends_the_search():
    rule, hist = after_first_cut()
    rule.decide(hist, 6, kl(5, 6))
    hist += trial(0.0)
    rule.decide(hist, 4, kl(4, 4), twin_kl=kl(5, 6))  # kept: 4 -> 3 next
    d = rule.decide(hist + trial(5.0), 3, kl(3, 3), twin_kl=kl(4, 4))
    assert d.verdict == "undo" and d.stop and "recon_loss worse than the twin's" in d.reason
    # the twin (4 units, all in use) gets its spare
    assert d.grow == 1 and not d.units and "4 in use, n_z 5" in d.reason
    assert rule.stopped and rule.state.stop_epoch == len(hist) + 2


def test_when_the_first_removal_hurts_a_unit_more_is_tried_and_kept_while_it_helps():
    rule, hist = after_first_cut()
    rule.decide(hist, 6, kl(5, 6))
    hist += trial(5.0)
    d = rule.decide(hist, 4, kl(4, 4), twin_kl=kl(6, 6))  # the twin now uses all 6
    assert d.verdict == "undo" and d.twin and d.grow == 1 and not d.stop
    assert "6 -> 7 (one unit more)" in d.reason
    hist += trial(-5.0)  # the model with the new unit is better than its twin
    d = rule.decide(hist, 7, kl(7, 7), twin_kl=kl(6, 6))
    assert d.verdict == "keep" and d.grow == 1 and "better than the twin's" in d.reason
    d = rule.decide(hist + trial(0.0), 8, kl(7, 8), twin_kl=kl(7, 7))
    assert d.verdict == "undo" and d.stop and "no better than the twin" in d.reason
    assert d.grow == 1 and "7 in use, n_z 8" in d.reason  # 7 units, all in use: a spare


def test_an_unclear_trial_goes_on_once_then_is_judged():
    rule, hist = after_first_cut()
    rule.decide(hist, 6, kl(5, 6))
    s = 0.1  # about the twin's noise
    d = rule.decide(hist + trial(1.5 * s), 4, kl(4, 4), twin_kl=kl(5, 6))
    assert d.verdict is None and not d.units and not d.twin and "unclear" in d.reason
    more = [rec(30.0 + w + 3.0, twin=30.0 + w) for w in TWIN_NOISE]
    d = rule.decide(hist + trial(1.5 * s) + more, 4, kl(4, 4), twin_kl=kl(5, 6))
    assert d.verdict == "undo" and d.stop  # the twin keeps a spare: no unit more to try
    assert not d.grow and "5 in use, n_z 6" in d.reason


def test_a_metric_without_a_noise_estimate_is_not_known_to_be_free():
    rule = ALDTuneRule(ALDConfig(**{**CFG, "patience": 1}), 60)
    rule.decide([rec(30.0)] * 4, 16, kl(5, 16))
    rule.decide([rec(30.0)] * 5, 6, kl(5, 6))
    d = rule.decide([rec(30.0)] * 5 + [rec(30.0, twin=30.0)], 4, kl(4, 4), twin_kl=kl(5, 6))
    assert d.verdict == "undo" and "limit nan" in d.reason


def test_nan_metrics_are_left_out_and_nan_kl_is_not_in_use():
    rule = ALDTuneRule(ALDConfig(**CFG), 60)
    d = rule.decide([rec(30.0, fid=math.nan)] * 4, 16, [math.nan, *kl(5, 15)])
    assert len(d.units) == 10 and 0 in d.units
    rule.decide([rec(30.0, fid=math.nan)] * 7, 6, kl(5, 6))
    hist = [rec(30.0, fid=math.nan)] * 7 + [
        {**r, "fid_gen": math.nan, "twin.fid_gen": math.nan} for r in trial(0.0)
    ]
    d = rule.decide(hist, 4, kl(4, 4), twin_kl=kl(5, 6))
    assert d.verdict == "keep" and "fid_gen" not in d.reason


def test_the_budgets_last_decision_stops_and_never_grows_past_the_start():
    rule = ALDTuneRule(ALDConfig(**{**CFG, "n_z_init": 6}), 6)
    d = rule.decide([rec(30.0)] * 4, 6, kl(6, 6))
    assert d.stop and "budget" in d.reason and d.grow == 0 and not d.units


def test_its_state_is_json_and_restores_mid_trial():
    rule, hist = after_first_cut()
    rule.decide(hist, 6, kl(5, 6))
    saved = json.loads(json.dumps(rule.state_dict()))
    again = ALDTuneRule(ALDConfig(**CFG), 60)
    again.load_state_dict(saved)
    assert again.state == rule.state and again.state.trial_epoch == 6
    assert again.state.trial_kind == "less"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_scripted_run_ends_at_its_best_size(seed):
    """The scripted curves need BEST_N_Z - 1 units and a spare: the rule finds that."""
    cfg = load_config(
        "search_spaces/digits.yaml",
        overrides=["train.epochs=30", "ald.window=6", "ald.patience=2", f"train.seed={seed}"],
    )
    tr = ScriptedTrainer(cfg)
    for _ in tr:
        pass
    assert tr.model.n_z == BEST_N_Z and tr.controller.stopped
    assert any(d.get("verdict") == "undo" for d in tr.decisions)
