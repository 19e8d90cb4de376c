"""The demo's wall time against its 3-minute target, and how much of it is training.

Runs the demo's command (``python ald_tune/run.py --space SPACE``, what ``make demo`` runs)
once in a new run folder (a new MLflow store and Ray session, as on a fresh clone after
set-up) and times it. Then it reads every trial's rows from Tune's files and prints:

1. the wall time against the target (``--target-s``, 180);
2. the trials' own compute (CPU-s summed over every epoch of every trial, per sweep);
3. the floor that compute sets on this machine (CPU-s / cores: every core training all the
   time, nothing else running), and the rest of the wall time: process and Ray start-up,
   each sweep's new worker processes importing torch, torchmetrics and MLflow, the last
   trials of a sweep leaving cores idle, the Tune driver, and the report.

The target is reachable without weakening the comparison only if the floor is below it.

Usage: python benchmarks/bench_demo.py [--space search_spaces/digits.yaml] [--set k=v ...]
       [--target-s 180] [--log FILE (the demo's own output, to compare reports)]
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def trial_compute(storage: str) -> dict[str, tuple[float, int]]:
    """CPU-s and trial-epochs per sweep (the sweep's kind: grid, asha, aldtune, ...) from
    every ``result.json`` row under Tune's storage folder."""
    out: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0])
    for path in glob.glob(os.path.join(storage, "*", "*", "result.json")):
        kind = os.path.basename(os.path.dirname(os.path.dirname(path))).split("-")[0]
        with open(path) as fh:
            for line in fh:
                row = json.loads(line)
                out[kind][0] += float(row.get("cpu_time_s", 0.0))
                out[kind][1] += 1
    return {k: (v[0], int(v[1])) for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default="search_spaces/digits.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--target-s", type=float, default=180.0)
    p.add_argument("--log", default=None, help="write the demo's own output to this file")
    args = p.parse_args(argv)
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        cmd = [sys.executable, "ald_tune/run.py", "--space", args.space, "--run-dir", tmp]
        for item in args.overrides:
            cmd += ["--set", item]
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        t0 = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if args.log:
            with open(args.log, "w") as fh:
                fh.write(done.stdout + done.stderr)
        if done.returncode != 0:
            print(done.stdout[-3000:] + done.stderr[-3000:], file=sys.stderr)
            return done.returncode
        sweeps = trial_compute(os.path.join(tmp, "ray"))
    cpu = sum(c for c, _ in sweeps.values())
    epochs = sum(n for _, n in sweeps.values())
    floor = cpu / cores
    met = "met" if wall <= args.target_s else "NOT met"
    print(f"demo: python ald_tune/run.py --space {args.space} (a new run folder), {cores} cores")
    print(f"1. wall time: {wall:.1f} s (target <= {args.target_s:.0f} s: {met})")
    parts = ", ".join(
        f"{k} {c:.1f}" for k, (c, _) in sorted(sweeps.items(), key=lambda x: -x[1][0])
    )
    print(f"2. trial compute: {cpu:.1f} CPU-s in {epochs} trial-epochs ({parts})")
    print(
        f"3. floor on {cores} cores: {floor:.1f} s (trial compute / cores, ratio to the "
        f"target {floor / args.target_s:.2f}); the rest of the wall time, {wall - floor:.1f} s "
        f"({(wall - floor) / wall:.0%}), is start-up, idle cores at sweep ends, the driver "
        "and the report"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
