"""What every benchmark script shares: its arguments and the process set-up.

Benchmarks are scripts, not package code, so this helper lives beside them
(``python benchmarks/bench_x.py`` puts this folder on ``sys.path``).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence


def parse(
    doc: str, argv: Sequence[str] | None, *, threads: bool = False, rounds: int | None = None
) -> argparse.Namespace:
    """``--space``, ``--preset``, ``--set k=v`` (repeatable), optionally ``--threads`` and
    ``--rounds`` (with ``rounds`` its default)."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--space", default="search_spaces/digits.yaml")
    p.add_argument("--preset", default=None)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    if threads:
        p.add_argument("--threads", type=int, default=1)
    if rounds is not None:
        p.add_argument(
            "--rounds",
            type=int,
            default=rounds,
            help="repeat the whole comparison (more epochs paired, less noise)",
        )
    args = p.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import torch

    torch.set_num_threads(getattr(args, "threads", 1))
    return args


def timed_epochs(trainer) -> list[float]:
    """Wall time of each epoch of a plain engine loop (train + evaluation + decision)."""
    out, t0 = [], time.perf_counter()
    for _ in trainer:
        out.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
    return out


def start_ray() -> None:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
