"""MLflow tracking: one parent run per sweep, one nested child run per trial.

Ray's ``MLflowLoggerCallback`` runs on the driver only, cannot nest runs and
does not reopen runs on restore, so each trial logs through
:class:`TrialLogger`, which *finds or creates* its child run by the trial id
under the sweep's parent run. A trial that Ray retries, or a sweep restored
with ``--resume``, therefore continues its own run, and epochs already
logged are never logged twice (steps are checked against the run's history).

When the tracking server goes away mid-sweep, training goes on: metrics,
images and the final artifacts stay buffered and are retried at each
checkpoint and at the end (a few tries, a few seconds); whatever still could
not be sent is rebuilt from Tune's own ``result.json`` by
:func:`ald_tune.backfill.backfill` (``ald-tune backfill``). Nothing here
raises out of a trial because of tracking.

Credentials never reach params, tags, Tune's files or messages: a URI's
``user:password@`` part moves into ``MLFLOW_TRACKING_USERNAME`` /
``MLFLOW_TRACKING_PASSWORD`` (which MLflow reads itself), and every message
that shows a URI or an exception goes through :func:`redact_uri`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from typing import Any, Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

from .errors import ConfigError

SWEEP_TAG = "ald_tune.sweep"
TRIAL_TAG = "ald_tune.trial_id"
PARENT_TAG = "mlflow.parentRunId"
TRACKED_METRICS = ("n_z", "recon_loss", "kl", "neg_elbo", "fid_gen", "fid_recon", "silhouette",
                   "accuracy", "active_units", "train_loss", "train_time_s", "eval_time_s",
                   "cpu_time_s", "stopped", "removed")
# MLflow's client retries a failed request 7 times with exponential backoff and waits
# 120 s for an answer: minutes of stalled training per call while the server is down.
# Trial processes fail fast instead and retry on their own, bounded schedule.
QUIET_HTTP_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
FLUSH_BACKOFF_S = (1.0, 2.0)  # sleeps between the 3 tries of a flush: at most 3 s in all
PENDING_DIR = "mlflow_pending"  # final artifacts not yet sent, kept in the trial's folder
PENDING_FILE = "pending.json"
SECRET_ENV = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD")
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^/@:\s]*)"
                       r"(?::(?P<password>[^/@\s]*))?@")


def redact_uri(text: Any) -> str:
    """``text`` (a URI, or any message holding URIs) with every secret masked.

    Masks the password of ``scheme://user:password@host`` (and a bare
    ``scheme://token@host``), and the values of ``$MLFLOW_TRACKING_TOKEN`` and
    ``$MLFLOW_TRACKING_PASSWORD`` wherever they appear.

    Example:
        >>> redact_uri("http://ana:s3cret@127.0.0.1:5000")
        'http://ana:***@127.0.0.1:5000'
    """
    def mask(m: re.Match) -> str:
        if m.group("password") is None:
            return m.group("scheme") + "***@"
        return f"{m.group('scheme')}{m.group('user')}:***@"

    out = _USERINFO.sub(mask, str(text))
    for var in SECRET_ENV:
        secret = os.environ.get(var)
        if secret and len(secret) >= 4:  # masking "a" would mangle every message
            out = out.replace(secret, "***")
    return out


def split_credentials(uri: str) -> tuple[str, str | None, str | None]:
    """``(uri without user:password@, username, password)`` of an HTTP(S) URI."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri, None, None
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = host + (f":{parts.port}" if parts.port else "")
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    user = None if parts.username is None else unquote(parts.username)
    password = None if parts.password is None else unquote(parts.password)
    return clean, user, password


def default_tracking_uri(run_dir: str) -> str:
    """An absolute SQLite store in ``run_dir`` (never the deprecated file store)."""
    return "sqlite:///" + os.path.join(os.path.abspath(run_dir), "mlflow.db")


