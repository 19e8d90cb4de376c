"""The ``ald-tune`` rule (the default): remove units while a twin shows they are not missed.

Every decision is a *paired trial* (:mod:`ald_tune.engine.twin`): the rule removes
units, and a twin, the model as it was, trains beside it on the same batches for
``ald.patience`` epochs. The removal stands when, over the trial's second half, no
criterion metric of the report's plateau test (``recon_loss``, ``fid_gen``,
``fid_recon``: those the run records) is worse than the twin's by more than
``ald.noise_z`` times that metric's own epoch-to-epoch noise, measured on the twins of
this run; otherwise it is undone and the twin takes over. Which units it tries:

1. the units not in use (mean KL below ``ald.kl_threshold``) but ``ald.margin`` spare
   ones, for units that still emerge;
2. when the units in use fill the model (but for its spares), one in use less: the
   spares and the weakest unit in use go;
3. after a removal was undone, half-way between the largest size that failed and the
   size the model has (bisection).

It stops when a trial of one unit in use less fails, when the bisection has closed, or
at the last decision the epoch budget allows. The answer is the last size that passed,
with ``ald.margin`` spare units over the units it uses (new, zero-weight units are added
when it has fewer): a model trained from scratch needs one unit more than the units it
ends up using (measured on FashionMNIST: docs/rules.md).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ald_tune.config.vocabulary import DIRECTIONS, PLATEAU
from ald_tune.engine.controller import (
    Decision,
    History,
    Probe,
    RuleController,
    RuleState,
    select_units,
)
from ald_tune.engine.twin import TWIN_PREFIX


@dataclass
class ALDTuneState(RuleState):
    lo: int = 0  # the largest size a trial showed to be too small (0: none yet)
    trial_epoch: int = -1  # the epoch the trial in progress started after (-1: none)
    trial_to: int = 0  # the size it tries
    trial_last: bool = False  # it tries one unit in use less (its failure ends the search)
    trial_extended: bool = False  # it was unclear once and goes on
    first_cut: bool = False  # the first removal (of units not in use, without a twin) is done
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
        stop = self.state.stop_epoch
        if not self.state.stopped or stop is None or not self.cfg.final_share:
            return epochs
        return max(epochs, stop + 1 + math.ceil(self.cfg.final_share * epochs))

    def _decide(
        self,
        history: History,
        n_z: int,
        unit_kl: Sequence[float] | None,
        probe: Probe | None,
        twin_kl: Sequence[float] | None = None,
    ) -> Decision:
        """One decision every ``patience`` epochs from ``window``: judge the trial in
        progress, then start the next one or stop (module docstring). A NaN KL counts
        as a unit not in use; a NaN metric is left out of the judgement."""
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
        verdict, why = None, ""
        kl = list(unit_kl)
        if st.trial_epoch >= 0:
            outcome, why = self._judge(history)
            if outcome == "unclear" and not st.trial_extended and not self._last_call(epoch):
                st.trial_extended = True
                return Decision(reason=f"unclear: {why}; the trial goes on")
            hurt = outcome == "hurt"
            verdict = "undo" if hurt else "keep"
            last, tried = st.trial_last, st.trial_to
            self._add_noise(history[st.trial_epoch + 1 :])
            st.trial_epoch, st.trial_last, st.trial_extended = -1, False, False
            if hurt:
                st.lo = max(st.lo, tried)
                n_z = len(twin_kl) if twin_kl is not None else n_z
                kl = list(twin_kl) if twin_kl is not None else kl
                if last:
                    return self._finish(epoch, n_z, kl, verdict, f"undo: {why}")
        return self._next(epoch, n_z, kl, verdict, why)

    def _next(
        self, epoch: int, n_z: int, kl: list[float], verdict: str | None, why: str
    ) -> Decision:
        """Start the next trial (module docstring, 1-3), or stop."""
        cfg, st = self.cfg, self.state
        prefix = (f"{verdict}: {why}; " if verdict else "") if why else ""
        if self._last_call(epoch):
            return self._finish(epoch, n_z, kl, verdict, prefix + "the budget's last decision")
        count = in_use(kl, cfg.kl_threshold)
        target, last = count + cfg.margin, False
        if target >= n_z:
            target, last = count - 1, True
        if target <= st.lo:
            target, last = (st.lo + n_z + 1) // 2, False
        if target < cfg.n_z_min:
            self._warn_floor(n_z)
            target = cfg.n_z_min
        if target >= n_z or target < 1:
            return self._finish(epoch, n_z, kl, verdict, prefix + f"{n_z} passed, {st.lo} did not")
        units = select_units(n_z, n_z - target, "lowest_kl", kl)
        if not st.first_cut and not last and count >= 1:
            # The first cut, of the units not in use at the window's end, goes without a
            # twin: a wide model spreads a little over many weak units, and a twin would
            # judge the cut on the epochs it takes to gather that into fewer, not on what
            # the model can hold (measured on MNIST: the cut 64 -> 13 at epoch 19 was 11.6
            # worse on fid_recon after 5 epochs, and ended at the plateau's edge when kept).
            st.first_cut = True
            return Decision(
                units=units,
                verdict=verdict,
                reason=prefix + f"remove {n_z - target} not in use ({count} in use, "
                f"{cfg.margin} spare kept)",
            )
        st.first_cut = True
        st.trial_epoch, st.trial_to, st.trial_last = epoch, target, last
        what = (
            "one unit in use less"
            if last
            else (
                "between the sizes that passed and failed"
                if st.lo and target > count + cfg.margin
                else f"the {count} in use and {cfg.margin} spare"
            )
        )
        return Decision(
            units=units,
            twin=True,
            verdict=verdict,
            reason=prefix + f"try {n_z} -> {target} ({what}) beside a twin",
        )

    def _finish(
        self, epoch: int, n_z: int, kl: list[float], verdict: str | None, why: str
    ) -> Decision:
        """Stop: the answer is the model now, with ``margin`` spare units over those it
        uses (added when it has fewer)."""
        cfg, st = self.cfg, self.state
        # never wider than the run started
        want = min(max(n_z, in_use(kl, cfg.kl_threshold) + cfg.margin), max(n_z, cfg.n_z_init))
        st.stopped, st.stop_epoch = True, epoch
        grow = want - n_z
        return Decision(
            stop=True,
            end_run=cfg.n_epochs_after_stop == 0,
            verdict=verdict,
            grow=grow,
            reason=f"stop: {why}" + (f"; add {grow} spare" if grow else "") + f"; n_z {want}",
        )

    def _last_call(self, epoch: int) -> bool:
        """No trial fits in the budget after this decision."""
        return self.epochs is not None and epoch + self.cfg.patience >= self.epochs - 1

    def _judge(self, history: History) -> tuple[str, str]:
        """(outcome, why): compare the trial's last ``patience - patience // 2`` epochs
        with the twin's, each criterion metric against its noise s (pooled over this
        run's twins, this trial's included). ``hurt``: some metric is worse by more than
        ``noise_z`` x s; ``unclear``: none is, but some by more than (``noise_z`` - 1) x s
        (a unit that is taking on work costs more as training goes on: the trial goes on
        once); ``free`` otherwise."""
        cfg, st = self.cfg, self.state
        trial = list(history[st.trial_epoch + 1 :])
        saved = {m: list(v) for m, v in st.noise.items()}
        self._add_noise(trial)  # this trial's twin counts, but is pooled once, at its end
        noise = {m: self.noise(m) for m in PLATEAU}
        st.noise = saved
        q = cfg.patience - cfg.patience // 2
        hurt, unclear, parts = [], [], []
        for m in PLATEAU:
            diffs = [_worse(m, rec.get(m), rec.get(TWIN_PREFIX + m)) for rec in trial[-q:]]
            diffs = [d for d in diffs if math.isfinite(d)]
            if not diffs:
                continue
            cost = statistics.fmean(diffs)
            limit = cfg.noise_z * noise[m]
            parts.append(f"{m} {cost:+.3g} (limit {limit:.3g})")
            if not cost <= limit:  # NaN noise: not known to be free
                hurt.append(m)
            elif cost > (cfg.noise_z - 1) * noise[m]:
                unclear.append(m)
        why = ", ".join(parts) or "no criterion metric recorded"
        if hurt:
            return "hurt", f"{'/'.join(hurt)} worse than the twin's: {why}"
        return ("unclear" if unclear else "free"), why

    def _add_noise(self, trial: list[Mapping[str, Any]]) -> None:
        """Pool the twin's epoch-to-epoch noise of each metric over this trial: first
        differences with their mean removed (a slow trend goes; independent noise of
        sd s gives differences of sd s * sqrt 2); a single difference counts as it is
        (a trial of two epochs)."""
        for m in PLATEAU:
            vals = [r.get(TWIN_PREFIX + m) for r in trial]
            vals = [float(v) for v in vals if v is not None and math.isfinite(v)]
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
