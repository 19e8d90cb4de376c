"""Numbers read from one trial's dict (``SweepResult.trials`` or rebuilt from MLflow).

NaN stands for "missing" throughout, so a metric an engine did not record, or a
value MLflow returned as text, never breaks a mean; :func:`clean` turns the result
JSON-ready. Used by :mod:`ald_tune.criterion` and :mod:`ald_tune.report`.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Iterable

NAN = math.nan


def num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return NAN


def finite(vals: Iterable[Any]) -> list[float]:
    return [x for x in map(num, vals) if math.isfinite(x)]


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


def ok(t: dict) -> bool:
    return t.get("status", "TERMINATED") == "TERMINATED"


def last(t: dict, key: str) -> float:
    hist = t.get("history") or []
    if hist and key in hist[-1]:
        return num(hist[-1][key])
    return num((t.get("metrics") or {}).get(key))


def setting(t: dict, section: str, key: str, default: float) -> float:
    """A config value from MLflow params, Ray's flattened history or its nested config."""
    for v in ((t.get("params") or {}).get(f"{section}.{key}"),
              ((t.get("history") or [{}])[-1]).get(f"config/space/{section}/{key}"),
              ((t.get("metrics") or {}).get("config") or {}).get("space", {})
              .get(section, {}).get(key)):
        if math.isfinite(num(v)):
            return num(v)
    return default


def trial_nz(t: dict) -> int:
    v = t.get("n_z_grid")
    return int(v) if v is not None else int(num(t.get("final_n_z")))


def trial_cost(t: dict) -> tuple[float, float, str]:
    """(CPU-s, GPU-s, source of the CPU figure) of one trial."""
    hist = t.get("history") or []
    secs = num(t.get("time_s"))
    if not math.isfinite(secs):
        secs = sum(finite(h.get("train_time_s", 0.0) for h in hist)) + \
            sum(finite(h.get("eval_time_s", 0.0) for h in hist))
    gpu = secs * setting(t, "tune", "gpus_per_trial", 0.0)
    cpu = [num(h.get("cpu_time_s")) for h in hist]
    if cpu and all(math.isfinite(x) for x in cpu):
        return sum(cpu), gpu, "cpu_time_s"
    return secs * setting(t, "tune", "cpus_per_trial", 1.0), gpu, "time_s x cpus_per_trial"
