"""MLflow tracking: one parent run per sweep, one nested child run per trial.

Ray's ``MLflowLoggerCallback`` runs on the driver only, cannot nest runs and
does not reopen runs on restore, so each trial logs through
:class:`TrialLogger`, which *finds or creates* its child run by the trial id
under the sweep's parent run. A trial that Ray retries, or a sweep restored
with ``--resume``, therefore continues its own run, and epochs already
logged are never logged twice (steps are checked against the run's history).

Metrics are buffered and sent in one batch per checkpoint (and at the end);
when the tracking server is unreachable the batch stays buffered and is
retried at the next flush, so training never stops for tracking.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import warnings
from typing import Any, Mapping

from .errors import ConfigError

SWEEP_TAG = "ald_tune.sweep"
TRIAL_TAG = "ald_tune.trial_id"
PARENT_TAG = "mlflow.parentRunId"
TRACKED_METRICS = ("n_z", "recon_loss", "kl", "neg_elbo", "fid_gen", "fid_recon", "silhouette",
                   "accuracy", "active_units", "train_loss", "train_time_s", "eval_time_s",
                   "cpu_time_s", "stopped", "removed")


def default_tracking_uri(run_dir: str) -> str:
    """An absolute SQLite store in ``run_dir`` (never the deprecated file store)."""
    return "sqlite:///" + os.path.join(os.path.abspath(run_dir), "mlflow.db")


def resolve_tracking_uri(uri: str | None, run_dir: str) -> str:
    """``--tracking-uri`` > ``$MLFLOW_TRACKING_URI`` > SQLite in ``run_dir``.

    Raises:
        ConfigError: a file-store URI or a scheme ald-tune cannot use.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(run_dir)
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///"):]
        if not os.path.isabs("/" + path) or not path.startswith("/"):
            # "sqlite:///rel.db" is relative to the working directory, which Tune changes.
            return "sqlite:///" + os.path.abspath(path)
        return uri
    if uri.startswith(("http://", "https://", "databricks")):
        return uri.rstrip("/")
    raise ConfigError(
        f"tracking URI {uri!r} is not supported: MLflow's file store is deprecated and "
        "relative paths break under Ray Tune. Fix: use sqlite:////abs/path/mlflow.db or "
        "http://HOST:PORT of an `mlflow server`.")


def check_tracking(uri: str, timeout: float = 5.0) -> None:
    """Fail fast (within ``timeout`` seconds) when the tracking store is unusable.

    Raises:
        ConfigError: naming the URI and the fix.
    """
    if uri.startswith("sqlite:///"):
        folder = os.path.dirname(uri[len("sqlite:///"):])
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"tracking URI {uri!r}: cannot create {folder!r} ({exc}).") from None
        if not os.access(folder, os.W_OK):
            raise ConfigError(f"tracking URI {uri!r}: folder {folder!r} is not writable.")
        return
    if uri.startswith(("http://", "https://")):
        import urllib.request
        try:
            with urllib.request.urlopen(uri + "/health", timeout=timeout) as resp:
                if resp.status == 200:
                    return
        except Exception as exc:  # URLError, timeout, connection refused
            reason = exc
        else:
            reason = f"HTTP {resp.status}"
        raise ConfigError(
            f"MLflow tracking server {uri!r} is unreachable ({reason}). Fix: start it "
            f"(`mlflow server --host 127.0.0.1 --port PORT --backend-store-uri sqlite:////abs/mlflow.db`), "
            "pass another --tracking-uri, or run with --no-tracking.")


def client(uri: str):
    from mlflow import MlflowClient
    return MlflowClient(tracking_uri=uri)


