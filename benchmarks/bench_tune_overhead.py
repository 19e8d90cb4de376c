"""Overhead of the engine inside Ray Tune with MLflow logging, against the plain loop.

Same data, config, seed and epochs, one torch thread each, measured in one run:
1. the plain engine loop (``Trainer``), wall time per epoch, before and after the
   Tune runs (a shared machine's drift shows as their gap);
2. one ALD trial under Ray Tune (1 CPU), wall time per epoch as Tune measures it
   (``time_this_iter_s``), in three set-ups that add one cost at a time:
   ``tune``: ``tune.report`` every epoch, no MLflow, no checkpoint but the last;
   ``+mlflow``: plus MLflow on SQLite (metrics every epoch, image grids every
   ``eval.image_every`` epochs, sent every ``tune.checkpoint_every`` epochs);
   ``+checkpoints``: plus a ``tune.Checkpoint`` every ``tune.checkpoint_every`` epochs
   (the default set-up, what ``ald-tune ald`` runs); ``+checkpoints/2``: half as often.
Prints each one's extra wall time per epoch (target for the default: at most 5%), and
the one-off start-up cost of the sweep (Ray start, trial launch), reported separately.

Usage: python benchmarks/bench_tune_overhead.py [--space FILE] [--preset P] [--set k=v ...]
"""

from __future__ import annotations

import statistics
import tempfile
import time

from _common import parse, start_ray, timed_epochs

NEVER = 10 ** 6  # tune.checkpoint_every past the last epoch: only the final checkpoint


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
    tune_epochs, walls = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, tracking, every in setups:
            t0 = time.perf_counter()
            result = run_sweep(cfg.replace(tune={"checkpoint_every": every}),
                               SweepOptions(mode="ald", run_dir=tmp, verbose=False,
                                            tracking=tracking,
                                            label=label.strip("+").replace("/", "-")))
            walls[label] = time.perf_counter() - t0
            tune_epochs[label] = [h["time_this_iter_s"] for h in result.trials[0]["history"]]
    ray.shutdown()
    after = timed_epochs(Trainer(cfg))
    # Epoch 0 carries one-off costs (first batches, caches) in both loops: left out.
    a1, a2 = statistics.fmean(before[1:]), statistics.fmean(after[1:])
    plain = (a1 + a2) / 2
    print(f"{len(before)} epochs; plain loop before / after the Tune runs: {a1 * 1e3:.1f} / "
          f"{a2 * 1e3:.1f} ms/epoch (mean {plain * 1e3:.1f})")
    for label, _, every in setups:
        b = statistics.fmean(tune_epochs[label][1:])
        ck = "final only" if every == NEVER else f"every {every} epochs"
        print(f"{label:15s} (checkpoints {ck:15s}): {b * 1e3:7.1f} ms/epoch, "
              f"extra {b / plain - 1:+6.1%}, {(b - plain) * 1e3:+6.1f} ms; "
              f"sweep wall {walls[label]:.1f} s")
    b = statistics.fmean(tune_epochs["+checkpoints"][1:])
    print(f"extra wall time per epoch, default set-up: {b / plain - 1:+.1%} (target <= +5%)")
    print(f"one-off: plain run {sum(before):.1f} s; the sweep walls above add Ray start-up, "
          f"trial launch and the final artifacts")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
