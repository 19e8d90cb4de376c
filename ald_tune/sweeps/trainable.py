"""The Ray Tune function trainable: a thin driver of the engine's trainer.

One function serves both methods: with a fixed ``n_z`` (:attr:`TrialParams.n_z`) it
trains the fixed-size grid baseline, without it an ALD trial that resizes itself. It
builds the trainer (or rebuilds it at the stored n_z from Tune's checkpoint on a retry
or restore), adds the trial callbacks its config names (the MLflow logger, when the
sweep is tracked, or a test's fault injection), then :class:`TuneReporter` last, and
runs :meth:`~ald_tune.engine.trainer.EpochIterator.fit` with the config's cadence.

:class:`TuneReporter` calls ``ray.tune.report`` every epoch with n_z and every metric
(plus ``stopped``, ``run_over``, the decision's reason, the Ray node and
``reported_at``), one epoch behind training from a second thread
(:class:`~ald_tune.sweeps.report_ahead.ReportAhead`; off under ASHA), and on the
cadence's checkpoint epochs attaches a ``ray.tune.Checkpoint`` holding the engine's
checkpoint, after every earlier callback (MLflow's flush) has run.

The trial's ``config`` (Ray's param space) is read once, as a
:class:`~ald_tune.config.trial.TrialParams` (its module lists the keys).
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ald_tune.config.kinds import SweepKind
from ald_tune.config.schema import Config
from ald_tune.config.trial import TrialParams
from ald_tune.engine.callbacks import Cadence, Callback, TrainerView
from ald_tune.engine.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from ald_tune.engine.trainer import epoch_metrics
from ald_tune.sweeps.report_ahead import ReportAhead

CKPT_PREFIX = "ald-tune-ckpt-"  # + <pid>@<host>-: a checkpoint on its way to Tune

DEFAULT_TRAINER = "ald_tune.engine.trainer:Trainer"
#: How long Tune waits for a finished or stopped trial's thread before it reuses the actor
#: (Ray's default, 2 s, is shorter than closing an MLflow run can take on a busy machine,
#: and a reset that times out fails the next trial). Read in the actor at each reset.
REUSE_WAIT_ENV = ("TUNE_FUNCTION_THREAD_TIMEOUT_S", "60")


@dataclass(frozen=True)
class TrialInfo:
    """What a trial callback factory is told about its trial."""

    trial_id: str
    config: Mapping[str, Any]
    cfg: Config
    kind: SweepKind
    node_id: str = ""
    trial_dir: str | None = None

    @property
    def params(self) -> TrialParams:
        """The trial's config, typed."""
        return TrialParams.from_config(self.config)


def load_object(path: str) -> Any:
    """``"package.module:name"`` -> the object (a trainer class or a callback factory)."""
    module, sep, name = path.partition(":")
    if not sep:
        raise ValueError(f"{path!r} must look like 'package.module:name'.")
    return getattr(importlib.import_module(module), name)


def object_path(obj: str | Any) -> str:
    """A trainer class or callback factory as the trial's config names it,
    ``"package.module:name"`` (a path given as text stays as it is): Tune writes the
    config to the trial's ``params.json``, and each trial imports it back."""
    if isinstance(obj, str):
        return obj
    path = f"{obj.__module__}:{obj.__qualname__}"
    if "<" in path or load_object(path) is not obj:
        raise ValueError(f"{obj!r} is not a module-level name a trial can import ({path!r}).")
    return path


def trial_kind(config: Mapping[str, Any], cfg: Config) -> SweepKind:
    """The kind of the sweep a trial belongs to, as its driver wrote it in the config."""
    return TrialParams.from_config(config).sweep_kind(cfg)


