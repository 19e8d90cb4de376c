"""The Ray Tune driver's CPU per trial epoch: the experiment state snapshotted at every
controller step (``TUNE_GLOBAL_CHECKPOINT_S=0``, ald-tune before 0.3.1) against ald-tune's
default (at each trial checkpoint, else every ``SNAPSHOT_S`` seconds).

On a 2-core machine the driver's CPU is taken from the trials, so it is the cost that
matters. Each round runs the same grid sweep twice, once per setting, each in its own
driver process (alternating which goes first), with scripted trials whose epochs take
``--epoch-s`` seconds (0.1: a digits epoch on one core) and MLflow tracking on SQLite;
the driver process measures its own CPU time (user + system, from ``resource``). Printed:
driver CPU-s per trial epoch for each setting, per round and the median, and their ratio.

Usage: python benchmarks/bench_driver.py [--rounds 2] [--epochs 40] [--epoch-s 0.1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTINGS = {"every step (0)": "0", "default": None}

CHILD = """
import json, resource, sys
from ald_tune.config.schema import load_config
from ald_tune.sweeps.tuner import SweepOptions
from ald_tune.testing import SCRIPTED
from ald_tune.sweeps.run import run_sweep
import ray
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
epochs, run_dir = int(sys.argv[1]), sys.argv[2]
cfg = load_config("search_spaces/digits.yaml", overrides=[
    f"train.epochs={epochs}", "grid.n_z=[2, 4, 8, 16]", "tune.grid_seeds=1",
    "ald.final_share=0"])
before = resource.getrusage(resource.RUSAGE_SELF)
res = run_sweep(cfg, SweepOptions(mode="grid", run_dir=run_dir, trainer=SCRIPTED,
                                  verbose=False, space="search_spaces/digits.yaml"))
after = resource.getrusage(resource.RUSAGE_SELF)
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
print(json.dumps({"cpu_s": cpu, "epochs": sum(len(t.history) for t in res.trials)}))
ray.shutdown()
"""


def one(setting: str | None, epochs: int, epoch_s: float) -> float:
    """Driver CPU-s per trial epoch of one sweep in a new driver process."""
    env = {**os.environ, "ALD_TUNE_SCRIPTED_EPOCH_S": str(epoch_s), "PYTHONPATH": ROOT}
    env.pop("TUNE_GLOBAL_CHECKPOINT_S", None)
    if setting is not None:
        env["TUNE_GLOBAL_CHECKPOINT_S"] = setting
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(epochs), tmp],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    got = json.loads(out.strip().splitlines()[-1])
    return got["cpu_s"] / got["epochs"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--epoch-s", type=float, default=0.1)
    args = ap.parse_args(argv)
    per: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for r in range(args.rounds):
        order = list(SETTINGS) if r % 2 == 0 else list(reversed(SETTINGS))
        for name in order:
            per[name].append(one(SETTINGS[name], args.epochs, args.epoch_s))
        print(f"round {r + 1}: " + ", ".join(f"{n} {per[n][-1] * 1000:.1f} ms" for n in per))
    med = {n: statistics.median(v) for n, v in per.items()}
    print(f"driver CPU per trial epoch (median of {args.rounds}, 4 trials x {args.epochs} epochs):")
    for n, v in med.items():
        print(f"  {n:<16} {v * 1000:7.1f} ms")
    base, new = med["every step (0)"], med["default"]
    print(f"  default / every step = {new / base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
