"""Overhead of the engine inside Ray Tune with MLflow logging, against the plain loop.

Same data, config, seed and epochs, one torch thread each, measured in one run:
1. the plain engine loop (``Trainer``), wall time per epoch, before and after the
   Tune runs (a shared machine's drift shows as their gap);
2. one ALD trial under Ray Tune (1 CPU), in set-ups that add one cost at a time:
   ``tune``: ``tune.report`` every epoch, no MLflow, no checkpoint but the last;
   ``+mlflow``: plus MLflow on SQLite (metrics every epoch, image grids every
   ``eval.image_every`` epochs, sent every ``tune.checkpoint_every`` epochs);
   ``+checkpoints``: plus a ``tune.Checkpoint`` every ``tune.checkpoint_every`` epochs
   (the default set-up, what ``ald-tune ald`` runs); ``+checkpoints/2``: half as often.

The per-epoch wall time of a trial is the interval between its results arriving at
the driver (a Tune callback), not Tune's ``time_this_iter_s``: a function trainable
waits at each ``tune.report`` until the driver has processed the result and asks for
the next one, and ``time_this_iter_s`` leaves that wait out. Both are printed. Prints
each set-up's extra wall time per epoch (target for the default: at most 5%), and the
one-off start-up cost of the sweep (Ray start, trial launch), reported separately.

Usage: python benchmarks/bench_tune_overhead.py [--space FILE] [--preset P] [--set k=v ...]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import defaultdict

from _common import parse, start_ray, timed_epochs

NEVER = 10 ** 6  # tune.checkpoint_every past the last epoch: only the final checkpoint


def arrival_callback():
    """A Tune callback recording when each trial's results reach the driver."""
    from ray import tune

    class Arrivals(tune.Callback):
        # Class-level: the tuner may copy its callbacks; the driver's process is this one.
        times: dict = defaultdict(list)

        def on_trial_result(self, iteration, trials, trial, result, **info):
            Arrivals.times[trial.trial_id].append(time.perf_counter())

    return Arrivals


def main(argv=None) -> int:
    args = parse(__doc__, argv)
    import ray

    from ald_tune.config import load_config
    from ald_tune.loop import Trainer
    from ald_tune.tuners import SweepOptions, run_sweep

    cfg = load_config(args.space, args.preset, ["tune.num_samples=1", "tune.cpus_per_trial=1",
                                                "train.threads=1", *args.overrides])
    every = cfg.tune.checkpoint_every
    setups = (("tune", False, NEVER), ("+mlflow", True, NEVER), ("+checkpoints", True, every),
              ("+checkpoints/2", True, 2 * every))
    before = timed_epochs(Trainer(cfg))
    start_ray()
    arrivals = arrival_callback()
    cycle, in_trial, walls = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, tracking, every in setups:
            arrivals.times.clear()
            t0 = time.perf_counter()
            result = run_sweep(cfg.replace(tune={"checkpoint_every": every}),
                               SweepOptions(mode="ald", run_dir=tmp, verbose=False,
                                            tracking=tracking, callbacks=(arrivals(),),
                                            label=label.strip("+").replace("/", "-")))
            walls[label] = time.perf_counter() - t0
            (stamps,) = arrivals.times.values()
            cycle[label] = [b - a for a, b in zip(stamps, stamps[1:])]
            in_trial[label] = [h["time_this_iter_s"] for h in result.trials[0]["history"]]
    ray.shutdown()
    after = timed_epochs(Trainer(cfg))
    # Epoch 0 carries one-off costs (first batches, caches) in both loops: left out
    # (the arrival intervals start at epoch 1 already).
    a1, a2 = statistics.fmean(before[1:]), statistics.fmean(after[1:])
    plain = (a1 + a2) / 2
    print(f"{len(before)} epochs; plain loop before / after the Tune runs: {a1 * 1e3:.1f} / "
          f"{a2 * 1e3:.1f} ms/epoch (mean {plain * 1e3:.1f})")
    print("per epoch: wall = interval between results at the driver (what a user waits); "
          "in-trial = Tune's time_this_iter_s (leaves out the wait at tune.report)")
    for label, _, every in setups:
        b = statistics.fmean(cycle[label])
        inside = statistics.fmean(in_trial[label][1:])
        ck = "final only" if every == NEVER else f"every {every} epochs"
        print(f"{label:15s} (checkpoints {ck:15s}): wall {b * 1e3:7.1f} ms/epoch, "
              f"extra {b / plain - 1:+6.1%}, {(b - plain) * 1e3:+6.1f} ms; in-trial "
              f"{inside * 1e3:7.1f} ms ({inside / plain - 1:+6.1%}); sweep wall {walls[label]:.1f} s")
    b = statistics.fmean(cycle["+checkpoints"])
    print(f"extra wall time per epoch, default set-up: {b / plain - 1:+.1%} (target <= +5%)")
    print(f"one-off: plain run {sum(before):.1f} s; the sweep walls above add Ray start-up, "
          f"trial launch and the final artifacts")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
