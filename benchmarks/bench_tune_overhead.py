"""Overhead of the engine inside Ray Tune with MLflow logging, against the plain loop.

Same data, config, seed and epochs, one torch thread each, measured in one run:
1. the plain engine loop (``Trainer``), wall time per epoch, run before the first
   Tune set-up and after each one: every set-up is compared with the mean of the
   plain runs just before and just after it (a shared machine drifts by several
   percent within minutes; the plain runs' spread is printed);
2. one ALD trial under Ray Tune (1 CPU), in set-ups that add one cost at a time:
   ``tune``: ``tune.report`` every epoch, no MLflow, no checkpoint but the last;
   ``+mlflow``: plus MLflow on SQLite (metrics every epoch, image grids every
   ``eval.image_every`` epochs, sent at the end only, as no checkpoint comes before);
   ``+checkpoints``: plus a ``tune.Checkpoint`` every ``tune.checkpoint_every`` epochs,
   each after an MLflow send (the default set-up, what ``ald-tune ald`` runs);
   ``+checkpoints/2``: half as often.

The per-epoch wall time of a trial is the interval between its reports (the
``reported_at`` field), not Tune's ``time_this_iter_s``: a function trainable waits at
each ``tune.report`` until the driver has processed the result and asks for the next
one, and ``time_this_iter_s`` leaves that wait out. Both are printed. Prints
each set-up's extra wall time per epoch (target for the default: at most 5%), and the
one-off start-up cost of the sweep (Ray start, trial launch), reported separately.

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
    # Epoch 0 carries one-off costs (first batches, caches) in both loops: left out
    # (the intervals between reports start at epoch 1 already).
    plains = [statistics.fmean(timed_epochs(Trainer(cfg))[1:])]
    start_ray()
    cycle, in_trial, walls = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, tracking, every in setups:
            t0 = time.perf_counter()
            result = run_sweep(cfg.replace(tune={"checkpoint_every": every}),
                               SweepOptions(mode="ald", run_dir=tmp, verbose=False,
                                            tracking=tracking,
                                            label=label.strip("+").replace("/", "-")))
            walls[label] = time.perf_counter() - t0
            history = result.trials[0]["history"]
            stamps = [h["reported_at"] for h in history]
            cycle[label] = [b - a for a, b in zip(stamps, stamps[1:])]
            in_trial[label] = [h["time_this_iter_s"] for h in history]
            plains.append(statistics.fmean(timed_epochs(Trainer(cfg))[1:]))
    ray.shutdown()
    print(f"{cfg.train.epochs} epochs; plain loop, before the first set-up and after each: "
          + " / ".join(f"{p * 1e3:.1f}" for p in plains) + " ms/epoch "
          f"(spread {max(plains) / min(plains) - 1:.1%})")
    print("per epoch: wall = interval between the trial's reports (what a user waits); "
          "in-trial = Tune's time_this_iter_s (leaves out the wait at tune.report)")
    extra = {}
    for i, (label, _, every) in enumerate(setups):
        plain = (plains[i] + plains[i + 1]) / 2
        b = statistics.fmean(cycle[label])
        inside = statistics.fmean(in_trial[label][1:])
        extra[label] = b / plain - 1
        ck = "final only" if every == NEVER else f"every {every} epochs"
        print(f"{label:15s} (checkpoints {ck:15s}): wall {b * 1e3:7.1f} ms/epoch vs plain "
              f"{plain * 1e3:6.1f}, extra {extra[label]:+6.1%}, {(b - plain) * 1e3:+6.1f} ms; "
              f"in-trial {inside * 1e3:7.1f} ms ({inside / plain - 1:+6.1%}); "
              f"sweep wall {walls[label]:.1f} s")
    print(f"extra wall time per epoch, default set-up: {extra['+checkpoints']:+.1%} "
          f"(target <= +5%)")
    print(f"one-off: plain run {plains[0] * cfg.train.epochs:.1f} s of epochs; the sweep walls "
          f"above add Ray start-up, trial launch and the final artifacts")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
