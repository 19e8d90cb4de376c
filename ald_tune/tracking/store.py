"""The MLflow store: URIs, credentials, reachability, the client, experiments.

Only SQLite (``sqlite:////abs/path``) and HTTP servers are accepted: MLflow's file store
is deprecated, and Tune changes each trial's working directory, so every URI is made
absolute. :func:`check_tracking` fails within seconds where MLflow's own retries take
minutes.

Credentials never reach params, tags, Tune's files or messages: a URI's
``user:password@`` part moves into ``MLFLOW_TRACKING_USERNAME`` /
``MLFLOW_TRACKING_PASSWORD`` (which MLflow reads itself), and every message
that shows a URI or an exception goes through :func:`redact_uri`.
"""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from ald_tune.config.constraints import check_name
from ald_tune.errors import ConfigError

# MLflow's client retries a failed request 7 times with exponential backoff and waits
# 120 s for an answer: minutes of stalled training per call while the server is down.
# Trial processes fail fast instead and retry on their own, bounded schedule.
QUIET_HTTP_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
SECRET_ENV = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD")
# scheme://userinfo@host: the userinfo runs to the LAST "@" before the host's "/", so a
# password holding a raw "@" is masked whole.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/\s]*)@")


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
        user, colon, _ = m.group("userinfo").partition(":")
        if not colon or "@" in user:
            return m.group("scheme") + "***@"
        return f"{m.group('scheme')}{user}:***@"

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
        path = uri[len("sqlite:///") :]
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
        "http://HOST:PORT of an `mlflow server`."
    )


def check_tracking(uri: str, timeout: float = 5.0) -> None:
    """Fail fast (within ``timeout`` seconds) when the tracking store is unusable.

    Raises:
        ConfigError: naming the URI and the fix.
    """
    shown = redact_uri(uri)
    if uri.startswith("sqlite:///"):
        folder = os.path.dirname(uri[len("sqlite:///") :])
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"tracking URI {shown!r}: cannot create {folder!r} ({exc}). "
                "Fix: pass a --tracking-uri in a writable folder."
            ) from None
        if not os.access(folder, os.W_OK):
            raise ConfigError(
                f"tracking URI {shown!r}: folder {folder!r} is not writable. "
                "Fix: pass a --tracking-uri in a writable folder."
            )
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
            "(`mlflow server --host 127.0.0.1 --port PORT --backend-store-uri "
            "sqlite:////abs/mlflow.db`), "
            "pass another --tracking-uri, or run with --no-tracking."
        )


def client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def git_commit() -> str | None:
    """The checkout's commit when ald-tune runs from a git checkout, else None."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=os.path.dirname(os.path.abspath(__file__)),
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def artifact_root(uri: str) -> str | None:
    """For SQLite stores: ``mlartifacts`` beside the database, absolute.

    MLflow's default (``./mlruns``) is relative to the working directory, which
    Tune changes per trial; an HTTP server decides for itself (None).
    """
    if uri.startswith("sqlite:///"):
        return os.path.join(os.path.dirname(uri[len("sqlite:///") :]), "mlartifacts")
    return None


def ensure_experiment(c, name: str) -> str:
    """The experiment's id, created with an absolute artifact folder if it is new.

    Raises:
        ConfigError: a name that is not a plain name (it names the artifact folder).
    """
    check_name(name, "--experiment")
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    root = artifact_root(c.tracking_uri)
    return c.create_experiment(name, artifact_location=root and os.path.join(root, name))
