"""The ``ald-tune`` rule (the default): change n_z only where a twin shows it matters.

1. After ``ald.window`` epochs, the units not in use (mean KL below ``ald.kl_threshold``)
   go but ``ald.margin`` spare ones, without a twin (see :meth:`ALDTuneRule._first_cut`).
2. Then, every ``ald.patience`` epochs, a **paired trial** (:mod:`ald_tune.engine.twin`):
   units go, and a twin, the model as it was, trains beside it on the same batches. At
   the next decision the removal stands when, over the trial's second half, no criterion
   metric of the report's plateau test (``recon_loss``, ``fid_gen``, ``fid_recon``: those
   the run records) is worse than the twin's by more than ``ald.noise_z`` times that
   metric's epoch-to-epoch noise, measured on this run's twins; when some metric is, the
   removal is undone (the twin, which trained all along, takes over); in between, the
   trial of a unit in use goes on once for another ``patience`` epochs (a unit that is
   taking on work costs more as training goes on). Which units go: those not in use but ``margin``
   spare ones, while there are more; else one unit in use less (the spares and the
   weakest unit in use).
3. Pruning stops at the first removal undone, at the size the twin had. If no removal
   has stood by then and the twin uses every unit it has, nothing says that size is
   large enough (a narrow start, or a first cut made before the units the data needs had
   woken: measured on MNIST from n_z 32): the rule then tries **one unit more** (a new
   unit with zero weights, beside a twin without it) and keeps it while some metric gets
   better than the twin's by more than ``noise_z`` x its noise, and none worse.
4. At the stop, or at the last decision the epoch budget allows, the model keeps at least
   ``margin`` spare units over those it uses (added when it has fewer: a model trained
   from scratch needs one unit more than the units it ends up using, measured on
   FashionMNIST, docs/rules.md), never more than it started with.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ald_tune.config.vocabulary import DIRECTIONS, PLATEAU, TWIN_PREFIX
from ald_tune.engine.rules.base import (
    Decision,
    History,
    Probe,
    RuleController,
    RuleState,
    select_units,
)


@dataclass
class ALDTuneState(RuleState):
    first_cut: bool = False  # step 1 is done
    trial_epoch: int = -1  # the epoch the paired trial in progress started after (-1: none)
    trial_kind: str = ""  # what it tries: "cut" (units not in use), "less" (one in use), "grow"
    trial_extended: bool = False  # it was unclear once and goes on
    kept: int = 0  # removals that stood
    # each criterion metric's epoch-to-epoch noise, pooled over the twins: [ss, dof]
    noise: dict[str, list[float]] = field(default_factory=dict)


class ALDTuneRule(RuleController):
    """The paired-trial rule (see the module docstring and :meth:`_decide`)."""

    rule = "ald-tune"
    State = ALDTuneState

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output.

        Raises:
            ValueError: a state of ald-tune 0.2's ``ald-tune`` rule (now ``units``).
        """
        if state.get("rule") == self.rule and "in_use" in state:
            raise ValueError(
                "this checkpoint holds the state of ald-tune 0.2's 'ald-tune' rule, now "
                "called 'units'. Fix: resume it with --set ald.rule=units."
            )
        super().load_state_dict(state)

    def run_length(self, epochs: int) -> int:
        """Epochs the run needs: ``epochs``, or, with ``final_share`` > 0, more after a
        late stop, so that the final size trains for at least that share of ``epochs``
        (a model that starts wide lags one trained at its size from the start)."""
        return self._final_share_length(epochs)

    def _decide(
        self,
        history: History,
        n_z: int,
        unit_kl: Sequence[float] | None,
        probe: Probe | None,
        twin_kl: Sequence[float] | None = None,
    ) -> Decision:
        """One decision every ``patience`` epochs from ``window`` (module docstring). A
        NaN KL counts as a unit not in use; a NaN metric is left out of the judgement."""
        cfg, st = self.cfg, self.state
        epoch = len(history) - 1
        if len(history) < cfg.window:
            return Decision(reason=f"waiting for the window ({len(history)}/{cfg.window} epochs)")
        since = (epoch - (cfg.window - 1)) % cfg.patience
        if since:
            return Decision(reason=f"waiting ({since}/{cfg.patience} epochs)")
        st.last_decision = epoch
        if unit_kl is None or len(unit_kl) != n_z:
            raise ValueError("the ald-tune rule needs each unit's mean KL (unit_kl).")
        kl = list(unit_kl)
        if not st.first_cut:
            return self._first_cut(epoch, n_z, kl)
        if st.trial_epoch < 0:
            return self._next(epoch, n_z, kl, None, "")
        return self._end_trial(history, epoch, n_z, kl, twin_kl)

    def _end_trial(
        self,
        history: History,
        epoch: int,
        n_z: int,
        kl: list[float],
        twin_kl: Sequence[float] | None,
    ) -> Decision:
        """The paired trial's verdict (:meth:`_judge`) carried out: it goes on once when
        unclear, a removal that hurt is undone (or a unit more tried), one that did not
        stands and the next is tried."""
        st = self.state
        grow = st.trial_kind == "grow"
        outcome, why = self._judge(history, grow)
        # Only a unit in use can be taking on work (costing more as training goes on).
        extend = st.trial_kind == "less" and not st.trial_extended and not self._last_call(epoch)
        if outcome == "unclear" and extend:
            st.trial_extended = True
            return Decision(reason=f"unclear: {why}; the trial goes on")
        if outcome == "unclear":  # within the limit after all: a removal stands, a unit more goes
            outcome = "none" if grow else "free"
        self._add_noise(history[st.trial_epoch + 1 :])
        st.trial_epoch, st.trial_extended = -1, False
        if outcome != "free":  # a removal that hurt, or a unit more that did not help
            twin = list(twin_kl) if twin_kl is not None else kl
            full = in_use(twin, self.cfg.kl_threshold) >= len(twin)
            if not grow and not st.kept and full:  # nothing says the twin's size is enough
                return self._grow(epoch, len(twin), "undo", f"undo: {why}")
            return self._finish(epoch, len(twin), twin, "undo", f"undo: {why}")
        if grow:  # the unit more helped: try one more
            return self._grow(epoch, n_z, "keep", f"keep: {why}")
        st.kept += 1
        return self._next(epoch, n_z, kl, "keep", f"keep: {why}")

    def _first_cut(self, epoch: int, n_z: int, kl: list[float]) -> Decision:
        """Step 1, without a twin: a wide model spreads a little over many weak units,
        and a twin would judge the cut on the epochs it takes to gather that into fewer,
        not on what the model can hold (measured on MNIST: a paired cut 64 -> 13 at epoch
        19 was 11.6 worse on fid_recon after 5 epochs and, kept, ended at the edge)."""
        cfg, st = self.cfg, self.state
        count = in_use(kl, cfg.kl_threshold)
        if count == 0 and not self._last_call(epoch):
            # No unit has woken yet (a short window, a slow start): a count of none says
            # nothing about what the data needs, so the cut waits for the next decision.
            return Decision(reason=f"no unit of {n_z} in use yet; the first cut waits")
        st.first_cut = True
        keep = min(n_z, max(count + cfg.margin, cfg.n_z_min, 1))
        if keep >= n_z or self._last_call(epoch):
            return self._next(epoch, n_z, kl, None, f"{count} of {n_z} in use")
        return Decision(
            units=select_units(n_z, n_z - keep, "lowest_kl", kl),
            reason=f"remove {n_z - keep} not in use ({count} in use, {keep - count} spare)",
        )

    def _next(
        self, epoch: int, n_z: int, kl: list[float], verdict: str | None, why: str
    ) -> Decision:
        """Step 2: the next removal beside a twin, or the stop."""
        cfg, st = self.cfg, self.state
        prefix = f"{why}; " if why else ""
        if self._last_call(epoch):
            return self._finish(epoch, n_z, kl, verdict, prefix + "the budget's last decision")
        count = in_use(kl, cfg.kl_threshold)
        target, st.trial_kind = count + cfg.margin, "cut"
        what = f"the {count} in use and {cfg.margin} spare"
        if target >= n_z:
            target, st.trial_kind = count - 1, "less"
            what = f"one of the {count} in use less"
        if target < max(cfg.n_z_min, 1):
            if cfg.n_z_min > 1:
                self._warn_floor(n_z)
            return self._finish(epoch, n_z, kl, verdict, prefix + "no unit in use to spare")
        st.trial_epoch = epoch
        return Decision(
            units=select_units(n_z, n_z - target, "lowest_kl", kl),
            twin=True,
            verdict=verdict,
            reason=prefix + f"try {n_z} -> {target} ({what}) beside a twin",
        )

    def _grow(self, epoch: int, n_z: int, verdict: str, why: str) -> Decision:
        """Step 3: one unit more beside a twin without it (never past ``n_z_init``)."""
        cfg, st = self.cfg, self.state
        if n_z >= cfg.n_z_init or self._last_call(epoch):
            st.stopped, st.stop_epoch = True, epoch
            return Decision(
                stop=True,
                end_run=cfg.n_epochs_after_stop == 0,
                verdict=verdict,
                reason=f"stop: {why}; n_z {n_z}",
            )
        st.trial_epoch, st.trial_kind = epoch, "grow"
        return Decision(
            twin=True,
            grow=1,
            verdict=verdict,
            reason=f"{why}; try {n_z} -> {n_z + 1} (one unit more) beside a twin",
        )

    def _finish(
        self, epoch: int, n_z: int, kl: list[float], verdict: str | None, why: str
    ) -> Decision:
        """Stop: the model keeps at least ``margin`` spare units over those it uses
        (added when it has fewer), never more than it started with."""
        cfg, st = self.cfg, self.state
        count = in_use(kl, cfg.kl_threshold)
        want = min(max(count + cfg.margin, n_z), max(n_z, cfg.n_z_init))
        st.stopped, st.stop_epoch = True, epoch
        grow = want - n_z
        return Decision(
            stop=True,
            end_run=cfg.n_epochs_after_stop == 0,
            verdict=verdict,
            grow=grow,
            reason=f"stop: {why}"
            + (f"; add {grow} spare" if grow else "")
            + f"; {count} in use, n_z {want}",
        )

    def _last_call(self, epoch: int) -> bool:
        """No trial fits in the budget after this decision."""
        return self.epochs is not None and epoch + self.cfg.patience >= self.epochs - 1

    def _judge(self, history: History, grow: bool) -> tuple[str, str]:
        """(outcome, why): compare the trial's last ``patience - patience // 2`` epochs
        with the twin's, each criterion metric against its noise s (pooled over this
        run's twins, this trial's included). A removal: ``hurt`` when some metric is
        worse by more than ``noise_z`` x s, ``unclear`` when some is worse by more than
        (``noise_z`` - 1) x s, else ``free``. A unit more: ``free`` (it stays) when some
        metric is better by more than ``noise_z`` x s and none worse by that much,
        ``unclear`` when some is better by more than (``noise_z`` - 1) x s, else
        ``none``. A NaN noise is not known to be small: a removal hurts, a unit more
        does not help."""
        cfg, st = self.cfg, self.state
        trial = list(history[st.trial_epoch + 1 :])
        saved = {m: list(v) for m, v in st.noise.items()}
        self._add_noise(trial)  # this trial's twin counts, but is pooled once, at its end
        noise = {m: self.noise(m) for m in PLATEAU}
        st.noise = saved
        q = cfg.patience - cfg.patience // 2
        worse, better, unclear, parts = [], [], [], []
        for m in PLATEAU:
            diffs = [_worse(m, rec.get(m), rec.get(TWIN_PREFIX + m)) for rec in trial[-q:]]
            diffs = [d for d in diffs if math.isfinite(d)]
            if not diffs:
                continue
            cost, s = statistics.fmean(diffs), noise[m]
            parts.append(f"{m} {cost:+.3g} (limit {cfg.noise_z * s:.3g})")
            if not cost <= cfg.noise_z * s:  # NaN noise: not known to be small
                worse.append(m)
            elif grow and cost < -cfg.noise_z * s:
                better.append(m)
            elif (-cost if grow else cost) > (cfg.noise_z - 1) * s:
                unclear.append(m)
        why = ", ".join(parts) or "no criterion metric recorded"
        if worse:
            return ("none" if grow else "hurt"), f"{'/'.join(worse)} worse than the twin's: {why}"
        if grow:
            if better:
                return "free", f"{'/'.join(better)} better than the twin's: {why}"
            return ("unclear" if unclear else "none"), f"no better than the twin: {why}"
        return ("unclear" if unclear else "free"), why

    def _add_noise(self, trial: Sequence[Mapping[str, Any]]) -> None:
        """Pool the twin's epoch-to-epoch noise of each metric over this trial: first
        differences with their mean removed (a slow trend goes; independent noise of
        sd s gives differences of sd s * sqrt 2); a single difference counts as it is
        (a trial of two epochs)."""
        for m in PLATEAU:
            got = [r.get(TWIN_PREFIX + m) for r in trial]
            vals = [float(v) for v in got if v is not None and math.isfinite(v)]
            d = [b - a for a, b in zip(vals, vals[1:])]
            if not d:
                continue
            mean = statistics.fmean(d) if len(d) > 1 else 0.0
            ss, dof = self.state.noise.get(m, [0.0, 0.0])
            self.state.noise[m] = [ss + sum((x - mean) ** 2 for x in d), dof + max(len(d) - 1, 1)]

    def noise(self, m: str) -> float:
        """Metric ``m``'s epoch-to-epoch noise (sd) measured on this run's twins; NaN
        before the first trial's end."""
        ss, dof = self.state.noise.get(m, [0.0, 0.0])
        return math.sqrt(ss / dof / 2) if dof else math.nan


def in_use(unit_kl: Sequence[float], threshold: float) -> int:
    """How many units have a mean KL of at least ``threshold`` (NaN: not in use)."""
    return sum(1 for v in unit_kl if math.isfinite(v) and v >= threshold)


def _worse(metric: str, model: Any, twin: Any) -> float:
    """How much worse the model is than its twin on ``metric`` (positive: worse)."""
    if model is None or twin is None:
        return math.nan
    sign = 1.0 if DIRECTIONS.get(metric, "min") == "min" else -1.0
    return sign * (float(model) - float(twin))
