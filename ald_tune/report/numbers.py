"""The numbers the report reads from trial records, NaN-tolerant.

NaN stands for "missing" throughout, so a metric an engine did not record, or a
value MLflow returned as text, never breaks a mean; :func:`clean` turns the result
JSON-ready. Used by :mod:`ald_tune.report.criterion` and :mod:`ald_tune.report.build`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from typing import Any

from ald_tune.sweeps.results import NAN, TrialRecord, finite, num, trial_seconds

__all__ = [
    "NAN",
    "answer_epochs",
    "clean",
    "finite",
    "last",
    "mean",
    "num",
    "ratio",
    "std",
    "trial_cost",
    "trial_seconds",
]


def mean(vals: Iterable[Any]) -> float:
    xs = finite(vals)
    return statistics.fmean(xs) if xs else NAN


def std(vals: Iterable[Any]) -> float:
    """Sample standard deviation (ddof=1) of the finite values; NaN below two."""
    xs = finite(vals)
    return statistics.stdev(xs) if len(xs) > 1 else NAN


def ratio(a: Any, b: Any) -> float:
    a, b = num(a), num(b)
    return a / b if math.isfinite(a) and math.isfinite(b) and b > 0 else NAN


def clean(obj: Any) -> Any:
    """JSON-ready: NaN/inf -> None, numpy scalars -> Python, tuples -> lists."""
    if hasattr(obj, "item") and not isinstance(obj, (dict, list, tuple)):
        obj = obj.item()  # numpy scalar
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


def last(t: TrialRecord, key: str) -> float:
    """The last epoch's value of ``key`` (NaN when missing)."""
    return num(t.history[-1].get(key)) if t.history else NAN


def trial_cost(t: TrialRecord, epochs: int | None = None) -> tuple[float, float, str]:
    """(CPU-s, GPU-s, source of the CPU figure) of one trial, or of its first ``epochs``.

    CPU-s: the per-epoch process CPU time, summed; for epochs without it, the trial's
    seconds x CPUs held. GPU-s: the per-epoch GPU time measured with CUDA events
    (``gpu_time_s``); for trials without it, their seconds x the GPU share they held.
    """
    hist = t.history if epochs is None else t.history[:epochs]
    secs = trial_seconds(hist)
    gpu = [num(h.get("gpu_time_s")) for h in hist]
    gpu_s = sum(gpu) if gpu and all(math.isfinite(x) for x in gpu) else secs * t.gpus
    cpu = [num(h.get("cpu_time_s")) for h in hist]
    if cpu and all(math.isfinite(x) for x in cpu):
        return sum(cpu), gpu_s, "cpu_time_s"
    return secs * t.cpus, gpu_s, "time_s x cpus_per_trial"


def answer_epochs(t: TrialRecord) -> int:
    """How many epochs an ALD trial ran until its answer was known: through the epoch of
    its stop decision (``stopped`` first true), else all of them."""
    for i, h in enumerate(t.history):
        if num(h.get("stopped")) >= 0.5:
            return i + 1
    return len(t.history)
