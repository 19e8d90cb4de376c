"""One trial's MLflow logging: :class:`TrialLogger` and its engine callback (the final
outputs wait in a folder of their own until sent: :mod:`ald_tune.tracking.pending`).

A trial finds or creates its child run under the sweep's parent run (so a retry
or a ``--resume`` continues it, and epochs already logged are never logged twice:
steps are checked against the run's history), buffers metrics and images, and sends
them at each checkpoint and at the end; when the server is away it keeps everything and
retries, and what is still unsent at the end is kept in the trial's folder for
``ald-tune backfill``. Nothing here raises out of a trial because of tracking.
The URIs, credentials and parent runs live in :mod:`ald_tune.tracking`.

Why not Ray's own MLflow integration (read in Ray 2.60's
``ray/air/integrations/mlflow.py`` and ``ray/air/_internal/mlflow.py``):
``MLflowLoggerCallback`` *can* nest runs (pass ``tags={"mlflow.parentRunId": ...}``),
but it runs on the driver with one ``tags`` dict for every trial (only ``trial_name``
differs, so no per-trial seed or kind tags); it logs every numeric key Tune reports
(Ray's bookkeeping too) at step ``training_iteration``, one request per key, and no
images, model or history: only, if asked, the whole trial folder at the end. Its
trial -> run map lives in the driver's memory (no ``get_state``), so a ``--resume`` by a
new driver opens a second run per trial, and a trial retried from a checkpoint logs its
re-reported epochs again. It neither buffers nor retries: a request that fails makes
``_run_exists`` answer "no such run", and the metrics go to MLflow's fluent active run
instead (a new run, or an error in the driver). ``setup_mlflow`` (in the trial) starts a
new fluent run each time, so a retry does not continue its run either. And the Optuna
objective and ``ald-tune train`` log the same runs without Ray.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from ald_tune.config.trial import TrialParams
from ald_tune.config.vocabulary import PREFIX_KEY, PREFIX_METRICS, PREFIX_MLFLOW, prefix_curve
from ald_tune.engine.artifacts import captioned
from ald_tune.engine.callbacks import Callback, TrainerView
from ald_tune.engine.trainer import epoch_metrics
from ald_tune.tracking.pending import (
    backfill_hint,
    keep_for_backfill,
    send_pending,
    tune_trial_dir,
    write_pending,
)
from ald_tune.tracking.runs import (
    NODES_TAG,
    PARENT_TAG,
    TRACKED_METRICS,
    TRIAL_TAG,
    filter_params,
    find_child_run,
    log_params,
    run_tags,
    trial_tags,
)
from ald_tune.tracking.store import QUIET_HTTP_ENV, client, redact_uri

FLUSH_BACKOFF_S = (1.0, 2.0)  # sleeps between the 3 tries of a flush: at most 3 s in all
#: How a sweep names the MLflow trial callback (:func:`trial_callback`) in its trials'
#: config (the backfill finds tracked trials by it).
TRIAL_CALLBACK = "ald_tune.tracking.trial_logger:trial_callback"


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
        parent_run_id: the sweep's parent run; None for a run of its own
            (``ald-tune train --tracking-uri``).
        trial_id: Ray's trial id (stable across retries and restores).
        tags: extra tags (kind, rule, seed...).
        params: the trial's filter params (flat).
        run_name: display name of the child run.
        run_id: continue this run (a resumed ``ald-tune train``) instead of finding or
            creating one by the trial id.
    """

    def __init__(
        self,
        uri: str,
        experiment_id: str,
        parent_run_id: str | None,
        trial_id: str,
        tags: Mapping[str, str],
        params: Mapping[str, Any],
        run_name: str,
        run_id: str | None = None,
    ) -> None:
        for key, value in QUIET_HTTP_ENV.items():
            os.environ.setdefault(key, value)  # read by MLflow at each request
        self.uri, self.client = uri, client(uri)
        self.experiment_id, self.parent_run_id, self.trial_id = (
            experiment_id,
            parent_run_id,
            trial_id,
        )
        self._spec = (dict(tags), dict(params), run_name)
        self.run_id: str | None = None
        self.buffer: list = []  # mlflow Metric objects not yet sent
        self.images: list = []  # (key, HxWxC array, step) not yet sent
        self.final_dir: str | None = None  # final artifacts not yet sent
        self.model_id: str | None = None  # the final model's MLflow logged model, once sent
        self.logged_steps: set[int] = set()  # steps in the store or in the buffer
        self.nodes: set[str] = set()  # Ray nodes seen (the run's NODES_TAG)
        self._nodes_sent: set[str] = set()
        self._warned = False
        self._last_ok = True
        self._reopen = run_id
        self._connect()

    # -- connection ------------------------------------------------------------------------
    def _connect(self) -> str | None:
        """Find or create the child run (its id, None if unreachable); drop buffered steps
        the store already holds."""
        if self.run_id is not None:
            return self.run_id
        tags, params, run_name = self._spec
        try:
            if self._reopen is not None:
                found = self.client.get_run(self._reopen)
            elif self.parent_run_id is not None:
                found = find_child_run(
                    self.client, self.experiment_id, self.parent_run_id, self.trial_id
                )
            else:
                found = None
            if found is not None:
                run_id = found.info.run_id
                self.client.update_run(run_id, status="RUNNING")
                sent = {n for n in found.data.tags.get(NODES_TAG, "").split(",") if n}
                self.nodes |= sent
                self._nodes_sent = sent
                # A run created just before an outage may lack (some of) its params.
                missing = {k: v for k, v in params.items() if k not in found.data.params}
            else:
                parent = {PARENT_TAG: self.parent_run_id} if self.parent_run_id else {}
                like = self.client.get_run(self.parent_run_id).data.tags if parent else None
                run_id = self.client.create_run(
                    self.experiment_id,
                    run_name=run_name,
                    tags=run_tags({**tags, TRIAL_TAG: self.trial_id, **parent}, like),
                ).info.run_id
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
            f"anything still missing at the end: {backfill_hint(tune_trial_dir())}.",
            RuntimeWarning,
            stacklevel=3,
        )

    # -- logging ---------------------------------------------------------------------------
    def log_epoch(self, epoch: int, metrics: Mapping[str, Any]) -> None:
        """Buffer one epoch's metrics (step = epoch) unless that step is already logged."""
        from mlflow.entities import Metric

        node = metrics.get("node_id")
        if isinstance(node, str) and node:
            self.nodes.add(node)
        if epoch in self.logged_steps:
            return
        now = int(time.time() * 1000)
        for k in TRACKED_METRICS:
            v = metrics.get(k)
            if isinstance(v, (int, float)):  # bools included: stopped/removed are metrics
                self.buffer.append(Metric(k, float(v), now, epoch))
        self.buffer += prefix_metrics(metrics.get(PREFIX_KEY), now)
        self.logged_steps.add(epoch)

    def log_images(self, images: Mapping[str, Any], step: int) -> None:
        """Sample/reconstruction grids with a step, for the UI's step slider (sent at flush)."""
        for key, img in images.items():
            self.images.append((key, img.numpy(), step))

    def log_final(self, trainer: TrainerView) -> None:
        """history.json, the n_z/metrics plot and the model (safetensors, and as an MLflow
        logged model: :func:`~ald_tune.tracking.models.log_model`), plus the final n_z.

        Written to a folder first; if they cannot be sent they are kept in the trial's
        folder (``<trial>/mlflow_pending``), where ``ald-tune backfill`` finds them.
        """
        try:
            folder = write_pending(trainer, self.trial_id)
        except Exception as exc:
            warnings.warn(
                f"trial {self.trial_id}: final outputs could not be written "
                f"({redact_uri(exc)}); metrics are unaffected.",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        self.final_dir = folder
        if self.flush(tries=1 + len(FLUSH_BACKOFF_S)):
            return
        trial_dir = tune_trial_dir()
        self.final_dir = keep_for_backfill(folder, trial_dir)
        warnings.warn(
            f"trial {self.trial_id}: final artifacts of MLflow run "
            f"{self.run_id or '(not created)'} "
            f"could not be sent to {redact_uri(self.uri)}; they are kept in {self.final_dir}. "
            f"Fix: {backfill_hint(trial_dir)}.",
            RuntimeWarning,
            stacklevel=2,
        )

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
            del self.buffer[: len(chunk)]
        if self.nodes != self._nodes_sent:
            self.client.set_tag(run_id, NODES_TAG, ",".join(sorted(self.nodes)))
            self._nodes_sent = set(self.nodes)
        while self.images:
            key, img, step = self.images[0]
            self.client.log_image(run_id, img, key=key, step=step)
            del self.images[0]
        if self.final_dir is not None:
            self.model_id = send_pending(self.client, run_id, self.final_dir)
            self.final_dir = None
        return True

    def finish(self, status: str = "FINISHED", tags: Mapping[str, str] | None = None) -> None:
        """Flush (3 tries), set ``tags`` and mark the run terminated; warn, never raise."""
        sent = self.flush(tries=1 + len(FLUSH_BACKOFF_S))
        if sent and self.run_id is not None:
            try:
                for key, value in (tags or {}).items():
                    self.client.set_tag(self.run_id, key, value)
                self.client.set_terminated(self.run_id, status=status)
                return
            except Exception as exc:
                self._warn("cannot mark its MLflow run terminated", exc)
        n = len(self.buffer)
        warnings.warn(
            f"trial {self.trial_id}: MLflow run {self.run_id or '(not created)'} at "
            f"{redact_uri(self.uri)} is incomplete ({n} metric values unsent). Nothing is lost: "
            f"Tune's result.json holds every epoch. Fix: {backfill_hint(tune_trial_dir())}.",
            RuntimeWarning,
            stacklevel=2,
        )


def prefix_metrics(curve: Any, stamp: int, have: Callable[[str], set] | None = None) -> list:
    """A nested run's prefix curve as MLflow metrics: ``prefix.<metric>`` with step = the
    prefix length (the UI draws each against n_z), leaving out the steps ``have(key)``
    says the run already holds."""
    from mlflow.entities import Metric

    out = []
    by_size = prefix_curve(curve)
    for m in PREFIX_METRICS if by_size else ():
        key, skip = PREFIX_MLFLOW + m, have(PREFIX_MLFLOW + m) if have else set()
        out += [
            Metric(key, vals[m], stamp, k)
            for k, vals in by_size.items()
            if m in vals and k not in skip
        ]
    return out


class MLflowCallback(Callback):
    """A run's MLflow logging as an engine callback (what the Ray trainable, the Optuna
    objective and ``ald-tune train --tracking-uri`` add to the trainer).

    Every epoch: its metrics (and, on the cadence's image epochs, the image grids) go
    to the buffer; at each checkpoint the buffer is sent; at the end the final artifacts
    (on success) and the run's status (``FINISHED``, ``FAILED``, ``KILLED``).
    """

    wants_images = True

    def __init__(
        self,
        logger: TrialLogger,
        node_id: str = "",
        end_tags: Callable[[Any], Mapping[str, str]] | None = None,
    ) -> None:
        self.logger, self.node_id, self.end_tags = logger, node_id, end_tags

    def on_epoch_end(self, trainer: TrainerView, result: Any) -> None:
        metrics = epoch_metrics(result, trainer)
        if self.node_id:
            metrics["node_id"] = self.node_id
        self.logger.log_epoch(result.epoch, metrics)
        if result.images is not None:  # each grid says which model drew it: the slider won't
            text = f"epoch {result.epoch}, n_z {result.n_z_next}"
            images = {k: captioned(v, text) for k, v in result.images.items()}
            self.logger.log_images(images, result.epoch)

    def on_checkpoint(self, trainer: TrainerView, result: Any) -> None:
        self.logger.flush()

    def on_run_end(self, trainer: TrainerView, status: str) -> None:
        if status == "FINISHED":
            self.logger.log_final(trainer)
        self.logger.finish(status, tags=self.end_tags(trainer) if self.end_tags else None)


def trial_logger(
    params: TrialParams,
    trial_id: str,
    cfg: Any,
    first_n_z: int,
    uri: str,
    experiment_id: str,
    parent_run_id: str,
) -> TrialLogger:
    """The child run of one Tune trial, found again or created as every trial creates it
    (its name, kind tags and filter params), for the trainable and for backfill."""
    kind = params.sweep_kind(cfg)
    seed = 0 if params.seed is None else params.seed
    name = (
        f"{kind.label}-nz{params.n_z}-s{seed}"
        if params.n_z is not None
        else f"{kind.label}-s{seed}-{trial_id[-5:]}"
    )
    tags = trial_tags(kind, seed)
    logged = {**filter_params(cfg), "n_z_init": first_n_z}
    return TrialLogger(uri, experiment_id, parent_run_id, trial_id, tags, logged, name)


def trial_callback(
    info: Any, trainer: TrainerView, *, uri: str, experiment_id: str, parent_run_id: str
) -> MLflowCallback:
    """The Ray trainable's MLflow callback (handed to the sweep by
    :meth:`ald_tune.tracking.tracker.MLflowTracker.start`, which the sweep names in each
    trial's config): the trial's child run, continued on a retry; the checkpoint carries
    its run id."""
    first = trainer.history[0]["n_z"] if trainer.history else trainer.model.n_z
    logger = trial_logger(
        info.params, info.trial_id, info.cfg, first, uri, experiment_id, parent_run_id
    )
    trainer.tracking_run_id = logger.run_id
    return MLflowCallback(logger, info.node_id)
