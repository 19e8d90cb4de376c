"""The controller base: metric history in, a :class:`Decision` out; and the fixed one.

No torch here: a controller sees plain floats (one dict per finished epoch, keys such as
``recon_loss``, ``fid_gen``, ``fid_recon``, ``silhouette``), the current n_z and
optionally each unit's mean KL, and returns a frozen :class:`Decision`. Its small
leftover state is a JSON dict behind ``state_dict()`` / ``load_state_dict()`` so a
checkpoint restores it exactly. One class per rule, each in its own module:

* :class:`FixedController` (here): the grid baseline; never prunes;
* :class:`ald_tune.engine.rules.paper.PaperRule`: the authors' rule (metric slopes);
* :class:`ald_tune.engine.rules.aldtune.ALDTuneRule`: the units in use (the default).

:func:`ald_tune.engine.rules.make_controller` picks the one a run needs; a scripted
controller for tests
lives in :mod:`ald_tune.testing.scripted`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

History = Sequence[Mapping[str, float]]
#: Given unit indices, the relative increase of the validation reconstruction loss when
#: each unit alone is set to 0 (what removing it does before any retraining).
Probe = Callable[[Sequence[int]], Sequence[float]]


class PruningFloorWarning(UserWarning):
    """n_z reached ``n_z_min`` before the stop rule fired."""


@dataclass(frozen=True)
class Decision:
    """What to do after one epoch.

    A driver carries it out in one order (:func:`ald_tune.engine.twin.apply_decision`):
    the ``verdict`` on the trial in progress, then a new ``twin`` (the model as it is
    then), then ``grow``, then the removal of ``units``.

    Attributes:
        units: indices of the latent units to remove now (may be empty).
        stop: pruning stopped at this epoch (n_z is final from here on).
        end_run: training ends after this epoch.
        reason: one human-readable line saying why.
        twin: a paired trial starts: a copy of the model as it is now (before ``grow``
            and ``units``) trains beside it on the same batches, and each epoch's record
            holds the copy's metrics too (``twin.<metric>``), until a ``verdict``.
        verdict: the paired trial in progress ends: ``keep`` (the removal stands, the
            copy goes) or ``undo`` (the copy takes the model's place).
        grow: add this many new units, last (the decoder ignores them at first).
    """

    units: tuple[int, ...] = ()
    stop: bool = False
    end_run: bool = False
    reason: str = ""
    twin: bool = False
    verdict: str | None = None
    grow: int = 0

    @property
    def n_remove(self) -> int:
        return len(self.units)

    def to_dict(self) -> dict[str, Any]:
        """A JSON record; the paired-trial fields only when used (rules without trials
        keep their records' layout)."""
        d = asdict(self)
        d["units"] = list(self.units)
        for key, unused in (("twin", False), ("verdict", None), ("grow", 0)):
            if d[key] == unused:
                del d[key]
        return d


def slope(values: Sequence[float]) -> float:
    """Least-squares slope (degree-1 fit) over the finite values; NaN if < 3."""
    pts = [(i, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    if len(pts) < 3:
        return math.nan
    n = len(pts)
    mx = sum(i for i, _ in pts) / n
    my = sum(v for _, v in pts) / n
    sxx = sum((i - mx) ** 2 for i, _ in pts)
    return sum((i - mx) * (v - my) for i, v in pts) / sxx


def finite_mean(values: Sequence[float]) -> float:
    """Mean of the finite values; NaN when there are none."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else math.nan


def select_units(n_z: int, k: int, how: str, unit_kl: Sequence[float] | None) -> tuple[int, ...]:
    """Pick ``k`` of ``n_z`` units to remove.

    Args:
        n_z: current number of units.
        k: how many to remove (0 <= k < n_z).
        how: ``last`` (highest indices, the authors' choice) or ``lowest_kl``
            (smallest mean KL to the prior: the least informative units).
        unit_kl: per-unit mean KL, required for ``lowest_kl``.

    Returns:
        Sorted unit indices.
    """
    if k <= 0:
        return ()
    if how == "last":
        return tuple(range(n_z - k, n_z))
    if unit_kl is None or len(unit_kl) != n_z:
        raise ValueError(
            f"unit_selection='lowest_kl' needs unit_kl of length n_z={n_z}, "
            f"got {None if unit_kl is None else len(unit_kl)}."
        )
    # NaN KL sorts first: a unit whose KL is undefined carries no usable information.
    order = sorted(
        range(n_z),
        key=lambda i: (
            not math.isnan(unit_kl[i]),
            unit_kl[i] if not math.isnan(unit_kl[i]) else 0,
            i,
        ),
    )
    return tuple(sorted(order[:k]))


class Controller:
    """What every controller is: a decision per epoch and a JSON state.

    Attributes:
        rule: the rule's name (recorded in the state, checked on restore).
    """

    rule = "base"

    def decide(
        self,
        history: History,
        n_z: int,
        unit_kl: Sequence[float] | None = None,
        probe: Probe | None = None,
        twin_kl: Sequence[float] | None = None,
    ) -> Decision:  # pragma: no cover - overridden
        """Decide after the last epoch in ``history`` (index = epoch, 0-based).

        Args:
            history: one metric dict per finished epoch (during a paired trial, the
                twin's metrics too, as ``twin.<metric>``).
            n_z: the current number of units.
            unit_kl: each unit's mean KL to the prior on validation data.
            probe: the removal cost of given units (the relative rise of the validation
                reconstruction loss when each is set to 0).
            twin_kl: during a paired trial, each of the twin's units' mean KL.
        """
        raise NotImplementedError

    def run_length(self, epochs: int) -> int:
        """Epochs the run needs, given its budget ``epochs`` (a rule may extend it after a
        late stop: :meth:`ald_tune.engine.rules.aldtune.ALDTuneRule.run_length`)."""
        return epochs

    def run_over(self, decision: Decision, epoch: int, epochs: int | None) -> bool:
        """Whether the run ends after ``epoch`` (0-based): the decision ends it, or the
        epochs :meth:`run_length` gives for the budget ``epochs`` are done (None: no
        budget known, only the decision ends it). The one "done" rule of every trainer."""
        return decision.end_run or (epochs is not None and epoch + 1 >= self.run_length(epochs))

    def longest_run(self, epochs: int) -> int:
        """The most epochs :meth:`run_length` can come to (what a run's header says before
        it knows when the rule stops)."""
        return epochs

    @property
    def stopped(self) -> bool:
        """Pruning has stopped for good (n_z is final)."""
        return False

    @property
    def floor_reached(self) -> bool:
        """n_z reached ``n_z_min`` before the rule stopped."""
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"rule": self.rule}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("rule") != self.rule:
            raise ValueError(
                f"checkpoint holds a {state.get('rule')!r} controller, this run uses {self.rule!r}."
            )


class FixedController(Controller):
    """The grid baseline's controller: never prunes, never stops early."""

    rule = "fixed"

    def decide(
        self,
        history: History,
        n_z: int,
        unit_kl: Sequence[float] | None = None,
        probe: Probe | None = None,
        twin_kl: Sequence[float] | None = None,
    ) -> Decision:
        return Decision(reason=f"fixed n_z={n_z}")


@dataclass
class RuleState:
    """What every pruning rule keeps between decisions."""

    stopped: bool = False
    stop_epoch: int | None = None
    last_decision: int = 0
    floor_reached: bool = False


class RuleController(Controller):
    """A pruning rule: its config (:class:`ald_tune.config.sections.ALDConfig` or any object
    with its fields), the run's epoch budget and a state dataclass of its own.

    After the stop the run trains on at the final n_z to the last epoch, or
    ``n_epochs_after_stop`` epochs more.
    """

    State: type = RuleState

    def __init__(self, cfg: Any, epochs: int | None = None) -> None:
        self.cfg = cfg
        self.epochs = epochs  # the run's budget; None: unknown
        self.state = self.State()

    @property
    def stopped(self) -> bool:
        return self.state.stopped

    @property
    def floor_reached(self) -> bool:
        return self.state.floor_reached

    def state_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, **asdict(self.state)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        # Checkpoints of ald-tune 0.1 held one state for both rules: keep this rule's fields.
        known = {f.name for f in fields(self.State)}
        self.state = self.State(**{k: v for k, v in state.items() if k in known})

    def decide(
        self,
        history: History,
        n_z: int,
        unit_kl: Sequence[float] | None = None,
        probe: Probe | None = None,
        twin_kl: Sequence[float] | None = None,
    ) -> Decision:
        epoch = len(history) - 1
        if self.state.stopped:
            return self._after_stop(epoch)
        return self._decide(history, n_z, unit_kl, probe, twin_kl)

    def _decide(
        self,
        history: History,
        n_z: int,
        unit_kl: Sequence[float] | None,
        probe: Probe | None,
        twin_kl: Sequence[float] | None = None,
    ) -> Decision:  # pragma: no cover - overridden
        raise NotImplementedError

    def _after_stop(self, epoch: int) -> Decision:
        n_after = self.cfg.n_epochs_after_stop
        stop = self.state.stop_epoch if self.state.stop_epoch is not None else epoch
        done = n_after is not None and epoch - stop >= n_after
        why = f"pruning stopped at epoch {self.state.stop_epoch}"
        return Decision(end_run=done, reason=why + ("; run ends" if done else ""))

    def _warn_floor(self, n_z: int) -> None:
        if not self.state.floor_reached:
            self.state.floor_reached = True
            warnings.warn(
                f"n_z reached n_z_min={self.cfg.n_z_min} (n_z={n_z}) before the stop "
                "rule fired; the chosen size is the floor, not a finding. "
                "Lower ald.n_z_min or use more epochs.",
                PruningFloorWarning,
                stacklevel=3,
            )

    def longest_run(self, epochs: int) -> int:
        """``epochs``, plus the final share's epochs for a rule that extends the run after
        a stop on its last epoch (``run_length`` uses :meth:`_final_share_length`)."""
        if type(self).run_length is Controller.run_length or not self.cfg.final_share:
            return epochs
        return epochs + math.ceil(self.cfg.final_share * epochs)

    def _final_share_length(self, epochs: int) -> int:
        """``epochs``, or, with ``ald.final_share`` > 0, more after a late stop, so that the
        final size trains for at least that share of ``epochs``."""
        stop = self.state.stop_epoch
        if not self.state.stopped or stop is None or not self.cfg.final_share:
            return epochs
        return max(epochs, stop + 1 + math.ceil(self.cfg.final_share * epochs))
