"""Frozen, validated configuration loaded from a search-space YAML file.

A search-space file has the config sections at the top level and named
presets that override them::

    data:  {name: digits, val_fraction: 0.1}
    train: {epochs: 60}
    ald:   {rule: ald-tune}
    grid:  {n_z: [2, 4, 8, 16, 32, 64]}
    default_preset: quick
    presets:
      paper: {train: {epochs: 200}}
      quick: {train: {epochs: 60}}

``load_config(path, preset=None, overrides=("train.epochs=10",))`` applies, in
order: the dataclass defaults, the file's sections, the chosen preset (or
``default_preset``), then the overrides. Unknown sections and keys are
rejected; every field is checked by the constraint declared next to it in its section
(:mod:`ald_tune.config.sections`; the rules: :mod:`ald_tune.config.constraints`). One
``to_dict()`` snapshot goes to Ray's param space, MLflow's params and the checkpoint;
``Config.from_dict`` reverses it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from ald_tune.config.constraints import MAX_EPOCHS, MAX_NZ, MAX_WIDTH, PAIRS, fail
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
from ald_tune.errors import ConfigError, shown

#: The sections are defined in :mod:`ald_tune.config.sections` and
#: :mod:`ald_tune.config.sweep_sections`, the bounds in :mod:`ald_tune.config.constraints`
#: (the package imports them from there); they stay importable from here for code written
#: before the split.
__all__ = [
    "MAX_EPOCHS",
    "MAX_NZ",
    "MAX_WIDTH",
    "METRICS",
    "PAPER_VOTES",
    "SECTIONS",
    "ALDConfig",
    "Config",
    "DataConfig",
    "EvalConfig",
    "GridConfig",
    "ModelConfig",
    "TrainConfig",
    "TuneConfig",
    "check_ald_schedule",
    "load_config",
    "parse_override",
    "read_space",
    "safe_yaml",
    "tune_constraint",
]


@dataclass(frozen=True)
class Config:
    """Everything one training run or sweep needs."""

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    ald: ALDConfig = dataclasses.field(default_factory=ALDConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    grid: GridConfig = dataclasses.field(default_factory=GridConfig)
    tune: TuneConfig = dataclasses.field(default_factory=TuneConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """A JSON-ready snapshot (lists for tuples, a dict for votes)."""
        out: dict[str, dict[str, Any]] = {}
        for name in SECTIONS:
            sec = getattr(self, name)
            d = {}
            for f in fields(sec):
                v = getattr(sec, f.name)
                if isinstance(f.metadata.get("check"), PAIRS):
                    v = {k: list(x) if isinstance(x, tuple) else x for k, x in v}
                elif isinstance(v, tuple):
                    v = list(v)
                d[f.name] = v
            out[name] = d
        return out

    def flat(self) -> dict[str, Any]:
        """``{"section.field": value}``, e.g. for MLflow params."""
        return {f"{s}.{k}": v for s, sec in self.to_dict().items() for k, v in sec.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "config") -> Config:
        """Build from a (possibly partial) snapshot, rejecting unknown keys."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"{source}: expected a mapping of sections, got {type(d).__name__}.")
        unknown = set(d) - set(SECTIONS)
        if unknown:
            raise ConfigError(
                f"{source}: unknown section(s) {shown(sorted(map(str, unknown)))}; "
                f"allowed: {list(SECTIONS)}."
            )
        parts = {}
        for name, sec_cls in SECTIONS.items():
            raw = d.get(name) or {}
            if not isinstance(raw, Mapping):
                raise ConfigError(
                    f"{source}: section '{name}' must be a mapping, got {shown(raw)}."
                )
            allowed = {f.name for f in fields(sec_cls)}
            bad = set(raw) - allowed
            if bad:
                raise ConfigError(
                    f"{source}: unknown key(s) {shown(sorted(map(str, bad)))} in section '{name}'; "
                    f"allowed: {sorted(allowed)}."
                )
            parts[name] = sec_cls(**raw)
        return cls(**parts)

    def replace(self, **sections: Mapping[str, Any]) -> Config:
        """Return a copy with some fields of some sections changed."""
        d = self.to_dict()
        for name, changes in sections.items():
            if name not in d:
                raise ConfigError(f"unknown section {name!r}; allowed: {list(SECTIONS)}.")
            d[name].update(changes)
        return Config.from_dict(d)


def check_ald_schedule(cfg: Config) -> None:
    """ALD runs only: the rule's window and patience must fit in the run.

    (Fixed-size runs ignore both, so this is not a check of :class:`Config` itself.)

    Raises:
        ConfigError: naming the field, the bound and the value.
    """
    if cfg.ald.window > cfg.train.epochs:
        raise fail(
            "ALDConfig",
            "window",
            f"at most train.epochs={cfg.train.epochs}",
            cfg.ald.window,
            "lower ald.window or raise train.epochs",
        )
    if cfg.ald.patience > cfg.train.epochs:
        raise fail(
            "ALDConfig",
            "patience",
            f"at most train.epochs={cfg.train.epochs}",
            cfg.ald.patience,
            "lower ald.patience or raise train.epochs",
        )


