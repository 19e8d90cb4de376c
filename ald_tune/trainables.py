"""Ray Tune function trainables around the engine's loop.

One function serves both methods: with ``config["n_z"]`` it trains the
fixed-size grid baseline, without it an ALD trial that resizes itself. Every
epoch it calls ``ray.tune.report`` with n_z and every metric (plus ``stopped``,
``run_over`` and the decision's reason, so a stopper or the report can see them);
every ``tune.checkpoint_every`` epochs (at least ``tune.checkpoint_min_s`` apart)
and at the end it attaches a ``ray.tune.Checkpoint`` holding the engine's
checkpoint (which carries the trial's MLflow run id), after sending MLflow what
it buffered. On retry or restore it rebuilds the model at the
stored n_z and continues.

The trial's ``config`` (Ray's param space) holds::

    {"space": Config.to_dict(), "seed": 0, "n_z": 8 (grid only),
     "lr"/"beta": (Optuna only), "tracking": {"uri", "experiment_id", "parent_run_id"} | None,
     "mode": "ald" | "grid", "kind": "grid" | "asha" | "fixed" | "ald", "engine": "real" | "scripted" | "paired", "fail_once": {...} (tests),
     "report_ahead": bool (tune.report one epoch behind training; off under ASHA)}
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import Any, Mapping

from .checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from .config import Config
from .kinds import SweepKind


def trial_config(config: Mapping[str, Any], cpus: float = 1.0) -> Config:
    """The trial's :class:`Config`: the space plus its seed, sampled values and threads."""
    cfg = Config.from_dict(config["space"], source="trial config")
    train: dict[str, Any] = {"seed": int(config.get("seed", cfg.train.seed)),
                             "threads": max(1, int(cpus))}
    for key in ("lr", "beta"):
        if key in config:
            train[key] = float(config[key])
    return cfg.replace(train=train)


def engine_class(name: str):
    """``real``: the training loop; ``scripted``: fast tests; ``paired``: the overhead benchmark."""
    if name == "scripted":
        from .testing import ScriptedTrainer
        return ScriptedTrainer
    if name == "paired":
        from .paired import PairedTrainer
        return PairedTrainer
    from .loop import Trainer
    return Trainer


def _maybe_fail(config: Mapping[str, Any], epoch: int) -> None:
    """Test hook: raise once at ``fail_once["epoch"]`` (a marker file records that it did)."""
    spec = config.get("fail_once")
    if not spec or epoch != spec["epoch"]:
        return
    marker = f"{spec['marker']}.{config.get('n_z', 'ald')}.{config.get('seed', 0)}"
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError(f"injected failure at epoch {epoch} (test hook)")


def trial_kind(config: Mapping[str, Any], cfg: Config) -> SweepKind:
    """The kind of the sweep a trial belongs to, as its driver wrote it in the config."""
    return SweepKind.for_sweep(config.get("mode", "ald"), cfg, config.get("kind"))


def _logger(config: Mapping[str, Any], trial_id: str, trainer, cfg: Config):
    tracking = config.get("tracking")
    if not tracking:
        return None
    from .tracking import filter_params
    from .trial_logger import TrialLogger
    kind, seed = trial_kind(config, cfg), config.get("seed", 0)
    name = f"{kind.label}-nz{config['n_z']}-s{seed}" if "n_z" in config else \
        f"{kind.label}-s{seed}-{trial_id[-5:]}"
    tags = {**kind.tags(), "ald_tune.mode": kind.mode, "ald_tune.seed": str(seed)}
    params = {**filter_params(cfg), "n_z_init": trainer.model.n_z if not trainer.history else
              trainer.history[0]["n_z"]}
    return TrialLogger(tracking["uri"], tracking["experiment_id"], tracking["parent_run_id"],
                       trial_id, tags, params, name)


