"""The ``ald-tune`` rule on written histories: the first cut, paired trials, the stop."""

from __future__ import annotations

import json
import math

import pytest

from ald_tune.config.schema import ALDConfig, load_config
from ald_tune.engine.rule_ald_tune import ALDTuneRule
from ald_tune.testing.scripted import BEST_N_Z, ScriptedTrainer

CFG = dict(window=4, patience=3, reserve=2, margin=1, n_z_init=16)


def rec(recon, fid=10.0, twin=None, **extra):
    """One epoch's record; ``twin``: the twin's recon (its FIDs equal the model's)."""
    r = {"recon_loss": recon, "fid_gen": fid, "fid_recon": fid, **extra}
    if twin is not None:
        r.update({"twin.recon_loss": twin, "twin.fid_gen": fid, "twin.fid_recon": fid})
    return r


def kl(n_in_use, n_z):
    return [1.0 + i if i < n_in_use else 0.001 for i in range(n_z)]


def drive(rule, records, n_z, in_use, twin_in_use=None):
    """Feed ``records`` one by one; returns the decisions (the model's size follows)."""
    hist, out = [], []
    for r in records:
        hist.append(r)
        twin_kl = (
            kl(twin_in_use, n_z + 1) if twin_in_use is not None and "twin.recon_loss" in r else None
        )
        d = rule.decide(hist, n_z, kl(in_use, n_z), twin_kl=twin_kl)
        out.append(d)
        if d.verdict == "undo" and twin_kl is not None:
            n_z = len(twin_kl)
        n_z += d.grow - len(d.units)
    return out, n_z


def test_it_waits_for_the_window_then_cuts_the_units_not_in_use_but_its_reserve():
    rule = ALDTuneRule(ALDConfig(**CFG), 30)
    ds, n_z = drive(rule, [rec(30.0)] * 4, 16, in_use=5)
    assert not any(d.units for d in ds[:3]) and "window" in ds[0].reason
    assert len(ds[3].units) == 16 - 7 and not ds[3].twin and n_z == 7  # 5 in use + 2
    assert not set(ds[3].units) & set(range(5))  # the units in use stay


def test_a_trial_that_costs_nothing_stands_and_the_next_one_starts():
    rule = ALDTuneRule(ALDConfig(**CFG), 30)
    wobble = [0.0, 0.02, -0.01]
    hist = [rec(30.0)] * 4
    assert len(rule.decide(hist, 16, kl(5, 16)).units) == 9  # the first cut: n_z 7
    hist += [rec(30.0)] * 3
    d = rule.decide(hist, 7, kl(5, 7))
    assert d.twin and len(d.units) == 3 and "one of the 5 in use less" in d.reason  # 7 -> 4
    trial = [rec(30.0 + w, twin=30.0 + w) for w in wobble]
    d = rule.decide(hist + trial, 4, kl(4, 4), twin_kl=kl(5, 7))
    assert d.verdict == "keep" and d.twin and not d.stop and "free" not in d.reason
    assert d.units == (0,) and "one of the 4 in use less" in d.reason


def test_a_trial_that_costs_more_than_the_noise_is_undone_and_the_answer_gets_a_spare():
    rule = ALDTuneRule(ALDConfig(**CFG), 40)
    hist = [rec(30.0)] * 4
    rule.decide(hist, 16, kl(5, 16))  # first cut to 7
    hist += [rec(30.0)] * 3
    rule.decide(hist, 7, kl(5, 7))  # trial 7 -> 4, twin at 7
    hist += [rec(30.0 + e, twin=30.0 + 0.1 * (e % 2)) for e in (5.0, 5.1, 4.9)]
    d = rule.decide(hist, 4, kl(4, 4), twin_kl=kl(5, 7))
    assert d.verdict == "undo" and d.stop and "recon_loss worse than the twin's" in d.reason
    # the twin (7 units, 5 in use) keeps its 5 and one spare: 1 goes
    assert len(d.units) == 1 and d.grow == 0 and "n_z 6" in d.reason
    assert rule.stopped and rule.state.stop_epoch == len(hist) - 1


def test_an_unclear_trial_goes_on_once_then_is_judged():
    rule = ALDTuneRule(ALDConfig(**CFG), 60)
    hist = [rec(30.0)] * 4
    rule.decide(hist, 16, kl(5, 16))
    hist += [rec(30.0)] * 3
    rule.decide(hist, 7, kl(5, 7))
    # twin noise: differences of +-0.1 around a trend; the model 1.5 noise-sd worse
    twin = [30.0, 29.9, 29.9, 29.8, 29.8, 29.7]
    noise = ALDTuneRule(ALDConfig(**CFG), 60)
    noise._add_noise([rec(0, twin=t) for t in twin[:3]])
    s = noise.noise("recon_loss")
    first = [rec(t + 1.5 * s, twin=t) for t in twin[:3]]
    d = rule.decide(hist + first, 4, kl(4, 4), twin_kl=kl(5, 7))
    assert d.verdict is None and not d.units and "unclear" in d.reason
    later = [rec(t + 10 * s, twin=t) for t in twin[3:]]
    d = rule.decide(hist + first + later, 4, kl(4, 4), twin_kl=kl(5, 7))
    assert d.verdict == "undo" and d.stop


def test_a_metric_without_a_noise_estimate_is_not_known_to_be_free():
    rule = ALDTuneRule(ALDConfig(**{**CFG, "patience": 1}), 60)
    hist = [rec(30.0)] * 4
    rule.decide(hist, 16, kl(5, 16))
    hist += [rec(30.0)]
    rule.decide(hist, 7, kl(5, 7))
    d = rule.decide(hist + [rec(30.0, twin=30.0)], 4, kl(4, 4), twin_kl=kl(5, 7))
    assert d.verdict == "undo" and "limit nan" in d.reason


def test_nan_metrics_are_left_out_and_nan_kl_is_not_in_use():
    rule = ALDTuneRule(ALDConfig(**CFG), 30)
    hist = [rec(30.0, fid=math.nan)] * 4
    units = [math.nan, *kl(5, 15)]
    d = rule.decide(hist, 16, units)
    assert len(d.units) == 16 - 7 and 0 in d.units


def test_the_budgets_last_decision_stops_and_never_grows_past_the_start():
    rule = ALDTuneRule(ALDConfig(**{**CFG, "n_z_init": 6}), 6)
    d = rule.decide([rec(30.0)] * 4, 6, kl(6, 6))
    assert d.stop and "budget" in d.reason and d.grow == 0 and not d.units


def test_its_state_is_json_and_restores_mid_trial():
    rule = ALDTuneRule(ALDConfig(**CFG), 30)
    hist = [rec(30.0)] * 4
    rule.decide(hist, 16, kl(5, 16))
    hist += [rec(30.0)] * 3
    rule.decide(hist, 7, kl(5, 7))
    saved = json.loads(json.dumps(rule.state_dict()))
    again = ALDTuneRule(ALDConfig(**CFG), 30)
    again.load_state_dict(saved)
    assert again.state == rule.state and again.state.trial_epoch == 6


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
