"""A run's final model as an MLflow 3 logged model, and loading one back by URI.

:func:`log_model` turns a run's ``model.safetensors`` into a logged model (a pyfunc from
code, :mod:`ald_tune.tracking.pyfunc`: no pickle) with the model's n_z as a param and
the run's last-epoch metrics, plus ``final_n_z``, linked to it. MLflow compares params
as strings, so a numeric search goes through the linked metric::

    mlflow.search_logged_models(
        experiment_ids=[exp_id],
        filter_string="metrics.final_n_z <= 8",
        order_by=[{"field_name": "metrics.recon_loss", "ascending": True}],
        max_results=1, output_format="list",
    )

:func:`load_model` is ``ald_tune.load_model``: a local file as before, or a
``models:/<model_id>`` / ``runs:/<run_id>/...`` URI, downloaded and read with the same
safe loader (the logged code file is never run).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import time

from ald_tune.engine.artifacts import MODEL_FILE
from ald_tune.engine.artifacts import load_model as load_model_file
from ald_tune.engine.user_code import Factory
from ald_tune.errors import DataError
from ald_tune.tracking.runs import TRACKED_METRICS, run_id_text
from ald_tune.tracking.store import client, mlflow_env, parse_tracking_uri, redact_uri, sqlite_path

MODEL_NAME = "model"  # each run's logged model (MLflow shows it under the run's Outputs)
MODEL_TYPE = "ald-tune-vae"
NZ_METRIC = "final_n_z"  # the model's n_z as a linked metric (numeric filters)
#: The code file MLflow logs with each model (models from code, :mod:`.pyfunc`).
CODE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pyfunc_code.py")
WEIGHTS = "weights"  # the artifact key of the model file in the logged model
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")  # models:/, runs:/, s3://... (not C:\)


def model_n_z(path: str) -> int:
    """The n_z stored in a model file's metadata (read from the header only)."""
    from safetensors import safe_open

    with safe_open(path, framework="pt") as fh:
        return int((fh.metadata() or {})["n_z"])


