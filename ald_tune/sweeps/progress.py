"""Console progress for sweeps: a Tune callback, one line per trial result.

Ray's default output engine silently ignores a custom ``CLIReporter``, so
progress is printed from a ``ray.tune.Callback`` on the driver instead.
"""

from __future__ import annotations

import math
import sys

from ray import tune


def _f(x, fmt: str) -> str:
    return format(x, fmt) if isinstance(x, (int, float)) and math.isfinite(x) else "nan"


class ProgressCallback(tune.Callback):
    """Prints ``trial epoch n_z recon fid_gen fid_recon sil | decision`` per result."""

    def __init__(self, verbose: bool = True, stream=None) -> None:
        self.verbose = verbose
        self.stream = stream  # None: sys.stdout at print time (the tuner pickles callbacks)

    def _print(self, text: str) -> None:
        if self.verbose:
            print(text, file=self.stream or sys.stdout, flush=True)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        cfg = trial.config
        tag = f"nz={cfg['n_z']}" if "n_z" in cfg else "ald"
        self._print(
            f"[{trial.trial_id} {tag} seed={cfg.get('seed')}] epoch {result.get('epoch', -1):4d}  "
            f"n_z {result.get('n_z', -1):3d}  recon {_f(result.get('recon_loss'), '8.3f')}  "
            + (
                f"fid_gen {_f(result.get('fid_gen'), '8.3f')}  "
                f"fid_recon {_f(result.get('fid_recon'), '8.3f')}  "
                if result.get("fid_gen") is not None  # feature vectors have no FID
                else ""
            )
            + f"sil {_f(result.get('silhouette'), '6.3f')}  | {result.get('decision', '')}"
        )

    def on_trial_error(self, iteration, trials, trial, **info):
        self._print(
            f"[{trial.trial_id}] FAILED (Ray retries it from its last checkpoint "
            f"if tune.max_failures allows)"
        )

    def on_trial_complete(self, iteration, trials, trial, **info):
        last = trial.last_result or {}
        self._print(
            f"[{trial.trial_id}] done: final n_z {last.get('final_n_z', last.get('n_z_next'))} "
            f"after {last.get('training_iteration')} epochs"
        )
