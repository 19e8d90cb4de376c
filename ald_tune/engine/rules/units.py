"""The ``units`` rule (ald-tune 0.2's default, kept for comparison): follow the units in use.

Dead units (mean KL below ``kl_dead``) go at once, keeping a reserve of at least
``reserve`` beyond those in use (KL >= ``kl_threshold``) for units still emerging. As soon
as the number in use has stopped growing (``confirm`` decisions in a row without a rise,
no waiting unit's KL rising either), pruning stops and the units not in use go too, but
for ``margin`` spare ones and any unit whose own removal the probe shows to cost more
than ``max_recon_increase`` of the validation reconstruction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ald_tune.engine.rules.base import (
    Decision,
    History,
    Probe,
    RuleController,
    RuleState,
    select_units,
)


@dataclass
class UnitsState(RuleState):
    in_use: int = -1  # units in use at the last decision
    stable: int = 0  # decisions in a row without a rise in that count or an emerging unit
    recent: list[int] = field(default_factory=list)  # the counts at the last confirm + 1
    waiting_kl: float = -1.0  # the highest KL below kl_threshold at the last decision


class UnitsRule(RuleController):
    """The units-in-use rule (see the module docstring and :meth:`_decide`)."""

    rule = "units"
    State = UnitsState

    def run_length(self, epochs: int) -> int:
        """Epochs the run needs: ``epochs``, or, with ``final_share`` > 0, more after a
        late stop, so that the final size trains for at least that share of ``epochs``
        (a model that starts wide lags one trained at its size from the start: measured
        on digits, quick preset, a stop at epoch 19 left the final model 0.4-0.7 nats of
        recon loss behind fixed runs at its n_z after 40 epochs, within 0.3 after 60).
        """
        return self._final_share_length(epochs)

    def _decide(
        self,
        history: History,
        n_z: int,
        unit_kl: Sequence[float] | None,
        probe: Probe | None,
        twin_kl: Sequence[float] | None = None,
    ) -> Decision:
        """The ``units`` rule: follow the number of units in use, keep a small reserve for
        units that are still emerging, and stop once that number has stopped growing.

        1. Wait until the history holds ``window`` epochs, then decide every ``patience``.
        2. A unit is *in use* when its mean KL is at least ``kl_threshold``, *dead* below
           ``kl_dead``. Dead units are removed at once, but at least ``reserve`` units beyond
           those in use stay (the highest-KL ones): measured on MNIST, a wide model's units
           fall silent by epoch 20, half of them wake weakly by epoch 35 and the 9th and
           10th units it ends up using come from those, by epoch 50-70.
        3. *Settled*: for ``confirm`` decisions in a row the count in use has not grown and
           no waiting unit is emerging (the strongest one's KL has not risen by more than
           ``rise`` since the last decision), and ``settle`` of the epochs are done (0.3
           by default: before that, units still collapse and re-emerge, so a falling count
           is not settled; on the manifold set with d = 10 the count is 16, 13, 9, 12, 12
           at epochs 9-29 of 150 and 10 from epoch 39). While the count only falls, the model is
           giving up units, so what it uses now bounds what it will need: a unit too
           many is cheap (it dies and costs nothing), one too few misses the plateau.
           Pruning stops (:meth:`_stop`) at the highest count of those decisions (the
           count wobbles by a unit as weak units cross ``kl_threshold``).
        4. The last decision the run's budget allows stops too, as in 3 (so a run that
           ends before the count settles does not keep its waiting units).
        A NaN KL counts as collapsed and sorts first, as in :func:`select_units`.
        """
        cfg, st = self.cfg, self.state
        epoch = len(history) - 1
        if len(history) < cfg.window:
            return Decision(reason=f"waiting for the window ({len(history)}/{cfg.window} epochs)")
        if epoch - st.last_decision < cfg.patience and st.in_use >= 0:
            return Decision(reason=f"waiting ({epoch - st.last_decision}/{cfg.patience} epochs)")
        st.last_decision = epoch
        if unit_kl is None or len(unit_kl) != n_z:
            raise ValueError("the ald-tune rule needs each unit's mean KL (unit_kl).")
        in_use = self._observe(unit_kl)
        settled = self.epochs is None or epoch + 1 >= cfg.settle * self.epochs
        last = self.epochs is not None and epoch + cfg.patience >= self.epochs - 1
        evidence = st.stable >= cfg.confirm and settled
        if evidence or last:
            count = max(st.recent) if evidence else in_use
            return self._stop(n_z, count, unit_kl, probe, epoch, late=not evidence)
        return self._prune_dead(n_z, in_use, unit_kl, settled)

    def _observe(self, unit_kl: Sequence[float]) -> int:
        """Count the units in use, update the streak without growth, return the count."""
        cfg, st = self.cfg, self.state
        in_use = sum(1 for v in unit_kl if math.isfinite(v) and v >= cfg.kl_threshold)
        # Evidence that a unit is emerging: the strongest waiting unit's KL grew by more
        # than ald.rise since the last decision (and is no longer dead).
        waiting = max(
            (v for v in unit_kl if math.isfinite(v) and v < cfg.kl_threshold), default=0.0
        )
        emerging = (
            st.waiting_kl >= 0
            and waiting >= cfg.kl_dead
            and waiting > st.waiting_kl * (1 + cfg.rise)
        )
        grew = st.in_use < 0 or in_use > st.in_use
        st.stable = st.stable + 1 if not grew and not emerging else 0
        st.recent = [*st.recent, in_use][-(cfg.confirm + 1) :]
        st.in_use, st.waiting_kl = in_use, waiting
        return in_use

    def _stop(
        self,
        n_z: int,
        in_use: int,
        unit_kl: Sequence[float],
        probe: Probe | None,
        epoch: int,
        late: bool,
    ) -> Decision:
        """Stop pruning: every unit not in use goes but for ``margin`` spare ones (the n_z a
        model trained from scratch needs is one above the units it ends up using: on
        FashionMNIST the grid's n_z = 6 models use 5 units, and 5 from scratch misses the
        tolerance), except a unit whose own removal raises the validation reconstruction
        by more than ``max_recon_increase`` (the probe: exact, before any retraining)."""
        cfg, st = self.cfg, self.state
        floor = max(in_use + cfg.margin, cfg.n_z_min)
        units = select_units(n_z, n_z - floor, "lowest_kl", unit_kl)
        costs = [float(c) for c in probe(units)] if units and probe is not None else []
        # A unit stays when its cost is over the limit (or NaN: not known to be cheap).
        kept = [u for u, c in zip(units, costs) if not c <= cfg.max_recon_increase]
        units = tuple(u for u in units if u not in set(kept))
        st.stopped, st.stop_epoch = True, epoch
        why = (
            f"the last decision of the run, {in_use} units in use"
            if late
            else f"at most {in_use} units in use at the last {len(st.recent)} decisions, "
            f"not growing for {st.stable}"
        )
        return Decision(
            units=units,
            stop=True,
            end_run=cfg.n_epochs_after_stop == 0,
            reason=f"stop: {why}"
            + (f", remove {len(units)} collapsed" if units else "")
            + (f", keep {floor - in_use} spare" if floor > in_use and units else "")
            + (
                f"; {len(kept)} kept (each costs more than {cfg.max_recon_increase:.2%} recon)"
                if kept
                else ""
            ),
        )

    def _prune_dead(
        self, n_z: int, in_use: int, unit_kl: Sequence[float], settled: bool
    ) -> Decision:
        """Remove the dead units, keeping ``reserve`` beyond those in use."""
        cfg, st = self.cfg, self.state
        alive = sum(1 for v in unit_kl if math.isfinite(v) and v >= cfg.kl_dead)
        keep = max(alive, in_use + cfg.reserve, cfg.n_z_min)
        if n_z <= keep:
            wait = (
                ""
                if settled or self.epochs is None
                else f"; no stop before epoch {math.ceil(cfg.settle * self.epochs) - 1}"
            )
            return Decision(
                reason=f"hold: {in_use} units in use "
                f"({st.stable}/{cfg.confirm} decisions without growth{wait})"
            )
        if keep == cfg.n_z_min and in_use + cfg.reserve < cfg.n_z_min:
            self._warn_floor(keep)
        units = select_units(n_z, n_z - keep, "lowest_kl", unit_kl)
        return Decision(
            units=units,
            reason=f"remove {len(units)} dead (KL < {cfg.kl_dead:g}); "
            f"{in_use} in use (KL >= {cfg.kl_threshold:g}), "
            f"{keep - in_use} waiting",
        )
