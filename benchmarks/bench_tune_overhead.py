"""Overhead of the engine inside Ray Tune with MLflow logging, against the plain loop.

Same data, config, seed and epochs, one torch thread each, measured in one run:
1. the plain engine loop (``Trainer``), wall time per epoch;
2. one ALD trial under Ray Tune (1 CPU) logging to MLflow on SQLite, wall time
   per epoch as Tune measures it (``time_this_iter_s``: train + eval + report +
   MLflow + checkpoint).
Prints the extra wall time per epoch (target: at most 5%), plus the one-off
start-up cost of the sweep (Ray start, trial launch), reported separately.

Usage: python benchmarks/bench_tune_overhead.py [--space FILE] [--set k=v ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default="search_spaces/digits.yaml")
    p.add_argument("--preset", default=None)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    args = p.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import ray
    import torch

    from ald_tune.config import load_config
    from ald_tune.loop import Trainer
    from ald_tune.tuners import SweepOptions, run_sweep

    cfg = load_config(args.space, args.preset, ["tune.num_samples=1", "tune.cpus_per_trial=1",
                                                "train.threads=1", *args.overrides])
    torch.set_num_threads(1)

    def plain_run():
        trainer, per_epoch = Trainer(cfg), []
        t0 = time.perf_counter()
        for _ in trainer:
            per_epoch.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
        return trainer, per_epoch

    # Plain runs before and after the Tune run: a shared machine's drift shows as their gap.
    plain, before = plain_run()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = run_sweep(cfg, SweepOptions(mode="ald", run_dir=tmp, verbose=False))
        sweep_wall = time.perf_counter() - t0
    ray.shutdown()
    _, after = plain_run()
    per_epoch = before
    hist = result.trials[0]["history"]
    tune_epoch = [h["time_this_iter_s"] for h in hist]
    a1, a2 = statistics.fmean(before[1:]), statistics.fmean(after[1:])
    a, b = (a1 + a2) / 2, statistics.fmean(tune_epoch[1:])
    print(f"plain loop before / after the Tune run: {a1 * 1e3:.1f} / {a2 * 1e3:.1f} ms/epoch")
    print(f"epochs {len(per_epoch)} (plain) / {len(tune_epoch)} (Tune); final n_z "
          f"{plain.model.n_z} (plain) / {result.trials[0]['final_n_z']} (Tune)")
    print(f"plain loop:          {a * 1e3:8.1f} ms/epoch (mean)")
    print(f"Ray Tune + MLflow:   {b * 1e3:8.1f} ms/epoch (mean)")
    print(f"extra wall time per epoch: {b / a - 1:+.1%} (target <= +5%)")
    print(f"one-off: sweep wall {sweep_wall:.1f} s vs plain run {sum(per_epoch):.1f} s "
          f"(Ray start-up, trial launch, final artifacts)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
