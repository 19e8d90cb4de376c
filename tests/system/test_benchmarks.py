"""The benchmark scripts run end to end (slow: real training, real Ray, in a subprocess).

Their numbers are measured by hand on a quiet machine (docs/benchmarks.md); here a tiny
config checks that every line they print comes out, with finite numbers, so the scripts cannot rot.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest
from conftest import ONE_AT_A_TIME, ROOT

pytestmark = pytest.mark.slow

TINY = [
    "train.epochs=10",
    "ald.window=4",
    "ald.patience=2",
    "ald.n_z_init=12",
    "model.hidden=[64, 64]",
    "eval.n_fid=50",
    "grid.n_z=[2, 4]",
    "tune.asha_grace=2",
    "tune.grid_seeds=1",
    ONE_AT_A_TIME,
]


def run_bench(name: str, cache_dir: str, tmp_path, *extra: str) -> str:
    argv = [sys.executable, os.path.join(ROOT, "benchmarks", name), *extra]
    for item in [*TINY, f"eval.cache_dir={cache_dir}"]:
        argv += ["--set", item]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    # Its own Ray session, beside the suite's, in a short folder: Ray's socket paths must
    # stay under 107 bytes, which pytest's tmp_path can exceed.
    ray_tmp = tempfile.mkdtemp(prefix="rb", dir="/tmp")
    env["RAY_TMPDIR"] = ray_tmp
    try:
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def numbers(line: str) -> list[float]:
    return [float(x) for x in re.findall(r"[-+]?\d+\.\d+", line)]


def test_bench_compare_prints_both_rules_ratios(cache_dir, tmp_path):
    # final_share 0: a full-length ALD run is the grid trials' 10 epochs, so on this two-point
    # grid its trial-epochs stay below the grid's and grid + ASHA's (an extended run's need
    # not). Its CPU-seconds are about one second here: one scheduling hiccup on a loaded
    # machine can put them above the grid's, so only their being measured is checked.
    out = run_bench(
        "bench_compare.py", cache_dir, tmp_path, "--after-stop", "2", "--set", "ald.final_share=0"
    )
    targets = [ln for ln in out.splitlines() if ln.startswith("4. ") and "target <=" in ln]
    assert len(targets) == 3, out
    for line in targets:
        assert math.isfinite(numbers(line.split(":")[-2])[-1]) and "met" in line, line
    for k in ("full", "early"):
        assert any(ln.startswith(f"4. ALD ({k}): n_z [") for ln in out.splitlines()), out
    assert any(ln.startswith("4. final recon_loss: early end") for ln in out.splitlines()), out
    for rule in ("paper", "ald-tune"):
        wall = [
            ln
            for ln in out.splitlines()
            if ln.startswith("1. wall time per epoch") and f"({rule})" in ln
        ]
        assert len(wall) == 1, out
        assert 0.3 < numbers(wall[0].split("ratio")[1])[0] < 3.0
        for i, base in ((2, "grid"), (3, "asha")):
            line = [ln for ln in out.splitlines() if ln.startswith(f"{i}. compute: ALD ({rule})")]
            assert len(line) == 1 and f"vs {base}" in line[0], out
            share = numbers(line[0].split("=")[1])[0]
            assert math.isfinite(share) and share > 0.0 and "G = 2" in line[0], line[0]
            ald_epochs, base_epochs = map(int, line[0].split("trial-epochs")[1].split("vs"))
            assert 0 < ald_epochs < base_epochs, line[0]


def test_bench_ground_truth_prints_each_dimension(cache_dir, tmp_path):
    out = run_bench(
        "bench_ground_truth.py",
        cache_dir,
        tmp_path,
        "--dims",
        "2",
        "--set",
        "data.limit=600",
        "--set",
        "eval.n_silhouette=100",
        "--set",
        "tune.num_samples=1",
        "--set",
        "tune.grid_seeds=1",
    )
    line = [ln for ln in out.splitlines() if ln.startswith("d=2, D=64: ALD (ald-tune) n_z")]
    assert len(line) == 1 and "within [d, d+2]:" in line[0] and "in region:" in line[0], out
    assert re.search(r"goal \(every seed .*\): (met|NOT met)", out), out


def test_bench_tune_overhead_prints_each_setup(cache_dir, tmp_path):
    out = run_bench("bench_tune_overhead.py", cache_dir, tmp_path, "--rounds", "1")
    for label in ("tune ", "+mlflow ", "default ", "every-n ", "synchronous "):
        line = [ln for ln in out.splitlines() if ln.startswith(label)]
        assert len(line) == 1, out
        assert "paired" in line[0] and "own process" in line[0], line[0]
        assert all(math.isfinite(v) for v in numbers(line[0]))
    assert re.search(r"extra wall time per epoch, default set-up: [-+]\d+\.\d% paired", out), out


def test_bench_engine_prints_its_two_targets(cache_dir, tmp_path):
    out = run_bench("bench_engine.py", cache_dir, tmp_path)
    assert re.search(r"ratio \d+\.\d{4} \(target <= 1\.05\)", out), out
    assert re.search(r"eval share \(ALD run, median per epoch\): \d+\.\d%", out), out


def test_bench_sweeps_prints_both_ratios(cache_dir, tmp_path):
    out = run_bench("bench_sweeps.py", cache_dir, tmp_path, "--rounds", "1")
    for head in ("1. training epoch", "2. grid sweep"):
        line = [ln for ln in out.splitlines() if ln.startswith(head)]
        assert len(line) == 1 and "ratio" in line[0], out
        assert all(math.isfinite(v) and v > 0 for v in numbers(line[0]))


def test_bench_fidelity_prints_the_targets(cache_dir, tmp_path):
    # Digits on a tiny config: one compare (one seed, the units-in-use baseline) and the
    # five plain runs of the robustness section.
    out = run_bench(
        "bench_fidelity.py",
        cache_dir,
        tmp_path,
        "--only",
        "digits",
        "--seeds",
        "1",
        "--baselines",
        "units",
        "--robustness",
    )
    line = [ln for ln in out.splitlines() if ln.startswith("digits: edge ")]
    assert len(line) == 1, out
    for part in ("near the edge", "ALD ranks", "answer / one fixed run", "within tolerance"):
        assert part in line[0], line[0]
    assert math.isfinite(numbers(line[0].split("answer / one fixed run")[1])[0]), line[0]
    robust = [ln for ln in out.splitlines() if ln.startswith("digits robustness: ")]
    assert len(robust) == 1 and robust[0].count(" -> ") == 5, out
    assert re.search(r"spread \d+\.\d\d grid steps", robust[0]), robust[0]
    assert re.search(r"near the edge: \d+/1 seeds over digits", out), out


def test_bench_demo_prints_the_wall_time_and_the_floor_of_its_compute(cache_dir, tmp_path):
    # one ALD seed per rule (the demo's default is three): the lines, not the numbers
    out = run_bench(
        "bench_demo.py", cache_dir, tmp_path, "--target-s", "180", "--set", "tune.num_samples=1"
    )
    wall = [ln for ln in out.splitlines() if ln.startswith("1. wall time: ")]
    assert len(wall) == 1 and re.search(r"target <= 180 s: (met|NOT met)\)", wall[0]), out
    compute = [ln for ln in out.splitlines() if ln.startswith("2. trial compute: ")]
    assert len(compute) == 1 and all(f"{k} " in compute[0] for k in ("grid", "asha", "aldtune")), (
        out
    )
    cpu = numbers(compute[0])[0]
    floor = [ln for ln in out.splitlines() if ln.startswith("3. floor on ")]
    assert len(floor) == 1, out
    cores = int(re.search(r"floor on (\d+) cores", floor[0]).group(1))
    assert abs(numbers(floor[0])[0] - cpu / cores) < 0.1 and 0 < cpu < numbers(wall[0])[0] * cores
