"""Tune's per-trial result files (``result.json``, ``progress.csv``), kept whole on retries.

Ray 2.60's ``JsonLoggerCallback`` and ``CSVLoggerCallback`` copy the trial's file
from storage over the driver's own copy each time a trial restarts from a
checkpoint (``LoggerCallback._restore_from_remote``). The driver writes its copy
first and syncs it to storage only now and then (every ``SyncConfig.sync_period``,
or after ``num_to_keep`` checkpoints), so the storage copy can be older: a retried
trial then lost the rows reported since the last sync, at times every row from
before the failure, and with them the report's epochs and cost for that trial.
The two loggers here copy from storage only when the driver has no copy of its
own (a sweep restored by a new driver with ``--resume``), which is the one case
where the storage copy is the newest. Tune uses them instead of its defaults
because it adds a default logger only when none of that type was passed.
"""

from __future__ import annotations

import os

from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback


class _KeepDriverCopy:
    """Restore a trial's result file from storage only if the driver holds none."""

    def _restore_from_remote(self, file_name: str, trial) -> None:
        if os.path.exists(os.path.join(trial.local_path, file_name)):
            return  # the driver's copy is the newest: storage is synced from it
        super()._restore_from_remote(file_name, trial)  # type: ignore[misc]


class JsonLogger(_KeepDriverCopy, JsonLoggerCallback):
    """Tune's ``result.json`` logger, without the overwrite on retry (see module doc)."""


class CSVLogger(_KeepDriverCopy, CSVLoggerCallback):
    """Tune's ``progress.csv`` logger, without the overwrite on retry (see module doc)."""


def result_loggers() -> list:
    """The logger callbacks every ald-tune sweep passes to ``RunConfig(callbacks=...)``."""
    return [JsonLogger(), CSVLogger()]
