"""The rules by name: one class per rule, each with its own JSON state."""

from __future__ import annotations

import json

import pytest

from ald_tune.config.sections import ALDConfig
from ald_tune.engine.rules import RULE_CLASSES, make_controller
from ald_tune.engine.rules.aldtune import ALDTuneRule, ALDTuneState
from ald_tune.engine.rules.base import FixedController
from ald_tune.engine.rules.paper import PaperRule, PaperState
from ald_tune.engine.rules.units import UnitsRule, UnitsState


def test_make_controller_gives_one_class_per_rule():
    assert isinstance(make_controller(ALDConfig(rule="paper")), PaperRule)
    assert isinstance(make_controller(ALDConfig(rule="ald-tune"), epochs=60), ALDTuneRule)
    assert isinstance(make_controller(ALDConfig(rule="units"), epochs=60), UnitsRule)
    assert isinstance(make_controller(ALDConfig(), fixed_n_z=8), FixedController)
    assert set(RULE_CLASSES) == {"paper", "ald-tune", "units"}


@pytest.mark.parametrize(
    "cls, state",
    [(PaperRule, PaperState), (ALDTuneRule, ALDTuneState), (UnitsRule, UnitsState)],
)
def test_each_rule_keeps_a_json_state_of_its_own(cls, state):
    ctl = cls(ALDConfig(rule=cls.rule), 60)
    saved = json.loads(json.dumps(ctl.state_dict()))
    assert saved["rule"] == cls.rule and set(saved) == {"rule", *state.__dataclass_fields__}
    other = cls(ALDConfig(rule=cls.rule), 60)
    other.load_state_dict(saved)
    assert other.state == ctl.state
    with pytest.raises(ValueError, match="this run uses"):
        other.load_state_dict({**saved, "rule": "fixed"})


def test_a_checkpoint_of_0_1_restores_either_rule():
    old = {
        "rule": "paper",
        "step": 1,
        "switched": True,
        "stopped": False,
        "stop_epoch": None,
        "last_decision": 20,
        "floor_reached": False,
        "in_use": -1,
        "stable": 0,
    }
    ctl = PaperRule(ALDConfig(rule="paper"))
    ctl.load_state_dict(old)
    assert ctl.state.switched and ctl.state.step == 1 and ctl.state.last_decision == 20
    tuned = UnitsRule(ALDConfig(rule="units"), 60)
    tuned.load_state_dict({**old, "rule": "units", "in_use": 7, "stable": 2})
    assert (tuned.state.in_use, tuned.state.stable) == (7, 2)


def test_a_checkpoint_of_the_0_2_ald_tune_rule_names_the_rule_it_needs():
    """ald-tune <= 0.2 called the units rule 'ald-tune': its state does not resume the
    paired-trial rule silently."""
    saved = {"rule": "ald-tune", "stopped": False, "last_decision": 20, "in_use": 7, "stable": 2}
    with pytest.raises(ValueError, match="ald.rule=units"):
        ALDTuneRule(ALDConfig(), 60).load_state_dict(saved)
