"""ALD's cost against the fixed-size run and against the grid, measured side by side.

Prints, from one run on this machine, for each ALD rule (``paper`` and ``ald-tune``):
1. ALD wall time per epoch against a fixed-n_z run's (n_z = ALD's start), both plain
   loops in this process, alternated (target: at most 1.10);
2. ALD compute (CPU-seconds, one ALD trial) against the whole grid's compute, both as Ray
   Tune sweeps (target: close to 1/G for a grid of G trials: n_z values x grid seeds);
3. the same against grid + ASHA;
4. the answer-sooner targets (docs/comparison.md, "Compute to the answer"), with an
   ``ald-tune`` sweep that ends ``--after-stop`` epochs after its stop (the early end):
   ALD compute to the answer / one fixed run (target <= 0.40); ALD early end total
   compute / grid + ASHA total (<= 0.20); ALD early end wall time to the answer / one
   fixed run's (<= 0.60); seeds in the grid's best region (full and early end); each
   seed's final model against the fixed run at its n_z (run here when off the grid),
   within the criterion's tolerance, and the early end's final metrics
   against the full-length run's and the grid optimum's.

"One fixed run" is the mean over the grid's trials (same epochs, one n_z each).

Usage: python benchmarks/bench_compare.py [--space FILE] [--preset P] [--set k=v ...]
       [--after-stop N] [--seeds S]
"""

from __future__ import annotations

import math
import sys
import tempfile

from _common import parse, start_ray, timed_epochs

RULES = ("paper", "ald-tune")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    after, seeds = 10, 1
    for flag in ("--after-stop", "--seeds"):
        if flag in argv:
            i = argv.index(flag)
            after, seeds = (
                (int(argv[i + 1]), seeds) if flag == "--after-stop" else (after, int(argv[i + 1]))
            )
            del argv[i : i + 2]
    args = parse(__doc__, argv)
    import ray

    from ald_tune.config.schema import load_config
    from ald_tune.engine.trainer import Trainer
    from ald_tune.report.build import build_report
    from ald_tune.sweeps.run import run_sweep
    from ald_tune.sweeps.tuner import SweepOptions

    cfg = load_config(
        args.space, args.preset, ["tune.num_samples=1", "train.threads=1", *args.overrides]
    )
    walls: dict[str, list[list[float]]] = {r: [] for r in (*RULES, "fixed")}
    for _ in range(2):  # alternate, so drift on a shared machine hits all alike
        for rule in RULES:
            walls[rule].append(timed_epochs(Trainer(cfg.replace(ald={"rule": rule}))))
        walls["fixed"].append(timed_epochs(Trainer(cfg, fixed_n_z=cfg.ald.n_z_init)))
    fix = min(walls["fixed"], key=sum)
    for rule in RULES:
        w = min(walls[rule], key=sum)  # a late stop may extend the run (ald.final_share)
        ratio = (sum(w) / len(w)) / (sum(fix) / len(fix))
        print(
            f"1. wall time per epoch: ALD ({rule}) {sum(w):.1f} s for {len(w)} epochs, fixed "
            f"n_z={cfg.ald.n_z_init} {sum(fix):.1f} s for {len(fix)}; ratio {ratio:.3f} "
            "(target <= 1.10)"
        )
    start_ray()
    with tempfile.TemporaryDirectory() as tmp:
        sweeps = {}
        for label, mode, c in (
            ("grid", "grid", cfg),
            ("asha", "grid", cfg.replace(tune={"scheduler": "asha"})),
            *((r, "ald", cfg.replace(ald={"rule": r})) for r in RULES),
            ("full", "ald", cfg.replace(ald={"rule": "ald-tune"}, tune={"num_samples": seeds})),
            (
                "early",
                "ald",
                cfg.replace(
                    ald={"rule": "ald-tune", "n_epochs_after_stop": after},
                    tune={"num_samples": seeds},
                ),
            ),
        ):
            sweeps[label] = run_sweep(
                c,
                SweepOptions(
                    mode=mode,
                    run_dir=tmp,
                    verbose=False,
                    label=label.replace("-", ""),
                ),
                tracking=None,
            )
        # fixed runs at the ALD n_z values off the grid (one seed each), as compare runs them
        off = sorted(
            {t.nz for k in ("full", "early") for t in sweeps[k].trials} - set(cfg.grid.n_z)
        )
        sweeps["fixed"] = (
            run_sweep(
                cfg.replace(grid={"n_z": off}, tune={"grid_seeds": 1}),
                SweepOptions(mode="grid", run_dir=tmp, verbose=False, label="fix"),
                tracking=None,
            )
            if off
            else None
        )
    ray.shutdown()
    g = len(cfg.grid.n_z) * cfg.tune.grid_seeds
    for rule in RULES:
        cost = build_report(
            sweeps["grid"].trials, sweeps[rule].trials, asha=sweeps["asha"].trials
        ).cost
        a = cost["ald"]
        for i, base in enumerate(("grid", "asha"), start=2):
            b = cost[base]
            share = (a.cpu_s or 0.0) / (b.cpu_s or math.nan)
            print(
                f"{i}. compute: ALD ({rule}) {a.cpu_s:.1f} CPU-s vs {base} "
                f"{b.cpu_s:.1f} CPU-s = {share:.3f} (1/G = {1 / g:.3f}, G = {g}); "
                f"trial-epochs {a.trial_epochs} vs {b.trial_epochs}"
            )
    answer_sooner(sweeps, after)
    return 0


