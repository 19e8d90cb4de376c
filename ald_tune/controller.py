"""The ALD decision rule as a pure object: metric history in, a Decision out.

No torch here: a controller sees plain floats (one dict per finished epoch,
keys such as ``recon_loss``, ``fid_gen``, ``fid_recon``, ``silhouette``), the
current n_z and optionally each unit's mean KL, and returns a frozen
:class:`Decision`. Its small leftover state is a JSON dict behind
``state_dict()`` / ``load_state_dict()`` so a checkpoint restores it exactly.

The ``paper`` rule, as the authors' code runs it (ALD-VAE, arXiv 2312.06280):

1. A decision is made every ``patience`` epochs since the last decision
   (never at epoch 0).
2. Once the history holds ``window`` epochs: if the mean silhouette of the
   last ``window/2`` epochs exceeds the mean of the ``window/2`` before, the
   step drops from ``n_remove`` to ``fine_step`` (once, for good).
3. Only after that switch, the stop test: the least-squares slope of every
   voting metric over the ``window - 1`` epochs before the current one must
   point in its vote's direction (paper: silhouette, both FIDs and the
   reconstruction loss all rising). Then pruning stops for good.
4. Otherwise n_z drops by the step, never below ``n_z_min``. Training goes on
   to the last epoch, or ``n_epochs_after_stop`` epochs after the stop.

The ``ald-tune`` rule (``ALDConfig.rule = "ald-tune"``, see
:meth:`ALDController._decide_plateau`) looks at the units instead of the slopes:
dead units (mean KL below ``kl_dead``) go at once, keeping a reserve of at least
``reserve`` beyond those in use (KL >= ``kl_threshold``) for units still emerging;
when the number in use holds still for ``confirm`` decisions (and ``settle`` of the
epochs are done), pruning stops and the units not in use go too (if a probe of the
exact effect of zeroing them on the validation reconstruction allows).

NaN policy (paper rule): a non-finite metric value (an undefined silhouette, a failed
FID) is left out of means and slope fits. A half-window with no finite
silhouette cannot switch the step; a voting metric with fewer than three
finite points in the window votes "no", so the run keeps pruning rather than
stopping on missing evidence. Non-finite *losses* never reach the controller:
the training loop fails the run first.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping, Sequence

History = Sequence[Mapping[str, float]]
#: Given unit indices, the relative increase of the validation reconstruction loss when
#: each unit alone is set to 0 (what removing it does before any retraining).
Probe = Callable[[Sequence[int]], Sequence[float]]


class PruningFloorWarning(UserWarning):
    """n_z reached ``n_z_min`` before the stop rule fired."""


@dataclass(frozen=True)
class Decision:
    """What to do after one epoch.

    Attributes:
        units: indices of the latent units to remove now (may be empty).
        stop: pruning stopped at this epoch (n_z is final from here on).
        end_run: training ends after this epoch.
        reason: one human-readable line saying why.
    """

    units: tuple[int, ...] = ()
    stop: bool = False
    end_run: bool = False
    reason: str = ""

    @property
    def n_remove(self) -> int:
        return len(self.units)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["units"] = list(self.units)
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
        raise ValueError(f"unit_selection='lowest_kl' needs unit_kl of length n_z={n_z}, "
                         f"got {None if unit_kl is None else len(unit_kl)}.")
    # NaN KL sorts first: a unit whose KL is undefined carries no usable information.
    order = sorted(range(n_z), key=lambda i: (not math.isnan(unit_kl[i]),
                                              unit_kl[i] if not math.isnan(unit_kl[i]) else 0, i))
    return tuple(sorted(order[:k]))


class FixedController:
    """The grid baseline's controller: never prunes, never stops early."""

    rule = "fixed"

    def decide(self, history: History, n_z: int, unit_kl: Sequence[float] | None = None,
               probe: Probe | None = None) -> Decision:
        return Decision(reason=f"fixed n_z={n_z}")

    def state_dict(self) -> dict[str, Any]:
        return {"rule": self.rule}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("rule") != self.rule:
            raise ValueError(f"checkpoint holds a {state.get('rule')!r} controller, not 'fixed'.")


