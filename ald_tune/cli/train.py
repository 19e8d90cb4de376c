"""``ald-tune train``: one ALD (or fixed-size) run on this machine, no Ray.

A thin driver of the engine's trainer: it adds a console printer, a checkpoint writer
and, with ``--tracking-uri``, the MLflow logger a Tune trial uses, all as callbacks
timed by one cadence.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from typing import Any

from ald_tune.cli.common import print_config, resolve_space
from ald_tune.config.constraints import check_name
from ald_tune.config.kinds import SweepKind, default_stamp
from ald_tune.config.schema import (
    MAX_NZ,
    Config,
    check_ald_schedule,
    load_config,
    parse_override,
)
from ald_tune.config.tags import OUT_TAG, RUNNER_TAG
from ald_tune.engine.callbacks import Cadence, Callback, TrainerView
from ald_tune.engine.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from ald_tune.engine.trainer import Trainer, TrainingDivergedError
from ald_tune.errors import ConfigError, shown
from ald_tune.interrupts import exit_code, received_sigterm
from ald_tune.tracking.runs import filter_params, trial_tags
from ald_tune.tracking.store import (
    check_tracking,
    client,
    ensure_experiment,
    resolve_tracking_uri,
    ui_hint,
)
from ald_tune.tracking.trial_logger import MLflowCallback, TrialLogger


class PrintEpochs(Callback):
    """One console line per epoch."""

    def on_epoch_end(self, trainer: TrainerView, result: Any) -> None:
        print(result.line(), flush=True)


class CheckpointFile(Callback):
    """``OUT/checkpoint.pt`` at every checkpoint of the cadence (and at the end)."""

    def __init__(self, out: str) -> None:
        self.path = os.path.join(out, CHECKPOINT_FILE)
        self.epoch: int | None = None  # the last epoch saved

    def on_checkpoint(self, trainer: TrainerView, result: Any) -> None:
        save_checkpoint(trainer.checkpoint(), self.path)
        self.epoch = result.epoch


def tracking_callback(args: argparse.Namespace, trainer: Trainer, out: str) -> MLflowCallback:
    """``--tracking-uri``: one MLflow run logged like a trial (reopened on ``--resume``)."""
    cfg = trainer.cfg
    uri = resolve_tracking_uri(args.tracking_uri, "runs")
    check_tracking(uri)
    exp_id = ensure_experiment(client(uri), args.experiment or f"ald-tune-{cfg.data.name}")
    kind = SweepKind("ald", cfg.ald.rule) if trainer.fixed_n_z is None else SweepKind("fixed")
    tags = trial_tags(kind, cfg.train.seed, **{RUNNER_TAG: "train", OUT_TAG: out})
    params = {
        **filter_params(cfg),
        "n_z_init": trainer.history[0]["n_z"] if trainer.history else trainer.model.n_z,
    }
    name = f"train-{os.path.basename(out)}"
    logger = TrialLogger(
        uri, exp_id, None, name, tags, params, name, run_id=trainer.tracking_run_id
    )
    trainer.tracking_run_id = logger.run_id
    return MLflowCallback(logger)


def check_out_folder(out: str, overwrite: bool) -> None:
    """``--out`` is a folder this run may write: not a file, writable, and not holding
    another run's results (unless ``--overwrite``).

    Raises:
        ConfigError: naming the folder and the fix, before any training.
    """
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out {shown(out)} is a file, not a folder. Fix: pass a folder.")
    taken = [
        f
        for f in (CHECKPOINT_FILE, "history.json", "model.safetensors")
        if os.path.exists(os.path.join(out, f))
    ]
    if taken and not overwrite:
        raise ConfigError(
            f"--out {shown(out)} already holds a run ({', '.join(taken)}). Fix: pass another "
            f"--out, --resume {shown(out)} to continue it, or --overwrite to replace it."
        )
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"--out {shown(out)} cannot be created ({exc.strerror}). Fix: pass a writable folder."
        ) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {shown(out)} is not writable. Fix: pass a writable folder.")


def check_flags(args: argparse.Namespace) -> str | None:
    """The flags alone, before anything is read: ``--experiment``, ``--fixed-nz`` (bounded
    like ``ald.n_z_init``), ``--checkpoint-every``, and what ``--resume`` may be given.

    Returns:
        The factory ``--resume`` is allowed to import (``--set model.factory=PATH``).

    Raises:
        ConfigError: naming the flag, the value and the fix.
    """
    if args.experiment is not None:
        check_name(args.experiment, "--experiment")
    if args.fixed_nz is not None and not 1 <= args.fixed_nz <= MAX_NZ:
        raise ConfigError(
            f"--fixed-nz must be an int in [1, {MAX_NZ}] (as ald.n_z_init). "
            f"Got {shown(args.fixed_nz)} instead."
        )
    if args.checkpoint_every < 0:
        raise ConfigError(
            f"--checkpoint-every must be an int >= 0 (0: only at the end). "
            f"Got {args.checkpoint_every} instead."
        )
    if not args.resume:
        return None
    factory, others = resume_overrides(args.overrides)
    given = [
        flag
        for flag, value in (
            ("--space", args.space),
            ("--preset", args.preset),
            ("--set", others),
            ("--fixed-nz", args.fixed_nz),
        )
        if value
    ]
    if given:
        raise ConfigError(
            f"--resume continues a run as it was configured (its checkpoint holds the "
            f"config); {', '.join(given)} would be ignored. Fix: drop {', '.join(given)}, "
            "or start a new run without --resume (--set model.factory=PATH is the one "
            "override it takes: it allows the checkpoint's own factory)."
        )
    return factory


def resume_overrides(overrides: list[str]) -> tuple[str | None, list[str]]:
    """``--set model.factory=PATH`` (the factory a resumed checkpoint may import) and the
    other overrides."""
    factory, others = None, []
    for text in overrides:
        section, name, value = parse_override(text)
        if (section, name) != ("model", "factory"):
            others.append(text)
        elif not isinstance(value, str):
            raise ConfigError(
                f"--set model.factory must name package.module:function. Got {shown(value)}."
            )
        else:
            factory = value
    return factory, others


def _last(writer: CheckpointFile) -> str:
    if writer.epoch is None:
        return "no checkpoint was written yet"
    return f"its last checkpoint (epoch {writer.epoch}) is {writer.path}"


def run(args: argparse.Namespace) -> int:
    """``ald-tune train``: 0 when the run ended, 1 when it diverged, 130/143 interrupted."""
    factory = check_flags(args)
    cfg = (
        None if args.resume else load_config(resolve_space(args.space), args.preset, args.overrides)
    )
    if args.print_config:  # prints, writes nothing (not even the --out folder)
        return print_config(cfg or _trainer(args, factory, None).cfg)
    if cfg is not None and args.fixed_nz is None:
        check_ald_schedule(cfg)  # before the --out folder is made
    out = _out_folder(args)
    made = not os.path.exists(out)
    check_out_folder(out, overwrite=args.overwrite or bool(args.resume))
    try:
        trainer = _trainer(args, factory, cfg)
    except BaseException:  # data or checkpoint refused: no empty run folder is left behind
        if made:
            with contextlib.suppress(OSError):  # rmdir: only while it is still empty
                os.rmdir(out)
        raise
    if args.resume:
        print(f"resumed at epoch {trainer.epoch}, n_z={trainer.model.n_z}")
    writer = CheckpointFile(out)
    callbacks: list[Callback] = [PrintEpochs(), writer]
    mlflow = tracking_callback(args, trainer, out) if args.tracking_uri else None
    if mlflow is not None:
        callbacks.insert(1, mlflow)  # sent before the checkpoint is written
    print(_header(trainer, out))
    cfg = trainer.cfg
    cadence = Cadence.from_config(cfg, checkpoint_every=args.checkpoint_every, checkpoint_min_s=0.0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            trainer.fit(callbacks, cadence)
    except KeyboardInterrupt:
        print(
            f"\nald-tune train: {'SIGTERM: ' if received_sigterm() else ''}interrupted at epoch "
            f"{trainer.epoch}; {_last(writer)}. Resume with "
            f"`ald-tune train --resume {out}`"
            + (" (and the same --tracking-uri)" if mlflow is not None else "")
            + ".",
            file=sys.stderr,
        )
        return exit_code()  # 130 on Ctrl-C, 143 on SIGTERM
    except TrainingDivergedError as exc:
        print(
            f"ald-tune train: failed: {exc.what}; {_last(writer)}"
            + ("; its MLflow run is marked FAILED" if mlflow is not None else "")
            + f". {exc.fix}",
            file=sys.stderr,
        )
        return 1
    _print_end(trainer, out, mlflow)
    return 0


def _out_folder(args: argparse.Namespace) -> str:
    """``--out``, else the resumed checkpoint's folder, else ``runs/train-<time>``."""
    if args.resume:
        folder = args.resume if os.path.isdir(args.resume) else os.path.dirname(args.resume)
        return os.path.abspath(args.out or folder)  # the resumed checkpoint advances
    return os.path.abspath(args.out or os.path.join("runs", f"train-{default_stamp()}"))


