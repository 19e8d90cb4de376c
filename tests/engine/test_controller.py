"""The ALD rule's branches on hand-written metric histories (no torch)."""

from __future__ import annotations

import json
import math
import warnings

import pytest

from ald_tune.config.sections import ALDConfig
from ald_tune.engine.rules import ALDController
from ald_tune.engine.rules.base import FixedController, PruningFloorWarning, select_units, slope
from ald_tune.testing.scripted import ScriptedController


def paper_cfg(**kw) -> ALDConfig:
    """The authors' rule (the default rule is ald-tune)."""
    return ALDConfig(**{"rule": "paper", **kw})


def epoch(sil=0.0, fid_gen=10.0, fid_recon=10.0, recon=30.0):
    return {"silhouette": sil, "fid_gen": fid_gen, "fid_recon": fid_recon, "recon_loss": recon}


def run(ctl, records, n_z=64, unit_kl=None):
    """Feed records one epoch at a time, applying removals; return decisions and n_z path."""
    hist, decisions = [], []
    for r in records:
        hist.append(r)
        d = ctl.decide(hist, n_z, unit_kl or [1.0] * n_z)
        decisions.append(d)
        n_z -= d.n_remove
        if d.end_run:
            break
    return decisions, n_z


def test_waits_patience_and_removes_n_remove_with_last():
    ctl = ALDController(paper_cfg(unit_selection="last"))
    ds, n_z = run(ctl, [epoch()] * 16)
    removing = [i for i, d in enumerate(ds) if d.units]
    assert removing == [5, 10, 15]  # never at epoch 0, then every `patience` epochs
    assert ds[5].units == (59, 60, 61, 62, 63) and n_z == 64 - 15
    assert "waiting" in ds[4].reason


def test_switch_to_fine_step_when_silhouette_rises_then_stop_when_all_slopes_rise():
    # Silhouette rising through the whole run, FIDs and recon loss rising too.
    recs = [
        epoch(sil=0.01 * i, fid_gen=10 + i, fid_recon=10 + i, recon=30 + 0.1 * i) for i in range(40)
    ]
    ctl = ALDController(paper_cfg())
    ds, n_z = run(ctl, recs)
    # Epochs 5, 10, 15 remove 5 each (history < window = 20); epoch 20: switch + stop test.
    assert [d.n_remove for d in ds[:20] if d.units] == [5, 5, 5]
    assert ds[20].stop and not ds[20].units and "stop" in ds[20].reason
    assert ctl.stopped and n_z == 49
    assert all(not d.units for d in ds[21:])  # no pruning after the stop
    assert not any(d.end_run for d in ds)  # paper: train on to the last epoch


def test_switch_without_stop_removes_one_unit():
    # Silhouette rises but recon loss falls: the stop vote fails, step becomes 1.
    recs = [epoch(sil=0.01 * i, recon=30 - 0.1 * i) for i in range(31)]
    ds, n_z = run(ALDController(paper_cfg()), recs)
    assert ds[20].n_remove == 1 and "switch to fine steps" in ds[20].reason
    assert ds[25].n_remove == 1 and ds[30].n_remove == 1
    assert n_z == 64 - 15 - 3


def test_no_switch_while_silhouette_falls():
    recs = [epoch(sil=1 - 0.01 * i) for i in range(26)]
    ds, _ = run(ALDController(paper_cfg()), recs)
    assert ds[20].n_remove == 5 and ds[25].n_remove == 5


def test_stop_slopes_use_the_window_before_the_current_epoch():
    # Everything rises over epochs 1..19 but epoch 20 itself is a huge drop: the paper's
    # rule ignores the current epoch (slopes over history[-20:-1]) and still stops.
    recs = [epoch(sil=0.01 * i, fid_gen=10 + i, fid_recon=10 + i, recon=30 + i) for i in range(20)]
    recs.append(epoch(sil=0.5, fid_gen=-1000, fid_recon=-1000, recon=-1000))
    ds, _ = run(ALDController(paper_cfg()), recs)
    assert ds[20].stop


