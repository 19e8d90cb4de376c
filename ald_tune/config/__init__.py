"""Layer 1, configuration: frozen, validated dataclasses loaded from a search-space YAML,
and the vocabularies every other layer imports (metrics and their directions, sweep
kinds and rules, range rules as data).

May import: nothing of ald_tune but :mod:`ald_tune.errors`. Imports no torch, Ray,
MLflow or Optuna.

Modules: ``sections`` (the run's five sections, each field with its default, constraint
and help; ``SECTIONS`` names all seven), ``sweep_sections`` (grid and tune), ``schema``
(``Config``, ``load_config``), ``constraints`` (the range rules as data, the size
bounds), ``vocabulary`` (metric names, directions, labels), ``kinds`` (what a sweep
is), ``trial`` (one Tune trial's param-space dict, typed), ``reference`` (the
configuration reference, generated).
"""

from ald_tune.config.kinds import RULES, SweepKind
from ald_tune.config.schema import (
    Config,
    check_ald_schedule,
    load_config,
    parse_override,
    read_space,
)
from ald_tune.config.sections import (
    METRICS,
    PAPER_VOTES,
    SECTIONS,
    ALDConfig,
    DataConfig,
    EvalConfig,
    ModelConfig,
    TrainConfig,
)
from ald_tune.config.sweep_sections import GridConfig, TuneConfig
from ald_tune.errors import ConfigError

__all__ = [
    "METRICS",
    "PAPER_VOTES",
    "RULES",
    "SECTIONS",
    "ALDConfig",
    "Config",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "GridConfig",
    "ModelConfig",
    "SweepKind",
    "TrainConfig",
    "TuneConfig",
    "check_ald_schedule",
    "load_config",
    "parse_override",
    "read_space",
]
