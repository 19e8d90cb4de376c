"""What several commands share: their options, the search space by path or name, and
``--print-config``. Cheap to import (argparse, yaml): the parser is built from here."""

from __future__ import annotations

import argparse
import os
import sys
from importlib import resources

from ald_tune.errors import ConfigError, DataError, Interrupted
from ald_tune.interrupts import exit_code, received_sigterm, sigterm_as_interrupt


def space_args(p: argparse.ArgumentParser) -> None:
    """``--space``, ``--preset``, ``--set``, ``--print-config``."""
    p.add_argument(
        "--space", default=None, help="search-space YAML (default: the bundled digits space)"
    )
    p.add_argument("--preset", default=None, help="a preset named in the space file")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override one config field (repeatable)",
    )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved config (after presets and --set) as YAML and exit",
    )
    p.add_argument(
        "--debug",
        action="store_true",
        help="on an error in your own code (model.factory), print its traceback too",
    )


def store_args(
    p: argparse.ArgumentParser, run_dir_help: str = "run folder (default: runs)"
) -> None:
    """``--tracking-uri``, ``--run-dir``."""
    p.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow URI (default: $MLFLOW_TRACKING_URI, else sqlite in RUN_DIR)",
    )
    p.add_argument("--run-dir", default="runs", help=run_dir_help)


def sweep_args(p: argparse.ArgumentParser, scheduler: bool | str = False) -> None:
    """The options of ``ald``, ``grid`` and ``compare`` (``scheduler="hidden"``: accepted,
    to refuse it with a reason, but not listed: ``ald`` has no scheduler)."""
    space_args(p)
    store_args(p, "folder for the default Tune storage and MLflow store (default: runs)")
    p.add_argument(
        "--storage",
        default=None,
        help="Tune storage path or URI (default: $ALD_TUNE_STORAGE, else RUN_DIR/ray; shared "
        "on clusters)",
    )
    p.add_argument("--no-tracking", action="store_true", help="run without MLflow")
    p.add_argument(
        "--verbose",
        action="store_true",
        help="one line per trial epoch too (default: a status line per trial start and end: "
        "done, running, pending, best so far, ETA)",
    )
    p.add_argument(
        "--experiment", default=None, help="MLflow experiment (default ald-tune-DATASET)"
    )
    p.add_argument(
        "--name",
        default=None,
        help="sweep name (default KIND-DATASET-TIME; ALD kinds name the rule: aldtune, aldpaper)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted sweep (--name, or the newest of this kind)",
    )
    p.add_argument(
        "--address",
        default=None,
        help="Ray cluster address (default: $RAY_ADDRESS, else a running local cluster, else "
        "a new one)",
    )
    p.add_argument("--cpus-per-trial", type=float, default=None, help="= --set tune.cpus_per_trial")
    p.add_argument("--gpus-per-trial", type=float, default=None, help="= --set tune.gpus_per_trial")
    p.add_argument(
        "--max-concurrent-trials",
        type=int,
        default=None,
        help="trials of a sweep running at once (= --set tune.max_concurrent_trials; "
        "default 0: as many as the CPUs and GPUs allow)",
    )
    if scheduler:
        p.add_argument(
            "--scheduler",
            choices=("fifo", "asha"),
            default=None,
            help=argparse.SUPPRESS
            if scheduler == "hidden"
            else "grid scheduler (= --set tune.scheduler; default: the space's, else fifo)",
        )


def resolve_space(space: str | None) -> str:
    """A path as given, else a bundled space by file name (``digits.yaml`` or ``digits``)."""
    name = space or "digits.yaml"
    if os.path.exists(name):
        return os.path.abspath(name)
    if os.sep in name or (os.altsep and os.altsep in name):  # a path that is not there
        raise ConfigError(
            f"search-space file {name[:300]!r} does not exist. Fix: check the "
            "path, or name a bundled space (--space digits)."
        )
    base = os.path.basename(name)
    base = base if base.endswith(".yaml") else base + ".yaml"
    bundled = resources.files("ald_tune").joinpath("search_spaces", base)
    if bundled.is_file():
        return str(bundled)
    raise ConfigError(
        f"search-space file {name[:300]!r} does not exist (not a path, and not a "
        "bundled space). Fix: pass --space search_spaces/digits.yaml."
    )


def print_config(cfg) -> int:
    """``--print-config``: the resolved config as YAML, nothing else runs."""
    import yaml

    print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
    return 0


def sweep_overrides(args: argparse.Namespace) -> list[str]:
    """CLI flags that are config fields become ``--set`` overrides (validated the same way)."""
    extra = []
    for flag, field in (
        ("cpus_per_trial", "tune.cpus_per_trial"),
        ("gpus_per_trial", "tune.gpus_per_trial"),
        ("max_concurrent_trials", "tune.max_concurrent_trials"),
        ("scheduler", "tune.scheduler"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            extra.append(f"{field}={value}")
    return [*args.overrides, *extra]


def absolute_sqlite(url: str) -> str:
    """``sqlite:///rel.db`` made absolute (relative paths depend on the working directory)."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        return "sqlite:///" + os.path.abspath(url[len("sqlite:///") :])
    return url


def run_command(command, prog: str, debug: bool = False) -> int:
    """Run one command: bad input is one line and exit code 2 (with ``debug``, after the
    traceback of what caused it: the user's own code); Ctrl-C, or SIGTERM (``kill``,
    ``timeout``, systemd, Slurm, Kubernetes), one line and 130, or 143 for SIGTERM."""
    import logging

    for noisy in ("mlflow", "alembic"):  # the store's start-up chatter is not for users
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with sigterm_as_interrupt(prog):
        try:
            return command()
        except (ConfigError, DataError) as exc:
            if debug and exc.__cause__ is not None:
                import traceback

                traceback.print_exception(exc.__cause__, file=sys.stderr)
            print(f"{prog}: error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as exc:
            text = str(exc) if isinstance(exc, Interrupted) else "interrupted."
            cause = "SIGTERM: " if received_sigterm() else ""
            print(f"\n{prog}: {cause}{text}", file=sys.stderr)
            return exit_code()
