"""What a sweep *is*: its kind (and ALD rule), defined once and written once.

A comparison is made of sweeps of five kinds:

========== ==================================================================
``grid``   the grid baseline: one fixed-n_z trial per ``grid.n_z`` value (FIFO)
``asha``   the same grid under ASHA early stopping (the stronger baseline)
``fixed``  fixed-n_z runs at the n_z values ALD chose that the grid lacks
``ald``    ALD trials (one per seed) that resize themselves, with one stop rule
``nested`` nested-dropout trials (one per seed) at the grid's widest n_z, each
           ending with its metrics at every grid n_z prefix (a one-run baseline)
========== ==================================================================

A sweep's kind and rule are written once, when it starts: as tags on its MLflow
parent run (:data:`KIND_TAG`, :data:`RULE_TAG`, plus :data:`COMPARE_TAG` naming the
``compare`` that made it) and in :data:`SWEEP_FILE` in its Tune folder. Every reader
(the report, the MLflow rebuild, the notebook, backfill) selects sweeps by these,
never by guessing from how the trials ran.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ald_tune.config.tags import (  # noqa: F401  (read from here by the other layers)
    COMPARE_TAG,
    DATASET_TAG,
    KIND_TAG,
    MAIN_RULE_TAG,
    RULE_TAG,
    SWEEP_TAG,
)
from ald_tune.errors import ConfigError

KINDS = ("grid", "asha", "fixed", "ald", "nested")


def default_stamp() -> str:
    """The time part of a default name (a sweep's, a compare's, a train folder's): the time
    to the second and six random hex digits, so two commands started in the same second
    never share a name, a Tune folder or an MLflow parent run."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


RULES = ("paper", "ald-tune", "units")

SWEEP_FILE = "ald_tune_sweep.json"  # the same facts in the sweep's Tune folder


@dataclass(frozen=True)
class SweepKind:
    """A sweep's kind and, for ``ald``, its stop rule.

    Example:
        >>> SweepKind("ald", "ald-tune").label, SweepKind("asha").mode
        ('aldtune', 'grid')
    """

    kind: str
    rule: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"sweep kind must be one of {KINDS}. Got {self.kind!r} instead.")
        if (self.kind == "ald") != (self.rule is not None) or (
            self.rule is not None and self.rule not in RULES
        ):
            raise ConfigError(
                f"an ALD sweep needs a rule among {RULES}, other kinds none. "
                f"Got kind={self.kind!r}, rule={self.rule!r}."
            )

    @property
    def mode(self) -> str:
        """What its trials do: ``ald`` (resize themselves) or ``grid`` (fixed n_z; the
        nested-dropout trials too)."""
        return "ald" if self.kind == "ald" else "grid"

    @property
    def label(self) -> str:
        """The default sweep-name prefix, naming the rule of an ALD sweep: ``aldpaper``,
        ``aldtune``, ``aldunits``."""
        if self.kind != "ald":
            return self.kind
        return "aldtune" if self.rule == "ald-tune" else f"ald{self.rule}"

    @property
    def old_labels(self) -> tuple[str, ...]:
        """Prefixes sweeps of this kind were named with before (0.2 named the paper rule's
        sweeps ``ald-...``): ``--resume`` finds those too."""
        return ("ald",) if self.kind == "ald" and self.rule == "paper" else ()

    def tags(self) -> dict[str, str]:
        """The MLflow tags that record this kind."""
        return {KIND_TAG: self.kind, **({RULE_TAG: self.rule} if self.rule else {})}

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> SweepKind | None:
        """The kind recorded in a run's tags; None for runs that record none."""
        kind = tags.get(KIND_TAG)
        if kind not in KINDS:
            return None
        try:
            return cls(kind, tags.get(RULE_TAG) if kind == "ald" else None)
        except ConfigError:
            return None

    @classmethod
    def for_sweep(cls, mode: str, cfg: Any, kind: str | None = None) -> SweepKind:
        """The kind of a sweep run in ``mode`` with ``cfg``, unless ``kind`` says
        (``fixed``): a grid under ``tune.scheduler=asha`` is ``asha``."""
        if kind is not None:
            return cls(kind, cfg.ald.rule if kind == "ald" else None)
        if mode == "ald":
            return cls("ald", cfg.ald.rule)
        return cls("asha" if cfg.tune.scheduler == "asha" else "grid")

    def __str__(self) -> str:
        return f"ald ({self.rule})" if self.rule else self.kind


def write_sweep_file(folder: str, info: Mapping[str, Any]) -> None:
    """Record the sweep's kind (and more) in its Tune folder; local folders only (a
    remote storage's folder is written by Tune alone: readers then use MLflow's tags)."""
    if "://" in folder:
        return
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, SWEEP_FILE + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(dict(info), fh, indent=1)
    os.replace(tmp, os.path.join(folder, SWEEP_FILE))


def read_sweep_file(folder: str) -> dict[str, Any]:
    """What :func:`write_sweep_file` recorded; ``{}`` when nothing was."""
    path = os.path.join(folder, SWEEP_FILE)
    if "://" in folder or not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            info = json.load(fh)
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}