def answer_sooner(sweeps: dict, after: int) -> None:
    """Section 4 of the module docstring, from the sweeps already run."""
    from ald_tune.report.build import build_report
    from ald_tune.report.numbers import mean, trial_cost

    grid, asha = sweeps["grid"].trials, sweeps["asha"].trials
    fixed = sweeps["fixed"].trials if sweeps["fixed"] else None
    reps = {
        k: build_report(grid, sweeps[k].trials, asha=asha, fixed=fixed, rule="ald-tune")
        for k in ("full", "early")
    }
    ald = {k: next(m for m in r.methods if m.method.startswith("ALD")) for k, r in reps.items()}
    done = [t for t in grid if t.finished]
    fixed_cpu = mean(trial_cost(t)[0] for t in done)
    fixed_wall = mean(t.time_s for t in done)
    early = reps["early"].cost
    asha_cpu = early["asha"].cpu_s or math.nan
    early_total = (early["ald"].cpu_s or math.nan) / early["ald"].n_trials
    ratios = (
        ("ALD compute to answer / one fixed run", _f(ald["full"].answer_cpu_s) / fixed_cpu, 0.40),
        (
            f"ALD (early end, +{after} epochs) total compute / grid + ASHA total",
            early_total / asha_cpu,
            0.20,
        ),
        (
            f"ALD (early end, +{after} epochs) wall to answer / one fixed run's wall",
            _f(ald["early"].answer_wall_s) / fixed_wall,
            0.60,
        ),
    )
    for name, value, target in ratios:
        verdict = "met" if value <= target else "NOT met"
        print(f"4. {name}: {value:.3f} (target <= {target:.2f}: {verdict})")
    for k, r in reps.items():
        seeds = r.ald.seeds
        gaps = [s.gap for s in seeds if s.gap]
        print(
            f"4. ALD ({k}): n_z {list(r.ald.n_z)}, answer at epoch "
            f"{[s.answer_epochs for s in seeds]}; in the best region "
            f"{list(r.criterion.best_region)}: {r.ald.n_in_region}/{len(seeds)}; final "
            f"model within tolerance of the fixed run at its n_z: "
            f"{sum(g.within for g in gaps)}/{len(gaps)} (control, two grid seeds at one "
            f"n_z: {r.ald.control_within}/{r.ald.control_pairs} pairs); gap "
            "(ALD - fixed; tolerance) "
            + "; ".join(
                ", ".join(
                    f"{m} {_f(x.gap):+.2f} ({_f(x.tolerance):.2f})" for m, x in g.metrics.items()
                )
                for g in gaps
            )
        )
    vs = {k: r.vs.metrics for k, r in reps.items()}
    for m in reps["full"].criterion.metrics:
        print(
            f"4. final {m}: early end {_f(vs['early'][m].ald):.3f}, full length "
            f"{_f(vs['full'][m].ald):.3f}, grid optimum {_f(vs['full'][m].grid_optimum):.3f}"
        )


def _f(v: float | None) -> float:
    """A report's number, NaN where the JSON holds none."""
    return math.nan if v is None else v


if __name__ == "__main__":
    raise SystemExit(main())