def _trainer(args: argparse.Namespace, factory: str | None, cfg: Config | None) -> Trainer:
    """The trainer: from ``--resume``'s checkpoint, else from ``cfg``."""
    if cfg is not None:
        return Trainer(cfg, fixed_n_z=args.fixed_nz)
    ckpt = load_checkpoint(args.resume)
    path = os.path.join(args.resume, CHECKPOINT_FILE) if os.path.isdir(args.resume) else args.resume
    return Trainer.from_checkpoint(ckpt, factory=factory, source=f"checkpoint {shown(path)}")


def _header(trainer: Trainer, out: str) -> str:
    """The line before the first epoch: what runs, on what, for how long, and where to."""
    cfg = trainer.cfg
    epochs = cfg.train.epochs
    longest = trainer.controller.longest_run(epochs)
    length = f"{epochs} epochs" + (
        f" (up to {longest} after a late stop: ald.final_share={cfg.ald.final_share})"
        if longest > epochs
        else ""
    )
    return (
        f"ald-tune train: {trainer.mode} run on {cfg.data.name} "
        f"({trainer.train_data.n_samples} train / {trainer.val_data.n_samples} val), "
        f"n_z={trainer.model.n_z}, {length}, device {trainer.device}, "
        f"FID features: {cfg.eval.fid_extractor}; output {out}"
    )


def _print_end(trainer: Trainer, out: str, mlflow: Any) -> None:
    """The run's outputs written and summed up."""
    paths = trainer.save_outputs(out)
    s = trainer.summary()
    print(
        f"final n_z = {s['final_n_z']} (stop epoch: {s['stop_epoch']}, "
        f"floor reached: {s['floor_reached']}); {s['trial_epochs']} trial-epochs in "
        f"{s['wall_time_s']:.1f} s (train {s['train_time_s']:.1f} s, eval {s['eval_time_s']:.1f} s)"
    )
    print("wrote " + ", ".join(os.path.basename(p) for p in paths.values()) + f" to {out}")
    if mlflow is not None and mlflow.logger.run_id:
        print(f"MLflow run {mlflow.logger.run_id}; {ui_hint(mlflow.logger.uri)}")
    if mlflow is not None and mlflow.logger.model_id:
        print(f"MLflow model: ald_tune.load_model('models:/{mlflow.logger.model_id}')")