class TuneReporter(Callback):
    """Reports each epoch to Ray Tune, with a checkpoint on the cadence's checkpoint epochs.

    The last epoch's report waits for the run's end, after the callbacks before this one
    (this reporter comes last): Tune may stop a trial at any report (ASHA stops every trial
    that reaches ``max_t``) and then ends its process within seconds, which would cut short
    the final MLflow logging of a run that did finish.

    Args:
        node_id: the Ray node the trial runs on (reported with every epoch).
        report_ahead: send each report from a second thread while the next epoch trains.
    """

    def __init__(self, node_id: str, report_ahead: bool = True) -> None:
        self.node_id = node_id
        self.ahead = ReportAhead(enabled=report_ahead)
        self.metrics: dict[str, Any] = {}
        self.last: tuple[dict[str, Any], str | None] | None = None  # held until the end

    def on_epoch_end(self, trainer: TrainerView, result: Any) -> None:
        self.metrics = {**epoch_metrics(result, trainer), "node_id": self.node_id}
        if not result.checkpoint_due:
            self._send(result, None)

    def on_checkpoint(self, trainer: TrainerView, result: Any) -> None:
        folder = tempfile.mkdtemp(prefix=f"{CKPT_PREFIX}{os.getpid()}@{socket.gethostname()}-")
        save_checkpoint(trainer.checkpoint(), os.path.join(folder, CHECKPOINT_FILE))
        self._send(result, folder)

    def _send(self, result: Any, folder: str | None) -> None:
        if result.done:
            self.last = (self.metrics, folder)
        else:
            self.ahead.submit(_report, self.metrics, folder)

    def drain(self) -> None:
        self.ahead.drain()

    def on_run_end(self, trainer: TrainerView, status: str) -> None:
        try:
            if self.last is not None:
                self.ahead.submit(_report, *self.last)
                self.last = None
        finally:
            self.ahead.close()


def remove_orphan_checkpoints(root: str | None = None) -> list[str]:
    """Delete the checkpoint folders that trial processes of this host left in ``root``
    (default: the temporary folder) and that have ended since; returns their paths.

    Each checkpoint goes to Tune from a folder of its own, deleted once Tune has copied
    it (:func:`_report`). A trial process that is killed meanwhile (a stopped sweep, a
    lost node, Ctrl-C) leaves it behind; no later process would know it is free. The
    folder's name says whose it was (``ald-tune-ckpt-<pid>@<host>-...``): only folders
    of this host whose process no longer runs are removed.
    """
    root = root or tempfile.gettempdir()
    host = socket.gethostname()
    removed: list[str] = []
    try:
        names = os.listdir(root)
    except OSError:
        return removed
    for name in names:
        owner, _, rest = name[len(CKPT_PREFIX) :].partition("@")
        if not name.startswith(CKPT_PREFIX) or not owner.isdigit():
            continue
        if rest.rpartition("-")[0] != host or _running(int(owner)):
            continue
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)
        removed.append(os.path.join(root, name))
    return removed


def _running(pid: int) -> bool:
    # By hand: psutil.pid_exists does this, but psutil is not a dependency (a test extra).
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # another user's process (PermissionError): it runs
        return True
    return True


def _report(metrics: dict[str, Any], folder: str | None) -> None:
    """``tune.report`` one epoch, with the checkpoint in ``folder`` (then deleted) if any."""
    from ray import tune

    if folder is None:
        tune.report({**metrics, "reported_at": time.time()})
        return
    try:
        tune.report(
            {**metrics, "reported_at": time.time()},
            checkpoint=tune.Checkpoint.from_directory(folder),
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # Tune has copied it into storage


def train_trial(config: dict[str, Any]) -> None:
    """Ray Tune function trainable: one ALD trial, or one fixed-n_z trial when ``n_z`` is set."""
    import ray
    from ray import tune

    os.environ.setdefault(*REUSE_WAIT_ENV)
    # "Checkpoint successfully created at: ..." per checkpoint, from every worker: INFO for
    # Ray's developers, not progress for ours (the checkpoint's epoch is in the progress).
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    ctx = tune.get_context()
    node_id = ray.get_runtime_context().get_node_id()
    cpus = ctx.get_trial_resources().required_resources.get("CPU", 1.0)
    params = TrialParams.from_config(config)
    cfg = params.config(cpus)
    trainer_class = load_object(params.trainer or DEFAULT_TRAINER)
    remove_orphan_checkpoints()  # what killed trials on this host left behind
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            # The trial's own config names the factory (its checkpoint may not choose one).
            trainer = trainer_class.from_checkpoint(
                load_checkpoint(folder), factory=cfg.model.factory
            )
    else:
        trainer = trainer_class(cfg, fixed_n_z=params.n_z)
    info = TrialInfo(
        ctx.get_trial_id(), config, cfg, params.sweep_kind(cfg), node_id, ctx.get_trial_dir()
    )
    callbacks = [load_object(path)(info, trainer, **kwargs) for path, kwargs in params.callbacks]
    ahead = params.report_ahead
    reporter = TuneReporter(node_id, cfg.tune.report_ahead if ahead is None else ahead)
    trainer.fit([*callbacks, reporter], Cadence.from_config(cfg))
