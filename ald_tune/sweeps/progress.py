"""Console progress for sweeps: a Tune callback on the driver.

By default one status line per trial start or end (one for a turnover: an end and the next
start), and at most every ``every_s`` seconds between: trials done, running and pending,
the best metric so far, the elapsed time and an ETA. With ``epoch_lines`` (``--verbose``)
one line per trial result as well.

Ray's default output engine silently ignores a custom ``CLIReporter``, and its own table
says nothing about n_z, so progress is printed from a ``ray.tune.Callback`` instead.
"""

from __future__ import annotations

import math
import sys
import time

from ray import tune

from ald_tune.config.trial import TrialParams


def _f(x, fmt: str) -> str:
    return format(x, fmt) if isinstance(x, (int, float)) and math.isfinite(x) else "nan"


def clock(seconds: float) -> str:
    """``1:05`` (minutes:seconds) or ``2:01:05`` (hours too)."""
    s = max(0, round(seconds))
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


class ProgressCallback(tune.Callback):
    """The sweep's live view (module docstring).

    Args:
        verbose: False prints nothing.
        stream: where to print (default ``sys.stdout`` at print time: the tuner pickles
            callbacks).
        epoch_lines: also print ``trial epoch n_z recon fid_gen fid_recon sil | decision``
            per result.
        name: the sweep's name, at the start of each status line.
        planned: the trials the sweep will run (Tune may create grid trials lazily).
        epochs: each trial's planned epochs (``train.epochs``), for the ETA.
        metric: the metric the best-so-far is of (minimised).
        every_s: the least time between two status lines printed on results.
        turnover_s: how long a trial's end waits for the next trial's start before its
            status line prints alone.
    """

    def __init__(
        self,
        verbose: bool = True,
        stream=None,
        epoch_lines: bool = True,
        name: str = "sweep",
        planned: int = 0,
        epochs: int = 0,
        metric: str = "neg_elbo",
        every_s: float = 30.0,
        turnover_s: float = 2.0,
    ) -> None:
        self.verbose, self.stream, self.epoch_lines = verbose, stream, epoch_lines
        self.name, self.planned, self.epochs, self.metric = name, planned, epochs, metric
        self.every_s, self.turnover_s = every_s, turnover_s
        self.t0: float | None = None
        self.last_status = time.monotonic()
        self.held_since: float | None = None  # a trial ended; its status line waits

    def _print(self, text: str) -> None:
        if self.verbose:
            print(text, file=self.stream or sys.stdout, flush=True)

    def on_trial_start(self, iteration, trials, trial, **info):
        self.t0 = self.t0 if self.t0 is not None else time.monotonic()
        self._status(trials, trial, "RUNNING")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if self.epoch_lines:
            self._print(epoch_line(trial, result))
        if time.monotonic() - self.last_status >= self.every_s:
            self._status(trials)

    def on_trial_recover(self, iteration, trials, trial, **info):
        # Tune calls this, not on_trial_error, for a failure it retries.
        failures = getattr(trial, "num_failures", 0)
        self._print(
            f"[{trial.trial_id}] failed: {error_summary(trial)}; Ray retries it from its "
            f"last checkpoint (failure {failures}, tune.max_failures="
            f"{getattr(trial, 'max_failures', '?')})"
        )

    def on_trial_error(self, iteration, trials, trial, **info):
        # Only a failure Tune does not retry (tune.max_failures spent) ends up here.
        where = getattr(trial, "error_file", None)
        self._print(
            f"[{trial.trial_id}] FAILED: {error_summary(trial)} (no retry left: "
            f"tune.max_failures={getattr(trial, 'max_failures', '?')})"
            + (f"; the whole traceback: {where}" if where else "")
        )
        self._hold()

    def on_trial_complete(self, iteration, trials, trial, **info):
        last = trial.last_result or {}
        self._print(
            f"[{trial.trial_id}] done: final n_z {last.get('final_n_z', last.get('n_z_next'))} "
            f"after {last.get('training_iteration')} epochs"
        )
        self._hold()

    def _hold(self) -> None:
        """A trial ended: its status line waits ``turnover_s`` for the next trial's start,
        so that a turnover prints one line, not two a moment apart (by then Tune has set
        the ended trial's status itself)."""
        self.held_since = time.monotonic() if self.held_since is None else self.held_since

    def on_step_end(self, iteration, trials, **info):
        if self.held_since is not None and time.monotonic() - self.held_since >= self.turnover_s:
            self._status(trials)

    def on_experiment_end(self, trials, **info):
        if self.held_since is not None:
            self._status(trials)

    def _status(self, trials, trial=None, now_is: str = "") -> None:
        """Print the status line; Tune calls a hook before it sets ``trial``'s new status,
        so the hook says it (``now_is``)."""
        self.last_status, self.held_since = time.monotonic(), None
        self._print(self.status_line(trials, self.last_status, trial, now_is))

    def status_line(self, trials, now: float, trial=None, now_is: str = "") -> str:
        """``NAME: 3/8 done, 2 running, 3 pending; best neg_elbo 12.3 (n_z 8); 0:42
        elapsed, ETA 1:10`` (the ETA from the epochs done so far)."""
        status = [
            now_is if t is trial and now_is else getattr(t, "status", "PENDING") for t in trials
        ]
        done = sum(s in ("TERMINATED", "ERROR") for s in status)
        running = sum(s == "RUNNING" for s in status)
        total = max(self.planned, len(trials))
        text = (
            f"{self.name}: {done}/{total} done, {running} running, {total - done - running} pending"
        )
        best = _best(trials, self.metric)
        if best is not None:
            text += f"; best {self.metric} {best[0]:.4g} (n_z {best[1]})"
        elapsed = now - (self.t0 if self.t0 is not None else now)
        text += f"; {clock(elapsed)} elapsed"
        epochs_done = sum(
            self.epochs if s in ("TERMINATED", "ERROR") else _epochs(t)
            for s, t in zip(status, trials)
        )
        planned_epochs = total * self.epochs
        if 0 < epochs_done < planned_epochs and elapsed > 0:
            text += f", ETA {clock(elapsed * (planned_epochs - epochs_done) / epochs_done)}"
        return text