class ScriptedController:
    """For tests: removes ``script[epoch]`` units (or stops when it is 'stop')."""

    rule = "scripted"

    def __init__(self, script: Mapping[int, int | str], how: str = "last") -> None:
        self.script = {int(k): v for k, v in script.items()}
        self.how = how

    def decide(self, history: History, n_z: int, unit_kl: Sequence[float] | None = None,
               probe: Probe | None = None) -> Decision:
        action = self.script.get(len(history) - 1)
        if action == "stop":
            return Decision(stop=True, reason="scripted stop")
        if action:
            return Decision(units=select_units(n_z, min(int(action), n_z - 1), self.how, unit_kl),
                            reason=f"scripted removal of {action}")
        return Decision(reason="scripted wait")

    def state_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "script": {str(k): v for k, v in self.script.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.script = {int(k): v for k, v in state["script"].items()}


@dataclass
class _State:
    step: int
    switched: bool = False
    stopped: bool = False
    stop_epoch: int | None = None
    last_decision: int = 0
    floor_reached: bool = False
    in_use: int = -1   # ald-tune rule: units in use at the last decision
    stable: int = 0    # ald-tune rule: decisions in a row with that same count


class ALDController:
    """The adaptive latent-dimension rule (see the module docstring).

    Args:
        cfg: an :class:`ald_tune.config.ALDConfig` (or any object with its fields).

    Example:
        >>> from ald_tune.config import ALDConfig
        >>> ctl = ALDController(ALDConfig())
        >>> hist = [{"silhouette": 0.1, "fid_gen": 1, "fid_recon": 1, "recon_loss": 1}] * 6
        >>> ctl.decide(hist, n_z=64, unit_kl=[1.0] * 64).units
        (59, 60, 61, 62, 63)
    """

    def __init__(self, cfg: Any, epochs: int | None = None) -> None:
        self.cfg = cfg
        self.epochs = epochs  # the run's budget; None: unknown (the settle share is ignored)
        self.rule = cfg.rule
        self.state = _State(step=cfg.n_remove)

    @property
    def stopped(self) -> bool:
        return self.state.stopped

    @property
    def floor_reached(self) -> bool:
        return self.state.floor_reached

    def state_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, **asdict(self.state)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("rule") != self.rule:
            raise ValueError(f"checkpoint holds a {state.get('rule')!r} controller, "
                             f"this run uses {self.rule!r}.")
        self.state = _State(**{k: v for k, v in state.items() if k != "rule"})

    def decide(self, history: History, n_z: int, unit_kl: Sequence[float] | None = None,
               probe: Probe | None = None) -> Decision:
        """Decide after the last epoch in ``history`` (index = epoch, 0-based).

        Args:
            history: one metric dict per finished epoch.
            n_z: the current number of units.
            unit_kl: each unit's mean KL to the prior on validation data.
            probe: the removal cost of given units (``ald-tune`` rule only).
        """
        cfg, st = self.cfg, self.state
        epoch = len(history) - 1
        if st.stopped:
            return self._after_stop(epoch)
        if self.rule == "ald-tune":
            return self._decide_plateau(history, n_z, unit_kl, probe)
        if epoch <= 0 or epoch - st.last_decision < cfg.patience:
            return Decision(reason=f"waiting ({epoch - st.last_decision}/{cfg.patience} epochs)")
        st.last_decision = epoch
        switched_now = False
        if not st.switched and len(history) >= cfg.window and self._silhouette_rising(history):
            # Authors: once the silhouette rises, only 1-unit steps follow (and the stop test).
            st.switched, st.step, switched_now = True, cfg.fine_step, True
        if st.switched:
            votes = self._votes(history)
            if all(votes.values()):
                st.stopped, st.stop_epoch = True, epoch
                end = cfg.n_epochs_after_stop == 0
                return Decision(stop=True, end_run=end, reason="stop: slopes " + _fmt_votes(votes))
        return self._prune(n_z, unit_kl, switched_now)

    def _decide_plateau(self, history: History, n_z: int, unit_kl: Sequence[float] | None,
                        probe: Probe | None) -> Decision:
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
           ends before the count holds still does not keep its waiting units).
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
        st.stable = st.stable + 1 if in_use == st.in_use else 0
        st.in_use = in_use
        floor = max(in_use + cfg.margin, cfg.n_z_min)
        settled = self.epochs is None or epoch + 1 >= cfg.settle * self.epochs
        last = self.epochs is not None and epoch + cfg.patience >= self.epochs - 1
        if (st.stable >= cfg.confirm and settled) or last:
            units = select_units(n_z, n_z - floor, "lowest_kl", unit_kl)
            costs = [float(c) for c in probe(units)] if units and probe is not None else []
            kept, total = "", 0.0
            if costs and not sum(costs) <= cfg.max_recon_increase:  # NaN: not allowed either
                # Lowest KL first while the summed cost stays within the limit; the rest stay.
                by_kl = sorted(zip(units, costs), key=lambda uc: (not math.isnan(unit_kl[uc[0]]),
                                                                  unit_kl[uc[0]], uc[0]))
                chosen = []
                for u, c in by_kl:
                    if not total + c <= cfg.max_recon_increase:
                        break
                    chosen.append(u)
                    total += c
                kept = (f"; {len(units) - len(chosen)} kept (removing all costs "
                        f"{sum(costs):+.2%} recon)")
                units = tuple(sorted(chosen))
            st.stopped, st.stop_epoch = True, epoch
            spare = f", keep {floor - in_use} spare" if floor > in_use and units else ""
            why = (f"{in_use} units in use for {st.stable + 1} decisions in a row"
                   if st.stable >= cfg.confirm and settled else
                   f"the last decision of the run, {in_use} units in use")
            return Decision(units=units, stop=True, end_run=cfg.n_epochs_after_stop == 0,
                            reason=f"stop: {why}" + (f", remove {len(units)} collapsed" if units
                                                    else "") + spare + kept)
        alive = sum(1 for v in unit_kl if math.isfinite(v) and v >= cfg.kl_dead)
        keep = max(alive, in_use + cfg.reserve, cfg.n_z_min)
        if n_z <= keep:
            wait = "" if settled else f"; no stop before epoch {math.ceil(cfg.settle * self.epochs) - 1}"
            return Decision(reason=f"hold: {in_use} units in use "
                                   f"({st.stable + 1}/{cfg.confirm + 1} in a row{wait})")
        if keep == cfg.n_z_min and in_use + cfg.reserve < cfg.n_z_min:
            self._warn_floor(keep)
        units = select_units(n_z, n_z - keep, "lowest_kl", unit_kl)
        return Decision(units=units, reason=f"remove {len(units)} dead (KL < {cfg.kl_dead:g}); "
                                            f"{in_use} in use (KL >= {cfg.kl_threshold:g}), "
                                            f"{keep - in_use} waiting")

    def _after_stop(self, epoch: int) -> Decision:
        n_after = self.cfg.n_epochs_after_stop
        stop = self.state.stop_epoch if self.state.stop_epoch is not None else epoch
        done = n_after is not None and epoch - stop >= n_after
        why = f"pruning stopped at epoch {self.state.stop_epoch}"
        return Decision(end_run=done, reason=why + ("; run ends" if done else ""))

    def _silhouette_rising(self, history: History) -> bool:
        half = self.cfg.window // 2
        sil = [h.get("silhouette", math.nan) for h in history]
        recent, before = finite_mean(sil[-half:]), finite_mean(sil[-2 * half:-half])
        return math.isfinite(recent) and math.isfinite(before) and recent > before

    def _votes(self, history: History) -> dict[str, bool]:
        # Authors: slopes over all_data[metric][-window:-1], the window-1 epochs before now.
        span = history[-self.cfg.window:-1]
        out: dict[str, bool] = {}
        for metric, direction in self.cfg.votes:
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

    def _warn_floor(self, n_z: int) -> None:
        if not self.state.floor_reached:
            self.state.floor_reached = True
            warnings.warn(f"n_z reached n_z_min={self.cfg.n_z_min} (n_z={n_z}) before the stop "
                          "rule fired; the chosen size is the floor, not a finding. "
                          "Lower ald.n_z_min or use more epochs.", PruningFloorWarning,
                          stacklevel=3)


def _fmt_votes(votes: Mapping[str, bool]) -> str:
    return ", ".join(f"{m} {'ok' if v else 'no'}" for m, v in votes.items())


def make_controller(cfg: Any, fixed_n_z: int | None = None, epochs: int | None = None):
    """The controller a run needs: fixed for the grid, ALD otherwise (``epochs``: the run's
    budget, for the ``ald-tune`` rule's ``settle``)."""
    return FixedController() if fixed_n_z is not None else ALDController(cfg, epochs)
