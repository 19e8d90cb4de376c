"""NaN-tolerant numbers read from trial records."""

from __future__ import annotations

import math

from ald_tune.report.numbers import clean, last, mean, ratio, std, trial_cost
from ald_tune.sweeps.results import TrialRecord


def test_missing_values_never_break_a_mean_and_json_gets_none():
    assert mean([1, None, "x", math.nan, 3]) == 2 and math.isnan(mean([]))
    assert math.isnan(std([1.0])) and ratio(1, 0) != ratio(1, 0)
    assert clean({"a": (1, math.inf), "b": [math.nan]}) == {"a": [1, None], "b": [None]}


def test_trial_cost_measured_or_estimated():
    hist = [
        {"epoch": e, "train_time_s": 2.0, "eval_time_s": 0.5, "cpu_time_s": 1.0} for e in range(4)
    ]
    t = TrialRecord("t", history=hist, cpus=2.0, gpus=0.5)
    assert trial_cost(t) == (4.0, 5.0, "cpu_time_s") and t.time_s == 10.0
    for h in hist:
        del h["cpu_time_s"]
    assert trial_cost(t) == (20.0, 5.0, "time_s x cpus_per_trial")
    assert last(t, "train_time_s") == 2.0 and math.isnan(last(TrialRecord("x"), "n_z"))
