"""The ``paper`` rule: the authors' rule, as their code runs it (ALD-VAE, arXiv 2312.06280).

1. A decision is made every ``patience`` epochs since the last decision (never at
   epoch 0).
2. Once the history holds ``window`` epochs: if the mean silhouette of the last
   ``window/2`` epochs exceeds the mean of the ``window/2`` before, the step drops from
   ``n_remove`` to ``fine_step`` (once, for good).
3. Only after that switch, the stop test: the least-squares slope of every voting metric
   over the ``window - 1`` epochs before the current one must point in its vote's
   direction (paper: silhouette, both FIDs and the reconstruction loss all rising). Then
   pruning stops for good.
4. Otherwise n_z drops by the step, never below ``n_z_min``.

Votes on a metric the run does not record (FID for feature vectors) are left out: the
rule votes on the metrics that exist (:func:`voting`).

NaN policy: a non-finite metric value (an undefined silhouette, a failed FID) is left out
of means and slope fits. A half-window with no finite silhouette cannot switch the step;
a voting metric with fewer than three finite points in the window votes "no", so the run
keeps pruning rather than stopping on missing evidence. Non-finite *losses* never reach
the controller: the trainer fails the run first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ald_tune.engine.rules.base import (
    Decision,
    History,
    Probe,
    RuleController,
    RuleState,
    finite_mean,
    select_units,
    slope,
)


@dataclass
class PaperState(RuleState):
    step: int = 5
    switched: bool = False


class PaperRule(RuleController):
    """The authors' rule (see the module docstring).

    Example:
        >>> from ald_tune.config.sections import ALDConfig
        >>> ctl = PaperRule(ALDConfig(rule="paper"))
        >>> hist = [{"silhouette": 0.1, "fid_gen": 1, "fid_recon": 1, "recon_loss": 1}] * 6
        >>> ctl.decide(hist, n_z=64, unit_kl=[1.0] * 64).units
        (59, 60, 61, 62, 63)
    """

    rule = "paper"
    State = PaperState

    def __init__(self, cfg, epochs: int | None = None) -> None:
        super().__init__(cfg, epochs)
        self.state = PaperState(step=cfg.n_remove)

    def _decide(
        self,
        history: History,
        n_z: int,
        unit_kl: Sequence[float] | None,
        probe: Probe | None,
        twin_kl: Sequence[float] | None = None,
    ) -> Decision:
        cfg, st = self.cfg, self.state
        epoch = len(history) - 1
        if epoch <= 0 or epoch - st.last_decision < cfg.patience:
            return Decision(reason=f"waiting ({epoch - st.last_decision}/{cfg.patience} epochs)")
        st.last_decision = epoch
        switched_now = False
        if not st.switched and len(history) >= cfg.window and self._silhouette_rising(history):
            # Authors: once the silhouette rises, only 1-unit steps follow (and the stop test).
            st.switched, st.step, switched_now = True, cfg.fine_step, True
        if st.switched:
            votes = self._votes(history)
            if votes and all(votes.values()):
                st.stopped, st.stop_epoch = True, epoch
                end = cfg.n_epochs_after_stop == 0
                return Decision(stop=True, end_run=end, reason="stop: slopes " + _fmt_votes(votes))
        return self._prune(n_z, unit_kl, switched_now)

    def _silhouette_rising(self, history: History) -> bool:
        half = self.cfg.window // 2
        sil = [h.get("silhouette", math.nan) for h in history]
        recent, before = finite_mean(sil[-half:]), finite_mean(sil[-2 * half : -half])
        return math.isfinite(recent) and math.isfinite(before) and recent > before

    def _votes(self, history: History) -> dict[str, bool]:
        # Authors: slopes over all_data[metric][-window:-1], the window-1 epochs before now.
        span = history[-self.cfg.window : -1]
        out: dict[str, bool] = {}
        for metric, direction in voting(self.cfg.votes, history):
            s = slope([h.get(metric, math.nan) for h in span])
            out[metric] = (s > 0 if direction == "up" else s < 0) if math.isfinite(s) else False
        return out

    def _prune(self, n_z: int, unit_kl: Sequence[float] | None, switched_now: bool) -> Decision:
        cfg, st = self.cfg, self.state
        k = min(st.step, n_z - cfg.n_z_min)
        prefix = "switch to fine steps; " if switched_now else ""
        if k <= 0:
            self._warn_floor(n_z)
            return Decision(reason=prefix + f"at n_z_min={cfg.n_z_min}, nothing to remove")
        units = select_units(n_z, k, cfg.unit_selection, unit_kl)
        if n_z - k <= cfg.n_z_min:
            self._warn_floor(n_z - k)
        why = "stop test not met" if st.switched else "silhouette not rising yet"
        return Decision(units=units, reason=prefix + f"remove {k} ({why})")


def voting(votes: Sequence[tuple[str, str]], history: History) -> list[tuple[str, str]]:
    """The votes on metrics the run records: a metric no epoch holds (FID for feature
    vectors, which have no images) does not vote. A metric recorded as NaN still votes
    (and votes "no")."""
    return [(m, d) for m, d in votes if any(m in h for h in history)]


def _fmt_votes(votes: Mapping[str, bool]) -> str:
    return ", ".join(f"{m} {'ok' if v else 'no'}" for m, v in votes.items())
