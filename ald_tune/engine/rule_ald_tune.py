"""The ``ald-tune`` rule (the default): follow the units in use, not the metric slopes.

Dead units (mean KL below ``kl_dead``) go at once, keeping a reserve of at least
``reserve`` beyond those in use (KL >= ``kl_threshold``) for units still emerging; when
the number in use holds still for ``confirm`` decisions (and ``settle`` of the epochs are
done), pruning stops and the units not in use go too, but for ``margin`` spare ones (if a
probe of the exact effect of zeroing them on the validation reconstruction allows).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ald_tune.engine.controller import (
    Decision,
    History,
    Probe,
    RuleController,
    RuleState,
    select_units,
)


@dataclass
class ALDTuneState(RuleState):
    in_use: int = -1  # units in use at the last decision
    stable: int = 0  # decisions in a row with that same count and no unit emerging
    waiting_kl: float = -1.0  # the highest KL below kl_threshold at the last decision


class ALDTuneRule(RuleController):
    """The units-in-use rule (see the module docstring and :meth:`_decide`)."""

    rule = "ald-tune"
    State = ALDTuneState

    def run_length(self, epochs: int) -> int:
        """Epochs the run needs: ``epochs``, or, with ``final_share`` > 0 (default 0), more
        after a late stop, so the final size trains for at least that share of them
        (measured on digits, quick preset: units die until the budget's last decision, and
        5 epochs at the final size left the recon loss 0.8 nats above a fixed run's at the
        same n_z, twice the tolerance; a quarter halved the gap).
        """
        stop = self.state.stop_epoch
        if not self.state.stopped or stop is None or not self.cfg.final_share:
            return epochs
        return max(epochs, stop + 1 + math.ceil(self.cfg.final_share * epochs))

    def _decide(
        self, history: History, n_z: int, unit_kl: Sequence[float] | None, probe: Probe | None
    ) -> Decision:
        """The ``ald-tune`` rule: follow the number of units in use, keep a small reserve for
        units that are still emerging, and stop once that number holds still.

        1. Wait until the history holds ``window`` epochs, then decide every ``patience``.
        2. A unit is *in use* when its mean KL is at least ``kl_threshold``, *dead* below
           ``kl_dead``. Dead units are removed at once, but at least ``reserve`` units beyond
           those in use stay (the highest-KL ones): measured on MNIST, a wide model's units
           fall silent by epoch 20, half of them wake weakly by epoch 35 and the 9th and
           10th units it ends up using come from those, by epoch 50-70.
        3. When the count in use is the same for ``confirm`` decisions after the first,
           and at least ``settle`` of the run's epochs are done (units keep emerging until
           well into training: epochs 50-70 of 100 on MNIST), pruning stops. Every unit
           not in use goes except ``margin`` spare ones (the n_z a model trained from
           scratch needs is one above the units it ends up using: on FashionMNIST the
           grid's n_z = 6 models use 5 units, and 5 from scratch misses the tolerance),
           as far as the probe allows: lowest KL first while the summed rise of the
           validation reconstruction with those units set to 0 (exact, before any
           retraining) stays within ``max_recon_increase``; the rest stay.
        4. The last decision the run's budget allows stops too, as in 3 (so a run that
           ends before the count holds still does not keep its waiting units). A stop
           that leaves less than ``final_share`` of the epochs extends the run
           (:meth:`run_length`), so that the final model trains at its size as long.
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
        st.stable = st.stable + 1 if in_use == st.in_use and not emerging else 0
        st.in_use, st.waiting_kl = in_use, waiting
        floor = max(in_use + cfg.margin, cfg.n_z_min)
        settled = self.epochs is None or epoch + 1 >= cfg.settle * self.epochs
        last = self.epochs is not None and epoch + cfg.patience >= self.epochs - 1
        if (st.stable >= cfg.confirm and settled) or last:
            units = select_units(n_z, n_z - floor, "lowest_kl", unit_kl)
            costs = [float(c) for c in probe(units)] if units and probe is not None else []
            kept, total = "", 0.0
            if costs and not sum(costs) <= cfg.max_recon_increase:  # NaN: not allowed either
                # Lowest KL first while the summed cost stays within the limit; the rest stay.
                by_kl = sorted(
                    zip(units, costs),
                    key=lambda uc: (not math.isnan(unit_kl[uc[0]]), unit_kl[uc[0]], uc[0]),
                )
                chosen = []
                for u, c in by_kl:
                    if not total + c <= cfg.max_recon_increase:
                        break
                    chosen.append(u)
                    total += c
                kept = (
                    f"; {len(units) - len(chosen)} kept (removing all costs "
                    f"{sum(costs):+.2%} recon)"
                )
                units = tuple(sorted(chosen))
            st.stopped, st.stop_epoch = True, epoch
            spare = f", keep {floor - in_use} spare" if floor > in_use and units else ""
            why = (
                f"{in_use} units in use for {st.stable + 1} decisions in a row"
                if st.stable >= cfg.confirm and settled
                else f"the last decision of the run, {in_use} units in use"
            )
            return Decision(
                units=units,
                stop=True,
                end_run=cfg.n_epochs_after_stop == 0,
                reason=f"stop: {why}"
                + (f", remove {len(units)} collapsed" if units else "")
                + spare
                + kept,
            )
        alive = sum(1 for v in unit_kl if math.isfinite(v) and v >= cfg.kl_dead)
        keep = max(alive, in_use + cfg.reserve, cfg.n_z_min)
        if n_z <= keep:
            wait = (
                ""
                if settled
                else f"; no stop before epoch {math.ceil(cfg.settle * self.epochs) - 1}"
            )
            return Decision(
                reason=f"hold: {in_use} units in use "
                f"({st.stable + 1}/{cfg.confirm + 1} in a row{wait})"
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