def log_model(c, run_id: str, model_file: str, step: int | None = None) -> str:
    """Log ``model_file`` as the run's MLflow logged model; returns its model id.

    Its params are the run's params plus ``n_z``; its tags the run's own (kind, rule,
    seed...); its metrics the run's tracked metrics at ``step`` (default: the last
    epoch logged) and ``final_n_z``, each also on the run as before. A run that already
    has a ready logged model (a retried send) gets no second one.

    Args:
        c: an ``MlflowClient`` of the run's store (no active run is needed).
        run_id: the run the model comes from.
        model_file: its ``model.safetensors``.
        step: the epoch the model ended at.
    """
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus

    run = c.get_run(run_id)
    exp_id = run.info.experiment_id
    found = _ready_model(c, exp_id, run_id)
    if found is not None:
        return found
    n_z = model_n_z(model_file)
    model = c.create_logged_model(
        exp_id,
        name=MODEL_NAME,
        source_run_id=run_id,
        params={**run.data.params, "n_z": str(n_z)},
        tags={k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
        model_type=MODEL_TYPE,
    )
    try:
        _save_and_send(c, model, run_id, model_file)
        step = _last_step(c, run_id) if step is None else step
        c.log_outputs(run_id, [LoggedModelOutput(model.model_id, step)])
        c.log_batch(run_id, metrics=_linked_metrics(c, run, model.model_id, step, n_z))
    except BaseException:
        with contextlib.suppress(Exception):  # the server may be what failed
            c.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
        raise
    c.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    return model.model_id


def _save_and_send(c, model, run_id: str, model_file: str) -> None:
    """Write the pyfunc model folder (code file, weights, MLmodel) and upload it."""
    import mlflow.pyfunc
    from mlflow.models import Model

    with tempfile.TemporaryDirectory(prefix="ald-tune-model-") as tmp, mlflow_env():
        weights = os.path.join(tmp, MODEL_FILE)  # the artifact keeps the file's name
        shutil.copyfile(model_file, weights)
        local = os.path.join(tmp, MODEL_NAME)
        # No signature, on purpose: a tensor signature fixes one dtype and MLflow then
        # refuses float64 input, which predict casts; MLflow's warning that it has none
        # is kept out of every trial's log.
        _quiet_signature_note()
        mlflow.pyfunc.save_model(
            local,
            python_model=CODE_FILE,  # models from code: nothing pickled
            artifacts={WEIGHTS: weights},
            pip_requirements=_requirements(),  # given: no inference subprocess
            mlflow_model=Model(
                artifact_path=model.artifact_location, model_id=model.model_id, run_id=run_id
            ),
        )
        c.log_model_artifacts(model.model_id, local)


class _NoSignatureNote(logging.Filter):
    """Drops MLflow's "Failed to infer model signature" warning for ald-tune's models (they
    have none on purpose); a filter, not a level change, so concurrent trials (Optuna's
    threads) cannot leave the logger silenced."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to infer model signature")


def _quiet_signature_note() -> None:
    log = logging.getLogger("mlflow.pyfunc")
    if not any(isinstance(f, _NoSignatureNote) for f in log.filters):
        log.addFilter(_NoSignatureNote())


def _ready_model(c, exp_id: str, run_id: str) -> str | None:
    """The id of a ready ald-tune logged model of this run, if one was logged before."""
    from mlflow.entities import LoggedModelStatus

    found = c.search_logged_models(
        [exp_id], filter_string=f"source_run_id = '{run_id_text(run_id)}'", max_results=50
    )
    for m in found:
        if m.name == MODEL_NAME and m.status == LoggedModelStatus.READY:
            return m.model_id
    return None


def _requirements() -> list[str]:
    """What ``mlflow models serve`` would install: ald-tune and its model stack, pinned as
    MLflow pins them."""
    from mlflow.utils.requirements_utils import _get_pinned_requirement

    out = []
    for name in ("ald-tune", "torch", "safetensors", "numpy", "mlflow"):
        try:
            out.append(_get_pinned_requirement(name))
        except Exception:  # not installed as a distribution (a bare checkout): unpinned
            out.append(name)
    return out


def _last_step(c, run_id: str) -> int:
    return max((m.step for m in c.get_metric_history(run_id, "n_z")), default=0)


def _linked_metrics(c, run, model_id: str, step: int, n_z: int) -> list:
    """The run's tracked metrics at ``step`` (same values and times: the run's history
    gains no row) and ``final_n_z``, each linked to the model."""
    from mlflow.entities import Metric

    out = [Metric(NZ_METRIC, float(n_z), int(time.time() * 1000), step, model_id=model_id)]
    for key in sorted(set(run.data.metrics) & set(TRACKED_METRICS)):
        for m in c.get_metric_history(run.info.run_id, key):
            if m.step == step:
                out.append(Metric(key, m.value, m.timestamp, m.step, model_id=model_id))
    return out


def load_model(path: str, factory: Factory | None = None, *, tracking_uri: str | None = None):
    """Rebuild a saved VAE from a file or an MLflow URI (no pickle, no code file run).

    Args:
        path: a ``model.safetensors`` written by ald-tune, or an MLflow URI of one:
            ``models:/<model_id>`` (a logged model), ``models:/<name>/<version>``,
            ``models:/<name>/latest`` or ``models:/<name>@<alias>`` (a registered one, looked
            up in the store ``tracking_uri`` names), ``runs:/<run_id>/model.safetensors``
            (or any artifact folder holding one).
        factory: the user's model factory, when the model was trained with one.
        tracking_uri: the store a URI is in; default: MLflow's (``mlflow.set_tracking_uri``
            or ``$MLFLOW_TRACKING_URI``), else ald-tune's default store (``runs/mlflow.db``).

    Raises:
        DataError: a URI that does not resolve, or holds no model file; and every
            error of :func:`ald_tune.engine.artifacts.load_model`.

    Example:
        >>> vae = ald_tune.load_model("models:/m-4f2a...")        # doctest: +SKIP
        >>> vae.n_z
        7
    """
    if not _URI.match(str(path)) or os.path.exists(path):
        return load_model_file(path, factory)
    with tempfile.TemporaryDirectory(prefix="ald-tune-load-") as tmp:
        return load_model_file(_download(str(path), tmp, tracking_uri), factory)


def _download(uri: str, dst: str, tracking_uri: str | None) -> str:
    """The model file of ``uri``, downloaded under ``dst``."""
    import mlflow.artifacts

    if tracking_uri is None and mlflow.is_tracking_uri_set():  # mlflow.set_tracking_uri
        tracking_uri = mlflow.get_tracking_uri()
    store, user, password = parse_tracking_uri(tracking_uri, "runs")
    fix = (
        "Fix: check the id (mlflow.search_logged_models, or the run's Outputs in the MLflow "
        "UI) or the registered name, version or alias, and pass tracking_uri= (or set "
        "$MLFLOW_TRACKING_URI) for the store it is in."
    )
    db = sqlite_path(store)
    if db is not None and not os.path.isfile(db):  # MLflow would create an empty store
        raise DataError(f"{uri} does not resolve: no MLflow store at {db}. {fix}")

    try:
        with mlflow_env(user, password):
            source = _models_uri_location(client(store), uri) if uri.startswith("models:") else uri
            local = mlflow.artifacts.download_artifacts(source, dst_path=dst, tracking_uri=store)
    except Exception as exc:
        reason = redact_uri(f"{type(exc).__name__}: {exc}").splitlines()[0][:200]
        raise DataError(
            f"{uri} does not resolve in {redact_uri(store)} ({reason}). {fix}"
        ) from None
    found = _model_file(local)
    if found is None:
        raise DataError(
            f"{uri} holds no {MODEL_FILE}. Fix: pass models:/<model_id> of an ald-tune "
            f"model or runs:/<run_id>/{MODEL_FILE}."
        )
    return found


def _models_uri_location(c, uri: str) -> str:
    """Where the model of a ``models:/`` URI lies, looked up in ``c``'s own store: a logged
    model (``models:/<model_id>``) or a registered one (``models:/<name>/<version>``,
    ``.../latest``, ``models:/<name>@<alias>``).

    Written here because MLflow resolves these URIs in its global registry
    (``mlflow.get_registry_uri()``) whatever ``tracking_uri`` ``download_artifacts`` gets
    (its ``ModelsArtifactRepository`` says so in a TODO), and on a default store it then
    creates an empty ``mlflow.db`` in the working directory. MLflow's own parser reads the
    URI; ``c`` (registry = its tracking store) answers it.
    """
    from mlflow.store.artifact.utils.models import get_model_name_and_version

    found = get_model_name_and_version(c, uri)
    if len(found) == 2:  # a registered version: where it is stored
        uri = str(c.get_model_version_download_uri(*found))
        if not uri.startswith("models:"):
            return uri
        found = get_model_name_and_version(c, uri)  # its source: a logged model
    if len(found) != 1:
        raise DataError(f"{uri} names a registered model, not where one is stored.")
    return c.get_logged_model(found[0]).artifact_location


def _model_file(local: str) -> str | None:
    if os.path.isfile(local):
        return local
    for root, _dirs, files in sorted(os.walk(local)):
        if MODEL_FILE in files:
            return os.path.join(root, MODEL_FILE)
    return None
