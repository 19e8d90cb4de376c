"""What a sweep spends besides training, measured side by side in one run.

Prints, on this machine:
1. the training epoch with torch's fused Adam (what ald-tune builds) against the
   per-parameter loop (torch's CPU default), one process, alternated;
2. the wall time of one grid sweep (Ray Tune, MLflow on SQLite) with trial actors
   reused (``tune.reuse_actors``, the default) against a new worker process per trial,
   alternated: each new process imports torch, torchmetrics and MLflow before its
   first epoch.

Usage: python benchmarks/bench_sweeps.py [--space FILE] [--preset P] [--set k=v ...]
       [--rounds N]
"""

from __future__ import annotations

import tempfile
import time

from _common import parse, start_ray


def epoch_ms(trainer, fused: bool, n: int = 5) -> float:
    """Fastest of ``n`` training epochs (ms) with a fresh Adam, fused or not."""
    import torch

    cfg = trainer.cfg.train
    trainer.optimizer = torch.optim.Adam(
        trainer.model.parameters(), lr=cfg.lr, amsgrad=cfg.amsgrad, fused=fused
    )
    times = []
    for e in range(n):
        t0 = time.perf_counter()
        order = torch.randperm(len(trainer.train_x), generator=trainer.batches)
        trainer._train_one_epoch(e, trainer.model, trainer.optimizer, order.to(trainer.device))
        times.append(time.perf_counter() - t0)
    return 1000 * min(times)


def main(argv=None) -> int:
    args = parse(__doc__, argv, rounds=2)
    import ray

    from ald_tune.config.schema import load_config
    from ald_tune.engine.trainer import Trainer
    from ald_tune.sweeps.run import run_sweep
    from ald_tune.sweeps.tuner import SweepOptions

    cfg = load_config(args.space, args.preset, ["train.threads=1", *args.overrides])
    trainer = Trainer(cfg, fixed_n_z=max(cfg.grid.n_z))
    ms: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(3 * args.rounds):
        for fused in (True, False):
            ms[fused].append(epoch_ms(trainer, fused))
    f, loop = min(ms[True]), min(ms[False])
    print(
        f"1. training epoch (n_z={trainer.model.n_z}): fused Adam {f:.1f} ms, per-parameter "
        f"loop {loop:.1f} ms; ratio {f / loop:.3f}"
    )
    start_ray()
    walls: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for reuse in (True, False):
                t0 = time.perf_counter()
                run_sweep(
                    cfg.replace(tune={"reuse_actors": reuse}),
                    SweepOptions(
                        mode="grid", run_dir=tmp, verbose=False, label=f"r{r}{int(reuse)}"
                    ),
                )
                walls[reuse].append(time.perf_counter() - t0)
    ray.shutdown()
    n = len(cfg.grid.n_z) * cfg.tune.grid_seeds
    on, off = min(walls[True]), min(walls[False])
    print(
        f"2. grid sweep ({n} trials x {cfg.train.epochs} epochs, tracked): actors reused "
        f"{on:.1f} s, a new process per trial {off:.1f} s; ratio {on / off:.3f} "
        f"(rounds: {', '.join(f'{a:.0f}/{b:.0f}' for a, b in zip(walls[True], walls[False]))})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
