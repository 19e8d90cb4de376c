"""Every config field rejects a bad value and a bad type with a message naming it."""

from __future__ import annotations

import dataclasses

import pytest

from ald_tune.config import constraints as C
from ald_tune.config.sections import SECTIONS
from ald_tune.config.sweep_sections import GridConfig, TuneConfig
from ald_tune.errors import ConfigError


def bad_value(check: C.Constraint):
    if isinstance(check, C.Int):
        return (check.low - 1) if check.low is not None else check.high + 1
    if isinstance(check, C.Float):
        return check.low if check.low_open else check.low - 1.0
    if isinstance(check, C.Choice):
        return "no-such-option"
    if isinstance(check, C.IntTuple):
        return [check.low - 1]
    if isinstance(check, C.Votes):
        return {"no_such_metric": "up"}
    if isinstance(check, C.ImportPath):
        return "not an import path"
    if isinstance(check, C.Text):
        return "   "
    if isinstance(check, C.Bool):
        return "yes"
    if isinstance(check, C.FloatPair):
        return [2.0, 1.0]
    if isinstance(check, C.Kwargs):
        return {"depth": [[1, 2]]}
    raise AssertionError(f"no bad value known for {check!r}")


def bad_type(check: C.Constraint):
    return {
        C.Int: "ten",
        C.Float: "fast",
        C.Choice: 3,
        C.IntTuple: "2,4",
        C.Votes: 5,
        C.Text: 5,
        C.Bool: 1,
        C.FloatPair: 0.1,
        C.Kwargs: 5,
        C.ImportPath: 5,
    }[type(check)]


FIELDS = [(name, sec, f) for name, sec in SECTIONS.items() for f in dataclasses.fields(sec)]


@pytest.mark.parametrize("name,sec,f", FIELDS, ids=[f"{n}.{f.name}" for n, _, f in FIELDS])
def test_every_field_is_constrained_and_checked(name, sec, f):
    check = f.metadata.get("check")
    assert check is not None, f"{name}.{f.name} has no declared constraint"
    assert f.metadata.get("doc"), f"{name}.{f.name} has no doc"
    for bad in (bad_value(check), bad_type(check)):
        with pytest.raises(ConfigError) as err:
            sec(**{f.name: bad})
        msg = str(err.value)
        assert f"'{f.name}' parameter of {sec.__name__}" in msg
        assert repr(bad) in msg and "Got" in msg


def test_the_seven_sections_are_named_in_the_configs_order():
    # the run's five, then the sweep's two (config.sweep_sections)
    assert list(SECTIONS) == ["data", "model", "train", "ald", "eval", "grid", "tune"]
    assert SECTIONS["grid"] is GridConfig and SECTIONS["tune"] is TuneConfig
    with pytest.raises(ConfigError, match=r"'scheduler' parameter of TuneConfig.*Got 'pbt'"):
        TuneConfig(scheduler="pbt")
