"""Reporting one epoch behind training: :class:`ReportAhead`.

A Ray Tune function trainable blocks in ``tune.report`` until the driver has
processed the result and sent the next ``train`` call (Ray 2.60 runs function
trainables with ``synchronous_result_reporting=True``): 8-11 ms per report on
this project's 2-core machines, 5-6% of a 0.17 s digits epoch, spent waiting
for another process. Ray's own remedy, result buffering
(``TUNE_RESULT_BUFFER_LENGTH``), warns that checkpoints inside a buffer may be
handled out of order, so a trial instead hands each epoch's reporting (MLflow
buffer, checkpoint upload, ``tune.report``) to one background thread and goes on
training the next epoch while it runs.

Guarantees: jobs run one at a time, in submission order; at most one is in
flight, so reporting lags training by at most one epoch; an error raised by a
job (``SystemExit`` too: Tune's request to stop a trial arrives that way) is
raised again in the submitting thread at its next :meth:`submit` or at exit.
Nothing here imports Ray; with ``enabled=False`` jobs run inline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class ReportAhead:
    """Run jobs on one background thread, one in flight, errors re-raised here.

    Args:
        enabled: False runs each job at once in the caller's thread (the plain
            synchronous behaviour, used where a scheduler may stop a trial at any
            report and an epoch computed ahead would be wasted).

    Example:
        >>> seen = []
        >>> with ReportAhead() as ahead:
        ...     for epoch in range(3):
        ...         ahead.submit(seen.append, epoch)
        >>> seen
        [0, 1, 2]
    """

    def __init__(self, enabled: bool = True) -> None:
        self._pool = (
            ThreadPoolExecutor(1, thread_name_prefix="ald-tune-report") if enabled else None
        )
        self._pending: Future | None = None
        self.waited_s = 0.0  # time submit() spent waiting for the job before (diagnostics)

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Wait for the job in flight (re-raising its error), then start ``fn(*args)``."""
        if self._pool is None:
            fn(*args)
            return
        self.drain()
        self._pending = self._pool.submit(fn, *args)

    def drain(self) -> None:
        """Wait for the job in flight; re-raise what it raised."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        t0 = time.perf_counter()
        try:
            pending.result()
        finally:
            self.waited_s += time.perf_counter() - t0

    def close(self) -> None:
        """Drain and stop the thread (idempotent)."""
        try:
            self.drain()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def __enter__(self) -> ReportAhead:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.close()
        except BaseException as job_exc:
            if exc_type is None:
                raise  # the job's error is the only one
            # The caller's own error wins; the report's is kept on it as a note.
            if hasattr(exc, "add_note"):
                exc.add_note(f"(the report in flight failed too: {job_exc!r})")
