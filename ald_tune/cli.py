"""The ``ald-tune`` command line. Arguments are parsed only in :func:`main`.

Commands:
    ald-tune train --space FILE [--preset P] [--set section.field=value ...] [--out DIR]
                   [--fixed-nz K] [--resume CKPT]
        One ALD run (or one fixed-size run) on this machine, no Ray.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from typing import Sequence

from .errors import ConfigError, DataError


def _space_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--space", default=None,
                   help="search-space YAML (default: the bundled digits space)")
    p.add_argument("--preset", default=None, help="a preset named in the space file")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="SECTION.FIELD=VALUE", help="override one config field (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ald-tune", description=(
        "Choose a VAE's latent size n_z with one self-shrinking run (ALD-VAE) or a grid."))
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="one ALD (or fixed-size) training run, no Ray")
    _space_args(tr)
    tr.add_argument("--out", default=None, help="output folder (default: runs/train-<time>)")
    tr.add_argument("--fixed-nz", type=int, default=None, metavar="K",
                    help="train the fixed-size baseline at n_z=K instead of ALD")
    tr.add_argument("--resume", default=None, metavar="CKPT",
                    help="continue from a checkpoint file or the folder holding checkpoint.pt")
    tr.add_argument("--checkpoint-every", type=int, default=5, metavar="N",
                    help="write OUT/checkpoint.pt every N epochs (0: only at the end)")
    return parser


def resolve_space(space: str | None) -> str:
    """A path as given, else a bundled space by file name (``digits.yaml`` or ``digits``)."""
    from importlib import resources

    name = space or "digits.yaml"
    if os.path.exists(name):
        return os.path.abspath(name)
    base = os.path.basename(name)
    base = base if base.endswith(".yaml") else base + ".yaml"
    bundled = resources.files("ald_tune").joinpath("search_spaces", base)
    if bundled.is_file():
        return str(bundled)
    raise ConfigError(f"search-space file {name!r} does not exist (not a path, and not a "
                      "bundled space). Fix: pass --space search_spaces/digits.yaml.")


def cmd_train(args: argparse.Namespace) -> int:
    from .checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
    from .config import load_config
    from .loop import Trainer

    if args.fixed_nz is not None and args.fixed_nz < 1:
        raise ConfigError(f"--fixed-nz must be a positive int. Got {args.fixed_nz} instead.")
    out = os.path.abspath(args.out or os.path.join("runs", time.strftime("train-%Y%m%d-%H%M%S")))
    if args.resume:
        trainer = Trainer.from_checkpoint(load_checkpoint(args.resume))
        print(f"resumed at epoch {trainer.epoch}, n_z={trainer.model.n_z}")
    else:
        cfg = load_config(resolve_space(args.space), args.preset, args.overrides)
        trainer = Trainer(cfg, fixed_n_z=args.fixed_nz)
    cfg = trainer.cfg
    print(f"ald-tune train: {trainer.mode} run on {cfg.data.name} "
          f"({trainer.train_data.n_samples} train / {trainer.val_data.n_samples} val), "
          f"n_z={trainer.model.n_z}, {cfg.train.epochs} epochs, device {trainer.device}, "
          f"FID features: {cfg.eval.fid_extractor}; output {out}")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        for result in trainer:
            print(result.line(), flush=True)
            if args.checkpoint_every and (result.epoch + 1) % args.checkpoint_every == 0:
                save_checkpoint(trainer.checkpoint(), os.path.join(out, CHECKPOINT_FILE))
    save_checkpoint(trainer.checkpoint(), os.path.join(out, CHECKPOINT_FILE))
    paths = trainer.save_outputs(out)
    s = trainer.summary()
    print(f"final n_z = {s['final_n_z']} (stop epoch: {s['stop_epoch']}, "
          f"floor reached: {s['floor_reached']}); {s['trial_epochs']} trial-epochs in "
          f"{s['wall_time_s']:.1f} s (train {s['train_time_s']:.1f} s, eval {s['eval_time_s']:.1f} s)")
    print("wrote " + ", ".join(os.path.basename(p) for p in paths.values()) + f" to {out}")
    return 0


COMMANDS = {"train": cmd_train}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ald-tune`` console command.

    Returns:
        The process exit code: 0 on success, 2 for bad configuration or data.
    """
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, DataError) as exc:
        print(f"ald-tune: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