def error_summary(trial, limit: int = 300) -> str:
    """The last line of the trial's latest error (``ValueError: ...``), from the error file
    Tune writes on the driver (at most ``limit`` characters); a pointer to the trial's folder
    where there is none to read."""
    path = getattr(trial, "error_file", None)
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:  # type: ignore[arg-type]
            text = fh.read()
    except (OSError, TypeError):
        return "no error text (see the trial's folder)"
    latest = text.rsplit("Failure # ", 1)[-1]
    lines = [ln.strip() for ln in latest.splitlines()[1:] if ln.strip()]
    if not lines:
        return "no error text (see the trial's folder)"
    last = lines[-1]
    return last if len(last) <= limit else last[: limit - 3] + "..."


def _epochs(trial) -> int:
    return int((getattr(trial, "last_result", None) or {}).get("training_iteration") or 0)


def _best(trials, metric: str) -> tuple[float, object] | None:
    """(the lowest last-reported ``metric``, that trial's n_z), None before any result."""
    seen = []
    for t in trials:
        last = getattr(t, "last_result", None) or {}
        value = last.get(metric)
        if isinstance(value, (int, float)) and math.isfinite(value):
            seen.append((float(value), last.get("n_z")))
    return min(seen, key=lambda v: v[0]) if seen else None


def epoch_line(trial, result) -> str:
    """``[trial nz=8 seed=0] epoch 2  n_z 8  recon ...  | decision``."""
    params = TrialParams.from_config(trial.config)
    tag = "ald" if params.n_z is None else f"nz={params.n_z}"
    return (
        f"[{trial.trial_id} {tag} seed={params.seed}] epoch {result.get('epoch', -1):4d}  "
        f"n_z {result.get('n_z', -1):3d}  recon {_f(result.get('recon_loss'), '8.3f')}  "
        + (
            f"fid_gen {_f(result.get('fid_gen'), '8.3f')}  "
            f"fid_recon {_f(result.get('fid_recon'), '8.3f')}  "
            if result.get("fid_gen") is not None  # feature vectors have no FID
            else ""
        )
        + f"sil {_f(result.get('silhouette'), '6.3f')}  | {result.get('decision', '')}"
    )