def git_commit() -> str | None:
    """The checkout's commit when ald-tune runs from a git checkout, else None."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=os.path.dirname(os.path.abspath(__file__)))
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def artifact_root(uri: str) -> str | None:
    """For SQLite stores: ``mlartifacts`` beside the database, absolute.

    MLflow's default (``./mlruns``) is relative to the working directory, which
    Tune changes per trial; an HTTP server decides for itself (None).
    """
    if uri.startswith("sqlite:///"):
        return os.path.join(os.path.dirname(uri[len("sqlite:///"):]), "mlartifacts")
    return None


def ensure_experiment(c, name: str) -> str:
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    root = artifact_root(c.tracking_uri)
    return c.create_experiment(name, artifact_location=root and os.path.join(root, name))


def _params(flat: Mapping[str, Any]) -> list:
    from mlflow.entities import Param
    return [Param(k, json.dumps(v) if isinstance(v, (list, dict)) else str(v))
            for k, v in sorted(flat.items())]


def log_params(c, run_id: str, flat: Mapping[str, Any]) -> None:
    params = _params(flat)
    for i in range(0, len(params), 100):  # MLflow caps a batch at 100 params
        c.log_batch(run_id, params=params[i:i + 100])


def start_parent_run(uri: str, experiment: str, sweep: str, *, mode: str, cfg,
                     space: str | None, resume: bool) -> tuple[str, str]:
    """Create the sweep's parent run, or find it again with ``resume``.

    Returns:
        (experiment_id, parent_run_id)
    """
    from . import __version__

    c = client(uri)
    exp_id = ensure_experiment(c, experiment)
    found = c.search_runs([exp_id], filter_string=f"tags.`{SWEEP_TAG}` = '{sweep}'",
                          max_results=1, order_by=["attributes.start_time DESC"])
    if found and resume:
        run_id = found[0].info.run_id
        if found[0].info.status != "RUNNING":
            c.update_run(run_id, status="RUNNING")
        return exp_id, run_id
    tags = {SWEEP_TAG: sweep, "ald_tune.mode": mode, "ald_tune.dataset": cfg.data.name,
            "ald_tune.space": str(space), "ald_tune.version": __version__}
    commit = git_commit()
    if commit:
        tags["ald_tune.git_commit"] = commit
    run = c.create_run(exp_id, tags=tags, run_name=sweep)
    log_params(c, run.info.run_id, cfg.flat())
    return exp_id, run.info.run_id


def finish_run(uri: str, run_id: str, status: str = "FINISHED") -> None:
    client(uri).set_terminated(run_id, status=status)


class TrialLogger:
    """Logs one trial into its child run (found again on retry and resume).

    Args:
        uri: tracking URI (absolute).
        experiment_id: the sweep's experiment.
        parent_run_id: the sweep's parent run.
        trial_id: Ray's trial id (stable across retries and restores).
        tags: extra tags (mode, seed...).
        params: the trial's config snapshot (flat).
        run_name: display name of the child run.
    """

    def __init__(self, uri: str, experiment_id: str, parent_run_id: str, trial_id: str,
                 tags: Mapping[str, str], params: Mapping[str, Any], run_name: str) -> None:
        self.uri, self.client = uri, client(uri)
        self.buffer: list = []
        self._warned = False
        found = self.client.search_runs(
            [experiment_id], max_results=1,
            filter_string=f"tags.`{TRIAL_TAG}` = '{trial_id}' and tags.`{PARENT_TAG}` = '{parent_run_id}'")
        if found:
            self.run_id = found[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            run = self.client.create_run(experiment_id, run_name=run_name, tags={
                **tags, TRIAL_TAG: trial_id, PARENT_TAG: parent_run_id})
            self.run_id = run.info.run_id
            log_params(self.client, self.run_id, params)
        self.logged_steps = {m.step for m in self.client.get_metric_history(self.run_id, "n_z")}

    def log_epoch(self, epoch: int, metrics: Mapping[str, Any]) -> None:
        """Buffer one epoch's metrics (step = epoch) unless that step is already logged."""
        from mlflow.entities import Metric

        if epoch in self.logged_steps:
            return
        now = int(time.time() * 1000)
        for k in TRACKED_METRICS:
            v = metrics.get(k)
            if isinstance(v, (int, float)) and not isinstance(v, bool) or isinstance(v, bool):
                self.buffer.append(Metric(k, float(v), now, epoch))
        self.logged_steps.add(epoch)

    def flush(self) -> bool:
        """Send buffered metrics; on failure keep them for the next flush. True if sent."""
        while self.buffer:
            chunk = self.buffer[:1000]  # MLflow caps a batch at 1,000 metrics
            try:
                self.client.log_batch(self.run_id, metrics=chunk)
            except Exception as exc:  # tracking must never stop training
                if not self._warned:
                    warnings.warn(f"MLflow logging to {self.uri} failed ({exc}); "
                                  "metrics stay buffered and are retried.", RuntimeWarning)
                    self._warned = True
                return False
            del self.buffer[:len(chunk)]
        return True

    def log_images(self, images: Mapping[str, Any], step: int) -> None:
        """Sample/reconstruction grids with a step, for the UI's step slider."""
        try:
            for key, img in images.items():
                self.client.log_image(self.run_id, img.numpy(), key=key, step=step)
        except Exception as exc:
            warnings.warn(f"MLflow image logging failed ({exc}).", RuntimeWarning)

    def log_final(self, trainer) -> None:
        """history.json, the n_z/metrics plot and the model (safetensors)."""
        from .plots import plot_history

        self.flush()
        with tempfile.TemporaryDirectory() as tmp:
            paths = trainer.save_outputs(tmp)
            plot = plot_history(trainer.history, os.path.join(tmp, "history.png"),
                                title=f"{trainer.mode} run")
            for key in ("history", "model"):
                self.client.log_artifact(self.run_id, paths[key])
            self.client.log_artifact(self.run_id, plot)
        self.client.set_tag(self.run_id, "ald_tune.final_n_z", str(trainer.model.n_z))

    def finish(self, status: str = "FINISHED") -> None:
        self.flush()
        self.client.set_terminated(self.run_id, status=status)
