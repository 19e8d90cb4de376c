"""ALD's cost against the fixed-size run and against the grid, measured side by side.

Prints, from one run on this machine, for each ALD rule (``paper`` and ``ald-tune``):
1. ALD wall time against a fixed-n_z run (n_z = ALD's start) of the same epochs, both
   plain loops in this process, alternated (target: at most 1.10);
2. ALD compute (CPU-seconds, one ALD trial) against the whole grid's compute, both as Ray
   Tune sweeps (target: close to 1/G for a grid of G trials: n_z values x grid seeds);
3. the same against grid + ASHA.

Usage: python benchmarks/bench_compare.py [--space FILE] [--preset P] [--set k=v ...]
"""

from __future__ import annotations

import tempfile

from _common import parse, start_ray, timed_epochs

RULES = ("paper", "ald-tune")


def main(argv=None) -> int:
    args = parse(__doc__, argv)
    import ray

    from ald_tune.config.schema import load_config
    from ald_tune.engine.trainer import Trainer
    from ald_tune.report.build import build_report
    from ald_tune.sweeps.tuner import SweepOptions
    from ald_tune.tracking.sweep import run_sweep

    cfg = load_config(
        args.space, args.preset, ["tune.num_samples=1", "train.threads=1", *args.overrides]
    )
    walls: dict[str, list[float]] = {r: [] for r in (*RULES, "fixed")}
    for _ in range(2):  # alternate, so drift on a shared machine hits all alike
        for rule in RULES:
            walls[rule].append(sum(timed_epochs(Trainer(cfg.replace(ald={"rule": rule})))))
        walls["fixed"].append(sum(timed_epochs(Trainer(cfg, fixed_n_z=cfg.ald.n_z_init))))
    fix_w = min(walls["fixed"])
    for rule in RULES:
        w = min(walls[rule])
        print(
            f"1. wall time, {cfg.train.epochs} epochs: ALD ({rule}) {w:.1f} s, fixed "
            f"n_z={cfg.ald.n_z_init} {fix_w:.1f} s; ratio {w / fix_w:.3f} (target <= 1.10)"
        )
    start_ray()
    with tempfile.TemporaryDirectory() as tmp:
        sweeps = {}
        for label, mode, c in (
            ("grid", "grid", cfg),
            ("asha", "grid", cfg.replace(tune={"scheduler": "asha"})),
            *((r, "ald", cfg.replace(ald={"rule": r})) for r in RULES),
        ):
            sweeps[label] = run_sweep(
                c,
                SweepOptions(
                    mode=mode,
                    run_dir=tmp,
                    tracking=False,
                    verbose=False,
                    label=label.replace("-", ""),
                ),
            )
    ray.shutdown()
    g = len(cfg.grid.n_z) * cfg.tune.grid_seeds
    for rule in RULES:
        cost = build_report(sweeps["grid"].trials, sweeps[rule].trials, asha=sweeps["asha"].trials)[
            "cost"
        ]
        for i, base in enumerate(("grid", "asha"), start=2):
            share = cost["ald"]["cpu_s"] / cost[base]["cpu_s"]
            print(
                f"{i}. compute: ALD ({rule}) {cost['ald']['cpu_s']:.1f} CPU-s vs {base} "
                f"{cost[base]['cpu_s']:.1f} CPU-s = {share:.3f} (1/G = {1 / g:.3f}, G = {g}); "
                f"trial-epochs {cost['ald']['trial_epochs']} vs {cost[base]['trial_epochs']}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
