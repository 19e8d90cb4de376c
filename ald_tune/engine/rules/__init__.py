"""The stop rules by name, and the controller a run needs (:func:`make_controller`)."""

from __future__ import annotations

from typing import Any

from ald_tune.engine.rules.aldtune import ALDTuneRule
from ald_tune.engine.rules.base import Controller, FixedController, RuleController
from ald_tune.engine.rules.paper import PaperRule
from ald_tune.engine.rules.units import UnitsRule

#: Every pruning rule, by the name ``ald.rule`` gives it.
RULE_CLASSES: dict[str, type[RuleController]] = {
    "paper": PaperRule,
    "ald-tune": ALDTuneRule,
    "units": UnitsRule,
}


def make_controller(
    cfg: Any, fixed_n_z: int | None = None, epochs: int | None = None
) -> Controller:
    """The controller a run needs: fixed for the grid, else the rule ``cfg.rule`` names
    (``epochs``: the run's budget, for the ``ald-tune`` rule's ``settle``)."""
    if fixed_n_z is not None:
        return FixedController()
    return RULE_CLASSES[cfg.rule](cfg, epochs)


def ALDController(cfg: Any, epochs: int | None = None) -> RuleController:  # noqa: N802
    """The pruning controller of ``cfg.rule`` (``paper`` or ``ald-tune``).

    Example:
        >>> from ald_tune.config.sections import ALDConfig
        >>> ctl = ALDController(ALDConfig(rule="paper"))
        >>> hist = [{"silhouette": 0.1, "fid_gen": 1, "fid_recon": 1, "recon_loss": 1}] * 6
        >>> ctl.decide(hist, n_z=64, unit_kl=[1.0] * 64).units
        (59, 60, 61, 62, 63)
    """
    ctl = make_controller(cfg, None, epochs)
    assert isinstance(ctl, RuleController)
    return ctl
