"""A trial's trainer timed against a plain twin in the same process, for the overhead benchmark.

``benchmarks/bench_tune_overhead.py`` must tell a few percent of overhead on a
machine whose speed drifts by 10-30% within seconds to minutes (these 2-core
machines are shared; the plain loop's own CPU time drifts with its wall time, so
it is the hardware, not scheduling). Runs timed one after the other cannot
resolve that, so :class:`PairedTrainer` interleaves: it is the trial's real
trainer (its epochs are reported, logged to MLflow and checkpointed as usual),
and after each of its epochs its *plain copy*, a plain :class:`~ald_tune.engine.trainer.Trainer`
with the same config and seed that reports nothing, trains the same epoch. The
two are timed a fraction of a second apart, so the drift cancels in their ratio.

One epoch's timeline::

    trial epoch k | wait for report k-1 | twin epoch k | (caller) MLflow, checkpoint, report k
    \\_____ trial, with report k-1 in flight _/ \\_ twin _/ \\______________ trial ______________/

Report k-1 is in flight during the trial's epoch k, as in a real trial (the
driver works on it meanwhile); the trial then waits until it is through (normally
long since), so no report overlaps the twin's epoch and none of the trial's work
lands in the twin's time. Each keeps its own torch RNG state, so both follow the
uninterrupted run's exact path (same sizes, same cost per epoch), and the trial's
checkpoints are spaced by its own time (:meth:`PairedTrainer.trial_clock`, the cadence's clock),
not by
the pair's.

Records gain ``paired_trial_s`` (epoch k, the wait, and epoch k-1's reporting
work) and ``paired_plain_s`` (the twin's epoch k), which the benchmark reads from
Tune's rows; the last epoch's reporting is not timed (nothing is reported after).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import replace

import torch

from ald_tune.config.schema import Config
from ald_tune.engine.callbacks import Cadence, Callback
from ald_tune.engine.trainer import EpochResult, Trainer


class PairedTrainer(Trainer):
    """:class:`~ald_tune.engine.trainer.Trainer` plus a plain twin timed beside it (see module doc).

    Args:
        cfg: the run's configuration (the twin gets the same).
        fixed_n_z: as for :class:`~ald_tune.engine.trainer.Trainer`.
    """

    def __init__(self, cfg: Config, *, fixed_n_z: int | None = None, **kwargs) -> None:
        super().__init__(cfg, fixed_n_z=fixed_n_z, **kwargs)
        rng = torch.get_rng_state()
        self.plain = Trainer(
            cfg,
            fixed_n_z=fixed_n_z,
            splits=(self.train_data, self.val_data),
            factory=kwargs.get("factory"),
        )
        self._rng = {"trial": rng, "plain": torch.get_rng_state()}
        self.plain_s = 0.0  # seconds spent in the twin's epochs so far

    def trial_clock(self) -> float:
        """``time.monotonic()`` less the twin's epochs: the trial's own time, so that
        ``tune.checkpoint_min_s`` spaces its checkpoints as in an unpaired trial."""
        return time.monotonic() - self.plain_s

    def fit(
        self,
        callbacks: Sequence[Callback] = (),
        cadence: Cadence | None = None,
        *,
        stop_on: tuple[type[BaseException], ...] = (),
    ) -> None:
        """As the trainer's, with checkpoints spaced by :meth:`trial_clock`."""
        cadence = replace(cadence or Cadence.from_config(self.cfg), clock=self.trial_clock)
        super().fit(callbacks, cadence, stop_on=stop_on)

    def _plain_epoch(self) -> float:
        self._rng["trial"] = torch.get_rng_state()
        torch.set_rng_state(self._rng["plain"])
        t0 = time.perf_counter()
        self.plain.run_epoch()
        seconds = time.perf_counter() - t0
        self.plain_s += seconds
        self._rng["plain"] = torch.get_rng_state()
        torch.set_rng_state(self._rng["trial"])
        return seconds

    def __iter__(self) -> Iterator[EpochResult]:
        reporting_s = 0.0  # the caller's work on the previous epoch
        while not self.done:
            t0 = time.perf_counter()
            result = self.run_epoch()
            self.callbacks.drain()  # no report in flight while the twin is timed
            trial_s = time.perf_counter() - t0 + reporting_s
            plain_s = self._plain_epoch()
            result.record.update(paired_trial_s=trial_s, paired_plain_s=plain_s)
            t1 = time.perf_counter()
            yield result  # the trial logs, checkpoints and submits its report, then asks again
            reporting_s = time.perf_counter() - t1
