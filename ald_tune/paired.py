"""A trial's trainer timed against a plain twin in the same process, for the overhead benchmark.

``benchmarks/bench_tune_overhead.py`` must tell a few percent of overhead from a
machine whose speed drifts by 10-30% within minutes (these 2-core machines are
shared; the plain loop's own CPU time drifts with its wall time, so it is the
hardware, not scheduling). Runs timed one after the other cannot resolve that.
:class:`PairedTrainer` interleaves instead: it is the trial's real trainer (its
epochs are reported, logged to MLflow and checkpointed as usual), and after every
block of ``block`` epochs its *twin*, a plain :class:`~ald_tune.loop.Trainer` with
the same config and seed that reports nothing, trains the same block. Both are
timed in the same process a few seconds apart, in the order trial-twin then
twin-trial, so the machine's drift cancels in their ratio.

Each keeps its own torch RNG state, so both follow the uninterrupted run's exact
path (same sizes, same cost per epoch). A trial block's time covers its epochs
and everything the trial did with them (MLflow, checkpoints, reports) until its
last report is through: the trainable drains its report-ahead thread before the
twin runs, so none of the trial's work lands in the twin's time, and each block
pays one report round trip (~10 ms) that a real trial would overlap with its next
epoch: the measured overhead errs high by about that much per block. The last
block is not timed (nothing is reported after it).

Records gain ``paired_trial_s``, ``paired_plain_s`` and ``paired_epochs``: the
previous block's times on the first record after it, zeros on the others; the
benchmark reads them from Tune's rows.
"""

from __future__ import annotations

import math
import time
from typing import Iterator

import torch

from .config import Config
from .loop import EpochResult, Trainer


class PairedTrainer(Trainer):
    """:class:`~ald_tune.loop.Trainer` plus an untimed-by-Tune plain twin (see module doc).

    Args:
        cfg: the run's configuration (the twin gets the same).
        fixed_n_z: as for :class:`~ald_tune.loop.Trainer`.
        block: epochs per block; default the least common multiple of
            ``eval.image_every`` and ``tune.checkpoint_every`` (when a checkpoint comes
            before the last epoch), so that every block holds its share of image
            grids and checkpoints.
    """

    def __init__(self, cfg: Config, *, fixed_n_z: int | None = None, block: int | None = None,
                 **kwargs) -> None:
        super().__init__(cfg, fixed_n_z=fixed_n_z, **kwargs)
        rng = torch.get_rng_state()
        self.twin = Trainer(cfg, fixed_n_z=fixed_n_z, splits=(self.train_data, self.val_data))
        self._rng = {"trial": rng, "twin": torch.get_rng_state()}
        ckpt = cfg.tune.checkpoint_every if cfg.tune.checkpoint_every < cfg.train.epochs else 1
        self.block = block or math.lcm(cfg.eval.image_every, ckpt)

    def _swap(self, leave: str, enter: str) -> None:
        self._rng[leave] = torch.get_rng_state()
        torch.set_rng_state(self._rng[enter])

    def pause_reports(self) -> None:
        """Wait for the report in flight; the trainable sets this to its ``ReportAhead.drain``."""

    def _twin_block(self) -> float:
        self._swap("trial", "twin")
        t0 = time.perf_counter()
        for _ in range(self.block):
            if not self.twin.done:
                self.twin.run_epoch()
        seconds = time.perf_counter() - t0
        self._swap("twin", "trial")
        return seconds

    def __iter__(self) -> Iterator[EpochResult]:
        # Every record has the keys (Tune's progress.csv keeps only its first row's keys).
        untimed = {"paired_trial_s": 0.0, "paired_plain_s": 0.0, "paired_epochs": 0.0}
        timed, pair = untimed, 0
        while not self.done:
            twin_first = pair % 2 == 1  # trial-twin, then twin-trial: a steady drift cancels
            plain_s = self._twin_block() if twin_first else 0.0
            t0 = time.perf_counter()
            for _ in range(self.block):
                result = self.run_epoch()
                result.record.update(timed)
                timed = untimed
                yield result  # the trial reports, logs and checkpoints it, then asks again
                if self.done:
                    return  # the last block is not timed: nothing is reported after it
            self.pause_reports()  # the report in flight is the trial's cost, not the twin's
            trial_s = time.perf_counter() - t0
            if not twin_first:
                plain_s = self._twin_block()
            timed = {"paired_trial_s": trial_s, "paired_plain_s": plain_s,
                     "paired_epochs": float(self.block)}
            pair += 1