def report_metrics(result, trainer) -> dict[str, Any]:
    """What one epoch reports to Tune: the record plus the decision.

    ``run_over`` marks the last epoch (Tune reserves ``done``: reporting it ends the
    trial function at once, before the final artifacts are logged).
    """
    d = result.decision
    out = {k: v for k, v in result.record.items() if v is not None}
    out.update(n_z_next=result.n_z_next, removed=d.n_remove, stop=d.stop, run_over=result.done,
               stopped=bool(getattr(trainer.controller, "stopped", False)),
               decision=d.reason, fid_extractor=result.fid_extractor)
    if result.done:
        out["final_n_z"] = trainer.model.n_z
    return out


def train_trial(config: dict[str, Any]) -> None:
    """Ray Tune function trainable: one ALD trial, or one fixed-n_z trial when ``n_z`` is set."""
    import ray
    from ray import tune

    ctx = tune.get_context()
    node_id = ray.get_runtime_context().get_node_id()
    cpus = ctx.get_trial_resources().required_resources.get("CPU", 1.0)
    cfg = trial_config(config, cpus)
    engine = engine_class(config.get("engine", "real"))
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            trainer = engine.from_checkpoint(load_checkpoint(folder))
    else:
        trainer = engine(cfg, fixed_n_z=config.get("n_z"))
    logger = _logger(config, ctx.get_trial_id(), trainer, cfg)
    if logger is not None:
        trainer.tracking_run_id = logger.run_id
    try:
        _epochs(config, cfg, trainer, logger, node_id)
    except BaseException as exc:
        if logger is not None:
            logger.flush()
            # Tune stops a trial (ASHA, or the driver going away) with SystemExit from
            # tune.report; a Ctrl-C is a KeyboardInterrupt: neither is a failure.
            stopped = isinstance(exc, (SystemExit, KeyboardInterrupt))
            logger.finish("KILLED" if stopped else "FAILED")
        raise
    if logger is not None:
        logger.log_final(trainer)
        logger.finish()


def _epochs(config, cfg: Config, trainer, logger, node_id: str) -> None:
    """Train; MLflow and checkpoint files in this thread, ``tune.report`` one epoch behind.

    Only the report, which mostly waits for the driver, goes to the
    :class:`~ald_tune.pipeline.ReportAhead` thread. MLflow's sends stay here: their
    SQLAlchemy work holds the GIL, and on 2-core machines a second busy thread slows
    the first (measured: all MLflow work in the background made a digits epoch
    slower; image grids alone in the background, whose PNG/WebP encoding does free
    the GIL, gained nothing, +3.85% vs +3.79% paired). MLflow is sent before the
    checkpoint is handed over, so a retry from it finds every earlier step stored.
    """
    from .pipeline import ReportAhead

    every, min_s = cfg.tune.checkpoint_every, cfg.tune.checkpoint_min_s
    clock = trainer.trial_clock  # the paired benchmark engine's leaves out its twin's epochs
    last_checkpoint = clock()
    with ReportAhead(enabled=bool(config.get("report_ahead", cfg.tune.report_ahead))) as ahead:
        trainer.pause_reports = ahead.drain
        for result in trainer:
            _maybe_fail(config, result.epoch)
            metrics = {**report_metrics(result, trainer), "node_id": node_id}
            checkpoint = result.done or (not (result.epoch + 1) % every
                                         and clock() - last_checkpoint >= min_s)
            if logger is not None:
                logger.log_epoch(result.epoch, metrics)
                if result.epoch % cfg.eval.image_every == 0 or result.done:
                    logger.log_images(trainer.images(), result.epoch)
                if checkpoint:
                    logger.flush()
            folder = None
            if checkpoint:
                folder = tempfile.mkdtemp(prefix="ald-tune-ckpt-")
                save_checkpoint(trainer.checkpoint(), os.path.join(folder, CHECKPOINT_FILE))
                last_checkpoint = clock()
            ahead.submit(_report, metrics, folder)


def _report(metrics: dict[str, Any], folder: str | None) -> None:
    """``tune.report`` one epoch, with the checkpoint in ``folder`` (then deleted) if any."""
    from ray import tune

    if folder is None:
        tune.report({**metrics, "reported_at": time.time()})
        return
    try:
        tune.report({**metrics, "reported_at": time.time()},
                    checkpoint=tune.Checkpoint.from_directory(folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # Tune has copied it into storage