def parse_override(text: str) -> tuple[str, str, Any]:
    """Parse ``section.field=value``; the value is read as YAML (``[2,4]``, ``null``).

    Raises:
        ConfigError: for a malformed override, unknown section or unknown field.
    """
    import yaml

    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(
            f"override {shown(text)} must look like section.field=value, e.g. train.epochs=10."
        )
    key, raw = text.split("=", 1)
    section, name = key.strip().split(".", 1)
    if section not in SECTIONS:
        raise ConfigError(
            f"override {shown(text)}: unknown section {shown(section, 60)}; "
            f"allowed: {list(SECTIONS)}."
        )
    allowed = [f.name for f in fields(SECTIONS[section])]
    if name not in allowed:
        raise ConfigError(
            f"override {shown(text)}: unknown field {shown(name, 60)} in section '{section}'; "
            f"allowed: {allowed}."
        )
    try:
        value = safe_yaml(raw, f"override {shown(text)}") if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {shown(text)}: value is not valid YAML ({exc}).") from None
    return section, name, value


def _merge(base: dict, extra: Mapping, source: str) -> dict:
    for section, values in extra.items():
        if not isinstance(values, Mapping):
            raise ConfigError(
                f"{source}: section '{section}' must be a mapping, got {shown(values)}."
            )
        base.setdefault(section, {}).update(values)
    return base


MAX_SPACE_BYTES = 1_000_000
MAX_OVERRIDE_CHARS = 10_000


def safe_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load`` without aliases: ``*name`` re-uses a node, and nested aliases
    expand exponentially when the value is walked or printed (a 440-byte file can stand
    for gigabytes). A search space never needs one.

    Raises:
        ConfigError: an alias (naming the source and the fix); ``yaml.YAMLError`` for bad syntax.
    """
    import yaml

    class NoAliases(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise ConfigError(
                    f"{source}: YAML alias *{shown(event.anchor, 40)} (line "
                    f"{event.start_mark.line + 1}) is not allowed: aliases can expand to "
                    "huge values. Fix: write the value out instead of &anchor / *alias."
                )
            return super().compose_node(parent, index)

    if len(text) > MAX_OVERRIDE_CHARS and source.startswith("override"):
        raise ConfigError(
            f"{source} is {len(text):,} characters; at most {MAX_OVERRIDE_CHARS:,}. "
            "Fix: put long values in the search-space file."
        )
    loader = NoAliases(text)  # a SafeLoader: plain mappings, lists and scalars only
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_space(path: str | os.PathLike) -> dict[str, Any]:
    """Read a search-space YAML safely; errors name the file."""
    import yaml

    path = os.fspath(path)
    if os.path.isdir(path):
        raise ConfigError(
            f"search-space file {shown(path)} is a folder, not a YAML file. Fix: pass "
            "--space with a file, e.g. search_spaces/digits.yaml."
        )
    if not os.path.isfile(path):
        raise ConfigError(
            f"search-space file {shown(path)} does not exist. Fix: pass --space with "
            "a YAML file, e.g. search_spaces/digits.yaml."
        )
    size = os.path.getsize(path)
    if size > MAX_SPACE_BYTES:
        raise ConfigError(
            f"search-space file {shown(path)} is {size:,} bytes; a search space is a few "
            f"kilobytes (at most {MAX_SPACE_BYTES:,}). Fix: pass the right --space file."
        )
    try:
        with open(path, encoding="utf-8") as fh:
            raw = safe_yaml(fh.read(), f"search-space file {shown(path)}")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"search-space file {shown(path)} cannot be read as UTF-8 text: {exc}. "
            "Fix: pass a YAML text file, e.g. search_spaces/digits.yaml."
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"search-space file {shown(path)} is not valid YAML: {exc}. Fix: correct "
            "the syntax (plain mappings and lists only; no !!python tags)."
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"search-space file {shown(path)} must hold a mapping of sections, "
            f"got {type(raw).__name__}."
        )
    return raw


def load_config(
    path: str | os.PathLike, preset: str | None = None, overrides: Iterable[str] = ()
) -> Config:
    """Load a search-space file into a validated :class:`Config`.

    Args:
        path: the YAML file (e.g. ``search_spaces/digits.yaml``).
        preset: a name under ``presets:``; None uses ``default_preset`` if set.
        overrides: ``section.field=value`` strings applied last.

    Returns:
        The frozen configuration.

    Raises:
        ConfigError: missing/unreadable file, unknown preset, section or key, or
            a field outside its allowed range (the message names it).

    Example:
        >>> cfg = load_config("search_spaces/digits.yaml", overrides=["train.epochs=5"])
        >>> cfg.train.epochs
        5
    """
    raw = dict(read_space(path))
    source = os.fspath(path)
    presets = raw.pop("presets", None) or {}
    default = raw.pop("default_preset", None)
    merged = _merge({}, raw, source)
    chosen = preset if preset is not None else default
    if chosen is not None:
        if chosen not in presets:
            raise ConfigError(
                f"{source}: unknown preset {chosen!r}; the file defines {sorted(presets)}."
            )
        merged = _merge(merged, presets[chosen], f"{source} preset {chosen!r}")
    for text in overrides:
        section, name, value = parse_override(text)
        merged.setdefault(section, {})[name] = value
    return Config.from_dict(merged, source=source)


def tune_constraint(name: str):
    """The constraint of one ``tune`` field (e.g. ``lr_range``), for callers that take the
    same value another way (the Optuna objective's ``search=``)."""
    return {f.name: f for f in fields(TuneConfig)}[name].metadata["check"]