def test_votes_are_configurable():
    recs = [
        epoch(sil=0.01 * i, recon=30 - 0.1 * i, fid_gen=10 + i, fid_recon=10 + i) for i in range(21)
    ]
    votes = {"silhouette": "up", "fid_gen": "up", "recon_loss": "down"}
    ds, _ = run(ALDController(paper_cfg(votes=votes)), recs)
    assert ds[20].stop


def test_n_epochs_after_stop_ends_the_run():
    recs = [epoch(sil=0.01 * i, fid_gen=10 + i, fid_recon=10 + i, recon=30 + i) for i in range(40)]
    ds, _ = run(ALDController(paper_cfg(n_epochs_after_stop=3)), recs)
    assert ds[20].stop and not ds[20].end_run
    assert len(ds) == 24 and ds[23].end_run and "run ends" in ds[23].reason
    ds0, _ = run(ALDController(paper_cfg(n_epochs_after_stop=0)), recs)
    assert len(ds0) == 21 and ds0[20].end_run


def test_floor_warns_once_and_is_recorded():
    ctl = ALDController(paper_cfg(n_z_init=12, n_z_min=4, unit_selection="last"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds, n_z = run(ctl, [epoch()] * 30, n_z=12)
    assert n_z == 4 and ctl.floor_reached
    assert sum(issubclass(w.category, PruningFloorWarning) for w in caught) == 1
    assert "n_z_min" in ds[25].reason


def test_nan_policy():
    # Silhouette undefined everywhere: never switches, keeps coarse steps.
    recs = [epoch(sil=math.nan) for _ in range(26)]
    ds, _ = run(ALDController(paper_cfg()), recs)
    assert ds[20].n_remove == 5 and ds[25].n_remove == 5
    # A voting metric with < 3 finite points in the window votes "no": no stop.
    recs = [
        epoch(sil=0.01 * i, fid_gen=math.nan, fid_recon=10 + i, recon=30 + i) for i in range(21)
    ]
    ds, _ = run(ALDController(paper_cfg()), recs)
    assert not ds[20].stop and ds[20].n_remove == 1
    # Scattered NaNs are skipped by the slope fit.
    assert slope([1, math.nan, 3, 4, math.nan, 6]) == pytest.approx(1.0)
    assert math.isnan(slope([1, math.nan, math.nan]))


def test_state_is_json_and_restores_exactly():
    recs = [epoch(sil=0.01 * i, recon=30 - 0.1 * i) for i in range(40)]
    full, _ = run(ALDController(paper_cfg()), recs)
    a = ALDController(paper_cfg())
    first, n_z = run(a, recs[:23])
    b = ALDController(paper_cfg())
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    hist, rest = list(recs[:23]), []
    for r in recs[23:]:
        hist.append(r)
        d = b.decide(hist, n_z, [1.0] * n_z)
        rest.append(d)
        n_z -= d.n_remove
    assert first + rest == full
    with pytest.raises(ValueError, match="controller"):
        FixedController().load_state_dict(a.state_dict())


def test_select_units():
    kl = [0.5, 0.0, 3.0, math.nan, 0.1]
    assert select_units(5, 2, "lowest_kl", kl) == (1, 3)
    assert select_units(5, 3, "lowest_kl", kl) == (1, 3, 4)
    assert select_units(5, 2, "last", None) == (3, 4)
    with pytest.raises(ValueError, match="unit_kl"):
        select_units(5, 1, "lowest_kl", None)


def test_fixed_and_scripted():
    ds, n_z = run(FixedController(), [epoch()] * 30, n_z=8)
    assert n_z == 8 and not any(d.units or d.stop for d in ds)
    ds, n_z = run(ScriptedController({1: 3, 2: "stop"}), [epoch()] * 4, n_z=8)
    assert ds[1].units == (5, 6, 7) and ds[2].stop and n_z == 5


# ---------------------------------------------------------------- the units rule (0.2's ald-tune)


def plateau_cfg(**kw):
    base = dict(
        rule="units",
        window=10,
        patience=2,
        kl_threshold=0.05,
        kl_dead=0.01,
        reserve=2,
        margin=0,
        confirm=3,
        max_recon_increase=0.005,
    )
    return ALDConfig(**{**base, **kw})


def units(n_active, n_z=64, late=()):
    """Per-unit KL curves: the first n_active informative from the start (KL 1+), the
    rest collapsed (KL 0.001) except ``late`` = [(unit, epoch)]: that unit emerges at that
    epoch (KL 0.03 before, 0.8 after), as the 9th/10th units do on MNIST."""
    late = dict(late)

    def curve(i):
        if i < n_active:
            return lambda e: 1.0 + i
        if i in late:
            return lambda e: 0.8 if e >= late[i] else 0.03
        return lambda e: 0.001

    return [curve(i) for i in range(n_z)]


def run_units(ctl, records, curves, cost=lambda removed: 0.0):
    """Drive the controller; removed units leave ``curves``; the probe costs ``cost``."""
    curves, hist, ds = list(curves), [], []
    for e, r in enumerate(records):
        hist.append(r)
        kl = [c(e) for c in curves]
        d = ctl.decide(hist, len(curves), kl, probe=lambda us: [cost(us) / len(us)] * len(us))
        ds.append(d)
        curves = [c for i, c in enumerate(curves) if i not in set(d.units)]
        if d.end_run:
            break
    return ds, len(curves)


def test_plateau_rule_keeps_a_reserve_then_stops_when_the_count_holds():
    ctl = ALDController(plateau_cfg())
    ds, n_z = run_units(ctl, [epoch()] * 40, units(8))
    first = next(d for d in ds if d.units)
    assert ds.index(first) == 9 and len(first.units) == 54  # keep 8 in use + 2 reserve
    assert "remove 54 dead (KL < 0.01); 8 in use (KL >= 0.05), 2 waiting" == first.reason
    stop = next(i for i, d in enumerate(ds) if d.stop)
    assert stop == 9 + 3 * 2  # 3 more decisions, same count
    assert len(ds[stop].units) == 2 and n_z == 8 and ctl.stopped  # the reserve goes at the stop
    assert [d for d in ds if d.reason.startswith("hold")]


def test_plateau_rule_reserve_lets_a_late_unit_emerge():
    # Unit 60 wakes up at epoch 14 (after the first decision at 9): the reserve keeps it
    # alive, and the count in use (8 -> 9) restarts the confirmation.
    curves = units(8, late=[(60, 14)])
    ours = ALDController(plateau_cfg())
    ds, n_z = run_units(ours, [epoch()] * 60, curves)
    assert n_z == 9 and ours.stopped
    assert next(i for i, d in enumerate(ds) if d.stop) == 15 + 3 * 2
    # Removing every unit below kl_threshold at once (no reserve, kl_dead = kl_threshold)
    # takes it out before it can emerge: one unit short.
    greedy = ALDController(plateau_cfg(reserve=0, kl_dead=0.05))
    _, n_greedy = run_units(greedy, [epoch()] * 60, curves)
    assert n_greedy == 8


def test_plateau_rule_waits_while_a_waiting_units_kl_rises():
    # Unit 60's KL climbs (0.02 at epoch 9, +0.01 per decision) and levels off at 0.045,
    # below kl_threshold: the count in use holds at 8 throughout, but the rising KL is
    # evidence that the count is not settled, so the stop waits until it stops rising.
    rising = units(8)
    rising[60] = lambda e: min(0.045, 0.005 * (e - 5))
    ctl = ALDController(plateau_cfg())
    ds, _ = run_units(ctl, [epoch()] * 40, rising)
    assert next(i for i, d in enumerate(ds) if d.stop) == 13 + 3 * 2  # last rise at 13
    # Without the evidence (any rise allowed) it stops three decisions after the first.
    ctl = ALDController(plateau_cfg(rise=1e9))
    ds, _ = run_units(ctl, [epoch()] * 40, rising)
    assert next(i for i, d in enumerate(ds) if d.stop) == 9 + 3 * 2


def test_plateau_rule_noisy_plateau_never_stops_on_noise():
    # Metrics wobble and the in-use KLs wobble too, but the count in use holds: the rule
    # stops on units, at the count in use, whatever the metric noise says.
    import random

    rng = random.Random(0)
    recs = [
        epoch(sil=rng.random(), fid_gen=10 + 5 * rng.random(), recon=30 + rng.random())
        for _ in range(60)
    ]
    noisy = [
        (lambda e, i=i: 0.5 + rng.random()) if i < 12 else (lambda e: 0.01 * rng.random())
        for i in range(64)
    ]
    ctl = ALDController(plateau_cfg())
    ds, n_z = run_units(ctl, recs, noisy)
    assert n_z == 12 and ctl.stopped


def test_plateau_rule_ignores_overfitting_without_pruning():
    # Validation loss rising from overfitting (the paper's stop votes would all say "yes")
    # must not stop a run that still has collapsed units: the rule looks at units, not slopes.
    recs = [epoch(sil=0.01 * i, fid_gen=10 + i, fid_recon=10 + i, recon=30 + i) for i in range(40)]
    paper = ALDController(paper_cfg(window=10, patience=2))
    run(paper, recs)
    assert paper.stopped  # the paper rule stops on the overfit
    ours = ALDController(plateau_cfg())
    _, n_z = run_units(ours, recs, units(8))
    assert n_z == 8 and ours.stopped  # ours prunes to the units in use


def test_plateau_rule_keeps_a_unit_whose_own_removal_costs():
    # Each reserve unit alone costs 1% (> 0.5%): both stay.
    ctl = ALDController(plateau_cfg())
    ds, n_z = run_units(ctl, [epoch()] * 40, units(8), cost=lambda us: 0.01 * len(us))
    stop = next(d for d in ds if d.stop)
    assert not stop.units and "2 kept (each costs more than 0.50% recon)" in stop.reason
    assert n_z == 10 and ctl.stopped
    # Each costs 0.4%, together 0.8%: each is judged alone (the summed cost of many weak
    # units overstates what retraining leaves of it), so both go.
    ctl = ALDController(plateau_cfg())
    ds, n_z = run_units(ctl, [epoch()] * 40, units(8), cost=lambda us: 0.004 * len(us))
    stop = next(d for d in ds if d.stop)
    assert len(stop.units) == 2 and "kept" not in stop.reason and n_z == 8
    ctl = ALDController(plateau_cfg())  # an undefined cost keeps it too
    _, n_z = run_units(ctl, [epoch()] * 40, units(8), cost=lambda us: math.nan)
    assert n_z == 10


def test_plateau_rule_stops_once_a_falling_count_stops_growing():
    # Units die one by one (digits: the count falls for most of the run): the count never
    # holds still, but it does not grow, so what the model uses now bounds what it needs;
    # the rule stops after `confirm` such decisions, at the count then in use.
    def dying(i):
        return lambda e: 1.0 if i < 6 else (0.3 if e < 9 + 2 * (i - 5) else 0.001)

    falling = [dying(i) for i in range(12)] + units(0, n_z=52)
    ctl = ALDController(plateau_cfg(confirm=1))
    ds, n_z = run_units(ctl, [epoch()] * 40, falling)
    stop = next(i for i, d in enumerate(ds) if d.stop)
    assert stop == 11 and "at most 12 units in use at the last 2 decisions" in ds[stop].reason
    # 12 in use at epoch 9, 11 at epoch 11 (unit 6 died): the highest count stays (margin 0)
    assert n_z == 12
    # A count that grows restarts the wait.
    growing = units(6, late=[(60, 11), (61, 13)])
    ctl = ALDController(plateau_cfg(confirm=1))
    ds, n_z = run_units(ctl, [epoch()] * 40, growing)
    assert next(i for i, d in enumerate(ds) if d.stop) == 15 and n_z == 8


def test_plateau_rule_nan_kl_is_collapsed_and_floor_warns():
    curves = units(8)
    curves[3] = lambda e: math.nan  # one informative unit's KL undefined
    ctl = ALDController(plateau_cfg())
    ds, n_z = run_units(ctl, [epoch()] * 40, curves)
    assert n_z == 7 and "7 in use" in next(d for d in ds if d.units).reason
    ctl = ALDController(plateau_cfg(n_z_min=10, reserve=0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, n_z = run_units(ctl, [epoch()] * 40, units(4))
    assert n_z == 10 and ctl.floor_reached
    assert any(issubclass(w.category, PruningFloorWarning) for w in caught)
    with pytest.raises(ValueError, match="unit_kl"):
        ALDController(plateau_cfg()).decide([epoch()] * 10, 64, None)


def test_plateau_rule_state_round_trips_and_stop_ends_run():
    ctl = ALDController(plateau_cfg(n_epochs_after_stop=0))
    ds, n_z = run_units(ctl, [epoch()] * 40, units(5))
    assert ds[-1].stop and ds[-1].end_run and n_z == 5
    b = ALDController(plateau_cfg(n_epochs_after_stop=0))
    b.load_state_dict(json.loads(json.dumps(ctl.state_dict())))
    assert b.state == ctl.state


def test_plateau_rule_waits_for_the_settle_share_of_the_budget():
    # Units emerge until well into training, so no stop before settle x epochs (here 30).
    ctl = ALDController(plateau_cfg(settle=0.5), epochs=60)
    ds, n_z = run_units(ctl, [epoch()] * 60, units(8))
    stop = next(i for i, d in enumerate(ds) if d.stop)
    assert stop == 29 and n_z == 8  # first decision with epoch + 1 >= 30
    assert "no stop before epoch 29" in ds[15].reason
    assert (
        ALDConfig().rule == "ald-tune"
        and ALDConfig().settle == 0.3
        and ALDConfig().confirm == 1
        and ALDConfig().final_share == 1.0
        and ALDConfig().reserve == 4
        and ALDConfig().margin == 1
    )


def test_plateau_rule_last_decision_of_the_budget_stops():
    # The count never holds still (a unit flickers around the threshold), so only the end
    # of the budget stops it: the waiting units go then, not kept in the final model.
    flicker = units(6) + [lambda e: 0.06 if (e // 2) % 2 else 0.02] + units(0, n_z=20)
    ctl = ALDController(plateau_cfg(), epochs=30)
    ds, n_z = run_units(ctl, [epoch()] * 30, flicker)
    stop = next(i for i, d in enumerate(ds) if d.stop)
    assert stop == 27 and "the last decision of the run" in ds[stop].reason
    assert n_z in (6, 7) and ctl.stopped
    # final_share 1 (the default): the final size trains a whole budget after the stop
    assert ctl.run_length(30) == 27 + 1 + 30
    # final_share a quarter: 8 epochs after the stop
    ctl = ALDController(plateau_cfg(final_share=0.25), epochs=30)
    run_units(ctl, [epoch()] * 30, flicker)
    assert ctl.state.stop_epoch == 27 and ctl.run_length(30) == 27 + 1 + 8
    ctl = ALDController(plateau_cfg(final_share=0.0), epochs=30)
    run_units(ctl, [epoch()] * 30, flicker)
    assert ctl.run_length(30) == 30  # final_share 0: the run ends on time


def test_an_early_stop_does_not_extend_the_run():
    ctl = ALDController(plateau_cfg(final_share=0.25), epochs=40)
    ds, _ = run_units(ctl, [epoch()] * 40, units(8))
    assert ctl.stopped and ctl.state.stop_epoch == 15 and ctl.run_length(40) == 40


def test_plateau_rule_keeps_margin_spare_units_at_the_stop():
    ctl = ALDController(plateau_cfg(margin=1))
    ds, n_z = run_units(ctl, [epoch()] * 40, units(8))
    stop = next(d for d in ds if d.stop)
    assert n_z == 9 and len(stop.units) == 1 and "keep 1 spare" in stop.reason


def test_plateau_rule_weak_units_wait_dead_units_go():
    # 8 in use, 10 weak (KL 0.02: neither in use nor dead), the rest dead: only the dead go.
    curves = [
        (lambda e, i=i: 1.0 + i) if i < 8 else (lambda e: 0.02) if i < 18 else (lambda e: 0.001)
        for i in range(64)
    ]
    ctl = ALDController(plateau_cfg())
    ds, n_z = run_units(ctl, [epoch()] * 11, curves)
    assert ds[9].n_remove == 46 and "8 in use (KL >= 0.05), 10 waiting" in ds[9].reason
    with pytest.raises(Exception, match="kl_dead"):
        ALDConfig(kl_dead=0.1, kl_threshold=0.05)