def resolve_tracking_uri(uri: str | None, run_dir: str) -> str:
    """``--tracking-uri`` > ``$MLFLOW_TRACKING_URI`` > SQLite in ``run_dir``.

    Credentials in an HTTP(S) URI (``http://user:password@host``) are moved into
    ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` of this process
    (MLflow sends them as basic auth; Ray workers started from here inherit
    them), so the URI that goes to Tune's param space, params.json and the
    console carries none.

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
    if uri.startswith(("http://", "https://")):
        clean, user, password = split_credentials(uri.rstrip("/"))
        if user:
            os.environ["MLFLOW_TRACKING_USERNAME"] = user
        if password:
            os.environ["MLFLOW_TRACKING_PASSWORD"] = password
        return clean
    if uri.startswith("databricks"):
        return uri.rstrip("/")
    raise ConfigError(
        f"tracking URI {redact_uri(uri)!r} is not supported: MLflow's file store is deprecated "
        "and relative paths break under Ray Tune. Fix: use sqlite:////abs/path/mlflow.db or "
        "http://HOST:PORT of an `mlflow server`.")


def check_tracking(uri: str, timeout: float = 5.0) -> None:
    """Fail fast (within ``timeout`` seconds) when the tracking store is unusable.

    Raises:
        ConfigError: naming the URI and the fix.
    """
    shown = redact_uri(uri)
    if uri.startswith("sqlite:///"):
        folder = os.path.dirname(uri[len("sqlite:///"):])
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"tracking URI {shown!r}: cannot create {folder!r} ({exc}). "
                              "Fix: pass a --tracking-uri in a writable folder.") from None
        if not os.access(folder, os.W_OK):
            raise ConfigError(f"tracking URI {shown!r}: folder {folder!r} is not writable. "
                              "Fix: pass a --tracking-uri in a writable folder.")
        return
    if uri.startswith(("http://", "https://")):
        import urllib.request
        clean = split_credentials(uri)[0]  # /health needs no credentials
        try:
            with urllib.request.urlopen(clean + "/health", timeout=timeout) as resp:
                if resp.status == 200:
                    return
        except Exception as exc:  # URLError, timeout, connection refused
            reason = redact_uri(exc)
        else:
            reason = f"HTTP {resp.status}"
        raise ConfigError(
            f"MLflow tracking server {shown!r} is unreachable ({reason}). Fix: start it "
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


def finish_run(uri: str, run_id: str, status: str = "FINISHED") -> bool:
    """Mark a run terminated; warn (never raise) when the server is unreachable."""
    try:
        check_tracking(uri)  # seconds, where MLflow's own retries would take minutes
        client(uri).set_terminated(run_id, status=status)
    except Exception as exc:
        reason = "server unreachable" if isinstance(exc, ConfigError) else redact_uri(exc)
        warnings.warn(f"MLflow run {run_id} at {redact_uri(uri)} could not be marked {status} "
                      f"({reason}); it shows RUNNING until `ald-tune backfill` (or a --resume) "
                      "reaches it.", RuntimeWarning, stacklevel=2)
        return False
    return True


def find_child_run(c, experiment_id: str, parent_run_id: str, trial_id: str):
    """The child run of ``trial_id`` under ``parent_run_id``, or None."""
    found = c.search_runs(
        [experiment_id], max_results=1,
        filter_string=f"tags.`{TRIAL_TAG}` = '{trial_id}' and tags.`{PARENT_TAG}` = '{parent_run_id}'")
    return found[0] if found else None


def _tune_trial_dir() -> str | None:
    """The running Tune trial's folder when it is a local path (not inside Tune: None)."""
    if "ray" not in sys.modules:  # never import Ray just to find out
        return None
    try:
        from ray import tune
        with warnings.catch_warnings():  # outside a trial Ray warns and returns None
            warnings.simplefilter("ignore")
            folder = tune.get_context().get_trial_dir()
    except Exception:
        return None
    return folder if folder and "://" not in folder and os.path.isdir(folder) else None


def backfill_hint(trial_dir: str | None) -> str:
    """The exact ``ald-tune backfill`` command for a trial folder ``<storage>/<name>/<trial>``."""
    if not trial_dir:
        return "`ald-tune backfill --storage STORAGE --name SWEEP` once the server is back"
    sweep = os.path.dirname(os.path.abspath(trial_dir))
    return (f"`ald-tune backfill --storage {os.path.dirname(sweep)} --name "
            f"{os.path.basename(sweep)}` once the server is back")


