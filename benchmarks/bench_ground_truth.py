"""ALD's n_z against a known answer: the ``manifold`` dataset of intrinsic dimension d.

For each d (default 3, 6 and 10; D = 64 from the space), runs the grid and the ALD sweep
(``tune.num_samples`` seeds, the space's rule) as Ray Tune sweeps in this process, then
prints per d: each seed's n_z, how many lie within [d, d + 2], the grid's best region
(docs/comparison.md) and how many seeds lie in it; last, whether the goal holds (every
seed within [d, d + 2] and inside the grid's best region).

Usage: python benchmarks/bench_ground_truth.py [--dims 3,6,10] [--space FILE] [--set k=v ...]
"""

from __future__ import annotations

import sys
import tempfile
import time

from _common import parse, start_ray


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    dims = [3, 6, 10]
    if "--dims" in argv:
        i = argv.index("--dims")
        dims = [int(d) for d in argv[i + 1].split(",")]
        del argv[i : i + 2]
    if "--space" not in argv:
        argv = ["--space", "search_spaces/manifold.yaml", *argv]
    args = parse(__doc__, argv)
    import ray

    from ald_tune.config.schema import load_config
    from ald_tune.report.build import build_report
    from ald_tune.sweeps.run import run_sweep
    from ald_tune.sweeps.tuner import SweepOptions

    start_ray()
    met = True
    with tempfile.TemporaryDirectory() as tmp:
        for d in dims:
            cfg = load_config(args.space, args.preset, [f"data.intrinsic_dim={d}", *args.overrides])
            t0 = time.perf_counter()
            sweeps = {
                mode: run_sweep(
                    cfg,
                    SweepOptions(mode=mode, run_dir=tmp, verbose=False, label=f"{mode}{d}"),
                    tracking=None,
                )
                for mode in ("grid", "ald")
            }
            rep = build_report(
                sweeps["grid"].trials, sweeps["ald"].trials, rule=cfg.ald.rule, dataset="manifold"
            )
            seeds = rep.ald.seeds
            n_z = [s.n_z for s in seeds]
            near = sum(d <= n <= d + 2 for n in n_z)
            inside = sum(bool(s.in_region) for s in seeds)
            region = rep.criterion.best_region
            span = f"[{region[0]}..{region[-1]}]" if region else "none"
            met &= near == len(n_z) and inside == len(n_z)
            print(
                f"d={d}, D={cfg.data.ambient_dim}: ALD ({cfg.ald.rule}) n_z per seed {n_z}; "
                f"within [d, d+2]: {near}/{len(n_z)}; grid best region {span} "
                f"(plateau edge {rep.criterion.plateau_edge}); in region: "
                f"{inside}/{len(n_z)}; {time.perf_counter() - t0:.0f} s",
                flush=True,
            )
    ray.shutdown()
    verdict = "met" if met else "NOT met"
    print(f"goal (every seed within [d, d+2] and in the grid's best region): {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
