"""ALD at the plateau's edge: the fidelity targets of the ``ald-tune`` rule, measured.

For each data set it runs ``ald-tune compare`` (the grid, grid + ASHA, the cheap
baselines and ALD with the ``ald-tune`` rule, three seeds, all as Ray Tune trials) into a
temporary run folder, reads the main report back and prints:

* the grid's plateau edge and best region, each ALD seed's n_z, how many are *near the
  edge* (in the region and n_z <= max(edge + 2, 1.5 x edge)) and in the region;
* the methods' ranking (in region, near the edge, compute to a trained model) and ALD's
  place in it;
* ALD's compute to its answer against one fixed run (the mean grid trial's CPU-seconds);
* how many ALD seeds' final models lie within the criterion's tolerance of a fixed run at
  their n_z (with the control: the same test between two grid seeds at one n_z).

``--robustness`` adds, for digits, MNIST and FashionMNIST (quick), plain ALD runs (no Ray)
from ``ald.n_z_init`` 32, 64 and 100 and from ``data.split_seed`` 0, 1 and 2, and prints
the spread of their final n_z in grid steps.

Targets (issue 22): near the edge on 9 of 9 seeds across digits, MNIST and FashionMNIST
quick; manifold 9 of 9 within [d, d + 2]; the conv VAE 3 of 3 in its region; ALD first in
the ranking on each; answer <= 0.5 of a fixed run on MNIST and FashionMNIST quick; final
model within tolerance on >= 8 of 9 seeds; start and split spread <= one grid step.

Usage: python benchmarks/bench_fidelity.py [--only NAME,...] [--robustness [--no-compare]]
       [--seeds N] [--baselines asha,units,id] [--keep DIR] [--set KEY=VALUE ...]
Names: digits, mnist, fashion_mnist, manifold3, manifold6, manifold10, breast_cancer,
conv_vae (the user conv VAE of tests/user_models.py on FashionMNIST; needs
PYTHONPATH=tests). Every name takes minutes (digits) to an hour (MNIST) on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time

CONV = [
    "model.factory=user_models:conv_vae",
    "model.kwargs={width: 16, hidden: 128}",
    "train.epochs=60",
    "grid.n_z=[4, 6, 8, 12, 16, 32]",
    "ald.n_z_init=32",
]
#: name -> (search space, overrides, known intrinsic dimension or None)
SETS = {
    "digits": ("search_spaces/digits.yaml", [], None),
    "mnist": ("search_spaces/mnist.yaml", [], None),
    "fashion_mnist": ("search_spaces/fashion_mnist.yaml", [], None),
    "manifold3": ("search_spaces/manifold.yaml", ["data.intrinsic_dim=3"], 3),
    "manifold6": ("search_spaces/manifold.yaml", ["data.intrinsic_dim=6"], 6),
    "manifold10": ("search_spaces/manifold.yaml", ["data.intrinsic_dim=10"], 10),
    "breast_cancer": ("search_spaces/breast_cancer.yaml", [], None),
    "conv_vae": ("search_spaces/fashion_mnist.yaml", CONV, None),
}
ROBUST = ("digits", "mnist", "fashion_mnist")


def run_compare(name: str, seeds: int, baselines: str, folder: str, sets: list[str]) -> dict:
    """``ald-tune compare`` on one data set; returns its main (ald-tune) report."""
    from ald_tune.cli.compare import main

    space, extra, _ = SETS[name]
    out = os.path.join(folder, "report")
    argv = [
        "--space", space, "--rules", "ald-tune", "--baselines", baselines,
        "--run-dir", folder, "--out", out, "--set", f"tune.num_samples={seeds}",
    ]  # fmt: skip
    for item in [*extra, *sets]:
        argv += ["--set", item]
    t0 = time.perf_counter()
    code = main(argv, prog="bench_fidelity")
    if code != 0:
        raise SystemExit(f"compare on {name} failed with exit code {code}")
    with open(os.path.join(out, "comparison.json"), encoding="utf-8") as fh:
        report = json.load(fh)
    report["bench_wall_s"] = time.perf_counter() - t0
    return report


def summarise(name: str, r: dict) -> dict:
    """The fidelity figures of one report (see the module docstring)."""
    crit, ald = r["criterion"], r["ald"]
    seeds = ald["seeds"]
    rows = r["grid"]["rows"]
    fixed_cpu = sum(x["cpu_s"] for x in rows) / max(1, sum(x["n_seeds"] for x in rows))
    d = SETS[name][2]
    ranking = [m["method"] for m in r["methods"]]
    place = next(i for i, m in enumerate(ranking, 1) if m.startswith("ALD"))
    return {
        "name": name,
        "edge": crit["plateau_edge"],
        "region": crit["best_region"],
        "n_z": [s["n_z"] for s in seeds],
        "near": sum(bool(s["near_edge"]) for s in seeds),
        "in_region": sum(bool(s["in_region"]) for s in seeds),
        "within_d": None if d is None else sum(d <= s["n_z"] <= d + 2 for s in seeds),
        "n_seeds": len(seeds),
        "ald_place": place,
        "first_three": ranking[:3],
        "answer_over_fixed": statistics.fmean(s["answer_cpu_s"] for s in seeds) / fixed_cpu,
        "final_within": ald["n_as_good_as_fixed"],
        "final_compared": ald["n_fixed_compared"],
        "control": f"{ald['control_within']}/{ald['control_pairs']}",
        "wall_s": r.get("bench_wall_s"),
    }


def robustness(name: str, sets: list[str]) -> dict:
    """Plain ALD runs from n_z_init 32/64/100 and split seeds 0/1/2: final n_z and spread."""
    from ald_tune.config.schema import load_config
    from ald_tune.engine.trainer import Trainer
    from ald_tune.report.criterion import grid_position

    space, extra, _ = SETS[name]
    runs = {}
    for label, over in (
        ("n_z_init=32", ["ald.n_z_init=32"]),
        ("n_z_init=64", []),
        ("n_z_init=100", ["ald.n_z_init=100"]),
        ("split_seed=1", ["data.split_seed=1"]),
        ("split_seed=2", ["data.split_seed=2"]),
    ):
        cfg = load_config(
            space, None, [*extra, *sets, *over, "train.threads=1", "ald.final_share=0"]
        )
        trainer = Trainer(cfg)
        for _ in trainer:
            pass
        runs[label] = trainer.model.n_z
    grid = list(cfg.grid.n_z)
    pos = [grid_position(n, grid) for n in runs.values()]
    return {"name": name, "runs": runs, "spread_steps": max(pos) - min(pos)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="digits,mnist,fashion_mnist")
    p.add_argument("--robustness", action="store_true")
    p.add_argument(
        "--no-compare", action="store_true", help="skip the comparisons (with --robustness)"
    )
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--baselines", default="asha,units,id")
    p.add_argument("--keep", default=None, help="keep the run folders here")
    p.add_argument("--set", action="append", default=[], help="a config override, as in compare")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    bad = [n for n in names if n not in SETS]
    if bad:
        p.error(f"--only: unknown {bad}; choose from {list(SETS)}")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import torch

    torch.set_num_threads(1)
    out = []
    for name in [] if args.no_compare else names:
        folder = os.path.join(args.keep, name) if args.keep else tempfile.mkdtemp(prefix=name)
        s = summarise(name, run_compare(name, args.seeds, args.baselines, folder, args.set))
        out.append(s)
        d = SETS[name][2]
        print(
            f"{name}: edge {s['edge']}, region {s['region']}; ALD n_z {s['n_z']}: near the edge "
            f"{s['near']}/{s['n_seeds']}, in region {s['in_region']}/{s['n_seeds']}"
            + ("" if d is None else f", within [{d}, {d + 2}] {s['within_d']}/{s['n_seeds']}")
            + f"; ALD ranks {s['ald_place']} (first: {', '.join(s['first_three'])}); answer / "
            f"one fixed run {s['answer_over_fixed']:.2f}; final model within tolerance "
            f"{s['final_within']}/{s['final_compared']} (control {s['control']}); "
            f"{s['wall_s']:.0f} s",
            flush=True,
        )
    if args.robustness:
        for name in (n for n in names if n in ROBUST):
            r = robustness(name, args.set)
            print(
                f"{name} robustness: "
                + ", ".join(f"{k} -> {v}" for k, v in r["runs"].items())
                + f"; spread {r['spread_steps']:.2f} grid steps (target <= 1)",
                flush=True,
            )
    near = [s for s in out if s["name"] in ROBUST]
    if near:
        print(
            f"near the edge: {sum(s['near'] for s in near)}/{sum(s['n_seeds'] for s in near)} "
            f"seeds over {', '.join(s['name'] for s in near)} (target: all)"
        )
    return 0 if all(math.isfinite(s["answer_over_fixed"]) for s in out) else 1


if __name__ == "__main__":
    sys.exit(main())