class TrialLogger:
    """Logs one trial into its child run (found again on retry and resume).

    Never raises because of tracking: when the server is unreachable it warns
    once, keeps metrics, images and final artifacts, and retries at every
    :meth:`flush` (each checkpoint and the end: 3 tries within ~3 s; one try
    per checkpoint while the outage lasts). What is still unsent at the end is
    rebuilt from Tune's ``result.json`` by ``ald-tune backfill``.

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
        for key, value in QUIET_HTTP_ENV.items():
            os.environ.setdefault(key, value)  # read by MLflow at each request
        self.uri, self.client = uri, client(uri)
        self.experiment_id, self.parent_run_id, self.trial_id = experiment_id, parent_run_id, trial_id
        self._spec = (dict(tags), dict(params), run_name)
        self.run_id: str | None = None
        self.buffer: list = []  # mlflow Metric objects not yet sent
        self.images: list = []  # (key, HxWxC array, step) not yet sent
        self.final_dir: str | None = None  # final artifacts not yet sent
        self.logged_steps: set[int] = set()  # steps in the store or in the buffer
        self._warned = False
        self._last_ok = True
        self._connect()

    # -- connection ------------------------------------------------------------------------
    def _connect(self) -> str | None:
        """Find or create the child run (its id, None if unreachable); drop buffered steps
        the store already holds."""
        if self.run_id is not None:
            return self.run_id
        tags, params, run_name = self._spec
        try:
            found = find_child_run(self.client, self.experiment_id, self.parent_run_id,
                                   self.trial_id)
            if found is not None:
                run_id = found.info.run_id
                self.client.update_run(run_id, status="RUNNING")
                # A run created just before an outage may lack (some of) its params.
                missing = {k: v for k, v in params.items() if k not in found.data.params}
            else:
                run_id = self.client.create_run(self.experiment_id, run_name=run_name, tags={
                    **tags, TRIAL_TAG: self.trial_id, PARENT_TAG: self.parent_run_id}).info.run_id
                missing = params
            if missing:
                log_params(self.client, run_id, missing)
            stored = {m.step for m in self.client.get_metric_history(run_id, "n_z")}
        except Exception as exc:  # tracking must never stop training
            self._warn("cannot open its MLflow run", exc)
            return None
        self.run_id = run_id
        self.buffer = [m for m in self.buffer if m.step not in stored]
        self.logged_steps |= stored
        return run_id

    def _warn(self, what: str, exc: BaseException) -> None:
        if self._warned:
            return
        self._warned = True
        warnings.warn(
            f"trial {self.trial_id}: {what} at {redact_uri(self.uri)} ({redact_uri(exc)}). "
            "Training continues; metrics stay buffered and are retried at each checkpoint; "
            f"anything still missing at the end: {backfill_hint(_tune_trial_dir())}.",
            RuntimeWarning, stacklevel=3)

    # -- logging ---------------------------------------------------------------------------
    def log_epoch(self, epoch: int, metrics: Mapping[str, Any]) -> None:
        """Buffer one epoch's metrics (step = epoch) unless that step is already logged."""
        from mlflow.entities import Metric

        if epoch in self.logged_steps:
            return
        now = int(time.time() * 1000)
        for k in TRACKED_METRICS:
            v = metrics.get(k)
            if isinstance(v, (int, float)):  # bools included: stopped/removed are metrics
                self.buffer.append(Metric(k, float(v), now, epoch))
        self.logged_steps.add(epoch)

    def log_images(self, images: Mapping[str, Any], step: int) -> None:
        """Sample/reconstruction grids with a step, for the UI's step slider (sent at flush)."""
        for key, img in images.items():
            self.images.append((key, img.numpy(), step))

    def log_final(self, trainer) -> None:
        """history.json, the n_z/metrics plot and the model (safetensors), plus the final n_z.

        Written to a folder first; if they cannot be sent they are kept in the trial's
        folder (``<trial>/mlflow_pending``), where ``ald-tune backfill`` finds them.
        """
        from .plots import plot_history

        try:
            folder = tempfile.mkdtemp(prefix="ald-tune-final-")
            paths = trainer.save_outputs(folder)
            plot = plot_history(trainer.history, os.path.join(folder, "history.png"),
                                title=f"{trainer.mode} run")
            files = [os.path.basename(p) for p in (paths["history"], paths["model"], plot)]
            with open(os.path.join(folder, PENDING_FILE), "w", encoding="utf-8") as fh:
                json.dump({"trial_id": self.trial_id, "files": files,
                           "tags": {"ald_tune.final_n_z": str(trainer.model.n_z)}}, fh)
        except Exception as exc:
            warnings.warn(f"trial {self.trial_id}: final outputs could not be written "
                          f"({redact_uri(exc)}); metrics are unaffected.", RuntimeWarning)
            return
        self.final_dir = folder
        if self.flush(tries=1 + len(FLUSH_BACKOFF_S)):
            return
        trial_dir = _tune_trial_dir()
        if trial_dir is not None:  # keep them where backfill will look
            target = os.path.join(trial_dir, PENDING_DIR)
            shutil.rmtree(target, ignore_errors=True)
            shutil.move(folder, target)
            self.final_dir = target
        warnings.warn(
            f"trial {self.trial_id}: final artifacts of MLflow run {self.run_id or '(not created)'} "
            f"could not be sent to {redact_uri(self.uri)}; they are kept in {self.final_dir}. "
            f"Fix: {backfill_hint(trial_dir)}.", RuntimeWarning)

    # -- sending ---------------------------------------------------------------------------
    def flush(self, tries: int | None = None) -> bool:
        """Send everything buffered; on failure keep it for the next flush. True if all sent.

        Args:
            tries: attempts, 1 s then 2 s apart; default 3, or 1 while the previous flush
                failed (a long outage then costs no waiting per checkpoint).
        """
        tries = tries or (1 + len(FLUSH_BACKOFF_S) if self._last_ok else 1)
        for attempt in range(tries):
            if attempt:
                time.sleep(FLUSH_BACKOFF_S[min(attempt, len(FLUSH_BACKOFF_S)) - 1])
            try:
                if self._send():
                    self._last_ok = True
                    return True
            except Exception as exc:  # tracking must never stop training
                self._warn("MLflow logging failed", exc)
        self._last_ok = False
        return False

    def _send(self) -> bool:
        run_id = self._connect()
        if run_id is None:
            return False
        while self.buffer:
            chunk = self.buffer[:1000]  # MLflow caps a batch at 1,000 metrics
            self.client.log_batch(run_id, metrics=chunk)
            del self.buffer[:len(chunk)]
        while self.images:
            key, img, step = self.images[0]
            self.client.log_image(run_id, img, key=key, step=step)
            del self.images[0]
        if self.final_dir is not None:
            send_pending(self.client, run_id, self.final_dir)
            self.final_dir = None
        return True

    def finish(self, status: str = "FINISHED") -> None:
        """Flush (3 tries) and mark the run terminated; warn, never raise, on failure."""
        sent = self.flush(tries=1 + len(FLUSH_BACKOFF_S))
        if sent and self.run_id is not None:
            try:
                self.client.set_terminated(self.run_id, status=status)
                return
            except Exception as exc:
                self._warn("cannot mark its MLflow run terminated", exc)
        n = len(self.buffer)
        warnings.warn(
            f"trial {self.trial_id}: MLflow run {self.run_id or '(not created)'} at "
            f"{redact_uri(self.uri)} is incomplete ({n} metric values unsent). Nothing is lost: "
            f"Tune's result.json holds every epoch. Fix: {backfill_hint(_tune_trial_dir())}.",
            RuntimeWarning)


def send_pending(c, run_id: str, folder: str) -> None:
    """Log the final artifacts and tags kept in ``folder`` (see ``log_final``), then delete it."""
    with open(os.path.join(folder, PENDING_FILE), encoding="utf-8") as fh:
        pending = json.load(fh)
    for name in pending["files"]:
        c.log_artifact(run_id, os.path.join(folder, name))
    for key, value in pending.get("tags", {}).items():
        c.set_tag(run_id, key, value)
    shutil.rmtree(folder, ignore_errors=True)
