"""The MLflow store: URIs, credentials, reachability, the client, experiments.

Only SQLite (``sqlite:////abs/path``) and HTTP servers are accepted: MLflow's file store
is deprecated, and Tune changes each trial's working directory, so every URI is made
absolute. :func:`check_tracking` fails within seconds where MLflow's own retries take
minutes, and makes a new SQLite store's schema once, under a file lock.

Credentials never reach params, tags, Tune's files or messages: a URI's
``user:password@`` part moves into ``MLFLOW_TRACKING_USERNAME`` /
``MLFLOW_TRACKING_PASSWORD`` (which MLflow reads itself; for a whole command with
:func:`resolve_tracking_uri`, for the span of a library call with :func:`mlflow_env`),
and every message that shows a URI or an exception goes through :func:`redact_uri`.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from ald_tune.config.constraints import check_name
from ald_tune.config.tags import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG
from ald_tune.errors import ConfigError
from ald_tune.tracking.empty_store import seed_new_store

# MLflow's client retries a failed request 7 times with exponential backoff and waits
# 120 s for an answer: minutes of stalled training per call while the server is down.
# Trial processes fail fast instead and retry on their own, bounded schedule.
QUIET_HTTP_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # one bar per logged model otherwise
}
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


def ui_hint(uri: str, run_dir: str = "runs") -> str:
    """How to open a tracking store's runs: ``ald-tune ui`` with the flags that find this
    store (none for the default one), or the server's own address for an ``http(s)://``
    store (which serves its UI itself)."""
    if uri.startswith(("http://", "https://")):
        return f"open {redact_uri(uri)} in a browser"
    if uri == parse_tracking_uri(default_tracking_uri("runs"), "runs")[0]:
        return "open it with `ald-tune ui`"
    if uri == parse_tracking_uri(default_tracking_uri(run_dir), run_dir)[0]:
        return f"open it with `ald-tune ui --run-dir {run_dir}`"
    return f"open it with `ald-tune ui --tracking-uri {uri}`"


def resolve_tracking_uri(uri: str | None, run_dir: str) -> str:
    """``--tracking-uri`` > ``$MLFLOW_TRACKING_URI`` > SQLite in ``run_dir``.

    Credentials in an HTTP(S) URI (``http://user:password@host``) are moved into
    ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` of this process
    (MLflow sends them as basic auth; Ray workers started from here inherit
    them), so the URI that goes to Tune's param space, params.json and the
    console carries none. A library call that must leave ``os.environ`` alone
    uses :func:`parse_tracking_uri` and :func:`mlflow_env`.

    Raises:
        ConfigError: a file-store URI or a scheme ald-tune cannot use.
    """
    clean, user, password = parse_tracking_uri(uri, run_dir)
    if user:
        os.environ["MLFLOW_TRACKING_USERNAME"] = user
    if password:
        os.environ["MLFLOW_TRACKING_PASSWORD"] = password
    return clean


def parse_tracking_uri(uri: str | None, run_dir: str) -> tuple[str, str | None, str | None]:
    """``(URI, username, password)``: the URI as :func:`resolve_tracking_uri` makes it, and
    the credentials it held; ``os.environ`` is left as it is.

    Raises:
        ConfigError: a file-store URI or a scheme ald-tune cannot use.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(run_dir)
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///") :]
        if not os.path.isabs("/" + path) or not path.startswith("/"):
            # "sqlite:///rel.db" is relative to the working directory, which Tune changes.
            return "sqlite:///" + os.path.abspath(path), None, None
        return uri, None, None
    if uri.startswith(("http://", "https://")):
        return split_credentials(uri.rstrip("/"))
    if uri.startswith("databricks"):
        return uri.rstrip("/"), None, None
    raise ConfigError(
        f"tracking URI {redact_uri(uri)!r} is not supported: MLflow's file store is deprecated "
        "and relative paths break under Ray Tune. Fix: use sqlite:////abs/path/mlflow.db or "
        "http://HOST:PORT of an `mlflow server`."
    )


def sqlite_path(uri: str) -> str | None:
    """The database file of a ``sqlite:///`` URI (None for any other URI)."""
    return uri[len("sqlite:///") :] if uri.startswith("sqlite:///") else None


#: One setting of the MLflow variables at a time (see :func:`mlflow_env`).
_ENV_LOCK = threading.Lock()
_env_scope: dict[str, Any] = {"depth": 0, "saved": {}}


@contextmanager
def mlflow_env(user: str | None = None, password: str | None = None) -> Iterator[None]:
    """Inside: the credentials (and :data:`QUIET_HTTP_ENV`, unless set) in ``os.environ``,
    where MLflow reads them at each request; after: ``os.environ`` as it was.

    For in-process library calls (the Optuna objective) that must not change the
    caller's environment. Nested and concurrent blocks (the threads of
    ``study.optimize(n_jobs=...)``) share the first block's setting; the last to leave
    puts the variables back.
    """
    keys = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", *QUIET_HTTP_ENV)
    with _ENV_LOCK:
        if _env_scope["depth"] == 0:
            _env_scope["saved"] = {k: os.environ.get(k) for k in keys}
            for key, value in (
                ("MLFLOW_TRACKING_USERNAME", user),
                ("MLFLOW_TRACKING_PASSWORD", password),
            ):
                if value:
                    os.environ[key] = value
            for key, value in QUIET_HTTP_ENV.items():
                os.environ.setdefault(key, value)
        _env_scope["depth"] += 1
    try:
        yield
    finally:
        with _ENV_LOCK:
            _env_scope["depth"] -= 1
            if _env_scope["depth"] == 0:
                for key, value in _env_scope["saved"].items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value


def check_tracking(uri: str, timeout: float = 5.0, *, create: bool = True) -> None:
    """Fail fast (within ``timeout`` seconds) when the tracking store is unusable.

    A SQLite store must be a SQLite file (or not exist yet); a new one gets MLflow's
    schema here, once, under a file lock (:func:`init_sqlite_store`), so commands started
    together on a new store do not race to create it.

    Args:
        uri: the resolved tracking URI.
        timeout: seconds to wait for an HTTP server's answer.
        create: False for commands that only read: a SQLite store that does not exist is
            refused, never created.

    Raises:
        ConfigError: naming the URI and the fix.
    """
    shown = redact_uri(uri)
    path = sqlite_path(uri)
    if path is not None:
        if not create and not os.path.lexists(path):
            raise ConfigError(
                f"there is no MLflow store at {path!r}: nothing was tracked there. Fix: pass "
                "the --run-dir (or --tracking-uri) the sweeps logged to."
            )
        _check_sqlite_file(path, shown)
        folder = os.path.dirname(path)
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
        init_sqlite_store(uri)
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


#: The first bytes of every SQLite 3 database file.
SQLITE_MAGIC = b"SQLite format 3\x00"


def _check_sqlite_file(path: str, shown: str) -> None:
    """``path`` is a SQLite database, an empty file, or nothing yet."""
    fix = "Fix: pass --tracking-uri sqlite:////abs/path/mlflow.db (a new or an MLflow file)."
    if os.path.isdir(path):
        raise ConfigError(f"tracking URI {shown!r} names a folder, not a SQLite file. {fix}")
    if not os.path.exists(path):
        return
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise ConfigError(
            f"tracking URI {shown!r}: cannot read it ({exc.strerror}). {fix}"
        ) from None
    if head and head != SQLITE_MAGIC:
        raise ConfigError(f"tracking URI {shown!r}: the file is not a SQLite database. {fix}")


#: SQLite stores this process has checked (their schema exists and is current).
_READY: set[str] = set()


def init_sqlite_store(uri: str) -> None:
    """Open the SQLite store once per process; a new one gets MLflow's schema.

    MLflow creates its tables when a store is first opened, and two processes opening a
    new store together both try (the second fails with "table datasets already exists"):
    this runs under a lock on ``<db>.lock``, so one creates and the other finds them.

    Raises:
        ConfigError: a store MLflow cannot open (an older schema, a damaged file).
    """
    if uri in _READY:
        return
    from filelock import FileLock, Timeout

    path = sqlite_path(uri) or ""
    try:
        for attempt in range(5):
            # another sweep's storage probe may remove the new, empty folder between our
            # makedirs and the lock file's creation: a race to retry, not an error
            os.makedirs(os.path.dirname(path), exist_ok=True)
            try:
                with FileLock(path + ".lock", timeout=120):
                    if not os.path.lexists(path):
                        seed_new_store(path, artifact_root(uri))
                    client(uri).search_experiments(max_results=1)  # creates the tables if new
                break
            except FileNotFoundError:
                if attempt == 4:
                    raise
    except Timeout:
        raise ConfigError(
            f"tracking store {path!r}: another process has held {path + '.lock'!r} for 120 s. "
            "Fix: wait for it, or remove the lock file if no ald-tune runs."
        ) from None
    except Exception as exc:  # MlflowException, sqlalchemy errors: one line, not a traceback
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"tracking store {path!r} cannot be opened by MLflow ({reason}). Fix: pass "
            "another --tracking-uri, or `mlflow db upgrade` for a store of an older MLflow."
        ) from None
    _READY.add(uri)


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
    """The experiment's id, created with an absolute artifact folder if it is new (tagged
    so that MLflow 3's UI opens it on its runs, not its GenAI pages).

    Raises:
        ConfigError: a name that is not a plain name (it names the artifact folder).
    """
    check_name(name, "--experiment")
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    root = artifact_root(c.tracking_uri)
    try:
        return c.create_experiment(
            name,
            artifact_location=root and os.path.join(root, name),
            tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
        )
    except Exception:  # made meanwhile by a command started together with this one
        exp = c.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id
