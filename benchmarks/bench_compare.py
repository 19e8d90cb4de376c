"""ALD's cost against the fixed-size run and against the grid, measured side by side.

Prints, from one run on this machine:
1. ALD wall time against a fixed-n_z run (n_z = ALD's start) of the same epochs, both
   plain loops in this process, alternated (target: at most 1.10);
2. ALD compute (CPU-seconds, one ALD trial) against the whole grid's compute, both as Ray
   Tune sweeps (target: close to 1/G for a grid of G values);
3. the same against grid + ASHA.

Usage: python benchmarks/bench_compare.py [--space FILE] [--preset P] [--set k=v ...]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def timed(trainer) -> float:
    t0 = time.perf_counter()
    for _ in trainer:
        pass
    return time.perf_counter() - t0


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
    from ald_tune.report import build_report
    from ald_tune.tuners import SweepOptions, run_sweep

    cfg = load_config(args.space, args.preset, ["tune.num_samples=1", "train.threads=1",
                                                *args.overrides])
    torch.set_num_threads(1)
    walls = {"ald": [], "fixed": []}
    for _ in range(2):  # alternate, so drift on a shared machine hits both alike
        walls["ald"].append(timed(Trainer(cfg)))
        walls["fixed"].append(timed(Trainer(cfg, fixed_n_z=cfg.ald.n_z_init)))
    ald_w, fix_w = min(walls["ald"]), min(walls["fixed"])
    print(f"1. wall time, {cfg.train.epochs} epochs: ALD {ald_w:.1f} s, fixed n_z={cfg.ald.n_z_init} "
          f"{fix_w:.1f} s; ratio {ald_w / fix_w:.3f} (target <= 1.10)")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as tmp:
        sweeps = {}
        for label, mode, c in (("grid", "grid", cfg), ("ald", "ald", cfg),
                               ("asha", "grid", cfg.replace(tune={"scheduler": "asha"}))):
            sweeps[label] = run_sweep(c, SweepOptions(mode=mode, run_dir=tmp, tracking=False,
                                                      verbose=False, label=label))
    ray.shutdown()
    rep = build_report(sweeps["grid"].trials, sweeps["ald"].trials, asha=sweeps["asha"].trials,
                       wall={k: v.wall_time_s for k, v in sweeps.items()})
    cost = rep["cost"]
    g = len(cfg.grid.n_z)
    for base in ("grid", "asha"):
        share = cost["ald"]["cpu_s"] / cost[base]["cpu_s"]
        print(f"{2 if base == 'grid' else 3}. compute: ALD {cost['ald']['cpu_s']:.1f} CPU-s vs "
              f"{base} {cost[base]['cpu_s']:.1f} CPU-s = {share:.3f} (1/G = {1 / g:.3f}); "
              f"trial-epochs {cost['ald']['trial_epochs']} vs {cost[base]['trial_epochs']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
