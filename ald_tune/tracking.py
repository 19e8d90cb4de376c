"""MLflow tracking: one parent run per sweep, one nested child run per trial.

Ray's ``MLflowLoggerCallback`` runs on the driver only, cannot nest runs and
does not reopen runs on restore, so each trial logs through
:class:`ald_tune.trial_logger.TrialLogger`, which *finds or creates* its child run by the trial id
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
import subprocess
import warnings
from typing import Any, Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

from .errors import ConfigError
from .kinds import COMPARE_TAG, DATASET_TAG, MAIN_RULE_TAG, SWEEP_TAG, SweepKind
from .vocabulary import TRACKED

TRIAL_TAG = "ald_tune.trial_id"
PARENT_TAG = "mlflow.parentRunId"
NODES_TAG = "ald_tune.nodes"            # the Ray nodes a trial ran on, comma-separated
FINAL_NZ_TAG = "ald_tune.final_n_z"
COMPLETE_TAG = "ald_tune.compare_complete"  # every sweep of that compare has finished
WALL_METRIC = "sweep_wall_s"            # one value per fit of the sweep (resumes add one)
CONFIG_ARTIFACT = "config.json"         # the whole config, once per sweep
TRACKED_METRICS = TRACKED
#: The few config fields logged as MLflow params, the ones people filter and compare runs
#: by; the whole config is the parent run's ``config.json`` artifact (a run's params
#: table would otherwise bury the image cards under ~60 rows).
FILTER_PARAMS = ("data.name", "model.arch", "train.epochs", "train.batch_size", "train.lr",
                 "train.beta", "train.seed", "ald.rule", "ald.n_z_init", "eval.fid_extractor",
                 "tune.metric", "tune.scheduler", "tune.cpus_per_trial", "tune.gpus_per_trial")
# MLflow's client retries a failed request 7 times with exponential backoff and waits
# 120 s for an answer: minutes of stalled training per call while the server is down.
# Trial processes fail fast instead and retry on their own, bounded schedule.
QUIET_HTTP_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
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


def filter_params(cfg) -> dict[str, Any]:
    """The :data:`FILTER_PARAMS` of a config, flat."""
    flat = cfg.flat()
    return {k: flat[k] for k in FILTER_PARAMS if k in flat}


def find_parent_run(c, exp_id: str, sweep: str):
    """The newest parent run named ``sweep`` in the experiment, or None.

    Filters in Python rather than in an MLflow filter string, so a sweep name can hold
    any character without being read as part of the filter.
    """
    for run in search_all(c, exp_id, order_by=["attributes.start_time DESC"]):
        if run.data.tags.get(SWEEP_TAG) == sweep and PARENT_TAG not in run.data.tags:
            return run
    return None


def search_all(c, exp_id: str, filter_string: str = "", order_by: list[str] | None = None):
    """Every run of an experiment matching ``filter_string``, page by page."""
    token = None
    while True:
        page = c.search_runs([exp_id], filter_string=filter_string, max_results=1000,
                             order_by=order_by, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def start_parent_run(uri: str, experiment: str, sweep: str, *, kind: SweepKind, cfg,
                     space: str | None, resume: bool, compare: str | None = None,
                     main_rule: str | None = None, runner: str | None = None) -> tuple[str, str]:
    """Create the sweep's parent run, or find it again with ``resume``.

    Its kind (and rule) are written here, once, as tags; the few filter params are
    params and the whole config is the ``config.json`` artifact.

    Returns:
        (experiment_id, parent_run_id)
    """
    from . import __version__

    c = client(uri)
    exp_id = ensure_experiment(c, experiment)
    found = find_parent_run(c, exp_id, sweep) if resume else None
    if found is not None:
        run_id = found.info.run_id
        if found.info.status != "RUNNING":
            c.update_run(run_id, status="RUNNING")
        return exp_id, run_id
    tags = {SWEEP_TAG: sweep, **kind.tags(), "ald_tune.mode": kind.mode,
            DATASET_TAG: cfg.data.name, "ald_tune.space": str(space),
            "ald_tune.version": __version__}
    if compare:
        tags[COMPARE_TAG] = compare
    if main_rule:
        tags[MAIN_RULE_TAG] = main_rule
    if runner:
        tags["ald_tune.runner"] = runner
    commit = git_commit()
    if commit:
        tags["ald_tune.git_commit"] = commit
    run = c.create_run(exp_id, tags=tags, run_name=sweep)
    log_params(c, run.info.run_id, filter_params(cfg))
    c.log_dict(run.info.run_id, cfg.to_dict(), CONFIG_ARTIFACT)
    return exp_id, run.info.run_id


def log_sweep_wall(uri: str, run_id: str, wall_s: float, step: int) -> None:
    """One fit's wall time on the parent run (its sum is the sweep's wall time); the sweep
    file in Tune's folder holds it too, so a failure here only warns."""
    import time

    from mlflow.entities import Metric
    try:
        check_tracking(uri)  # seconds, where MLflow's own retries would take minutes
        client(uri).log_batch(run_id, metrics=[Metric(WALL_METRIC, float(wall_s),
                                                      int(time.time() * 1000), step)])
    except Exception as exc:
        warnings.warn(f"MLflow run {run_id}: the sweep's wall time could not be logged "
                      f"({redact_uri(exc)}); it is in the sweep's Tune folder "
                      f"(ald_tune_sweep.json).", RuntimeWarning, stacklevel=2)


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
    for run in search_all(c, experiment_id, f"tags.`{PARENT_TAG}` = '{run_id_text(parent_run_id)}'"):
        if run.data.tags.get(TRIAL_TAG) == trial_id:
            return run
    return None


def run_id_text(run_id: str) -> str:
    """A run id for an MLflow filter string: MLflow's ids are hex, so anything else is refused
    (it could otherwise end the quoted value and change the filter)."""
    if not re.fullmatch(r"[0-9a-fA-F-]{1,64}", str(run_id)):
        raise ConfigError(f"{run_id!r} is not an MLflow run id (hex digits).")
    return str(run_id)
