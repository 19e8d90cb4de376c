"""Parameter constraints declared as data, checked by one generic validator.

Every field of every config dataclass carries a constraint object in its
``metadata["check"]``. The constraint coerces the raw value (from YAML, a CLI
override or Python) to the field's type and raises :class:`ConfigError` with a
message naming the parameter, the allowed range and the value received, in the
style of scikit-learn's ``_param_validation``:

    The 'n_z_min' parameter of ALDConfig must be an int in [1, inf). Got 0 instead.

Written by hand because no small, well-kept library validates frozen
dataclasses with these messages (pydantic would replace the dataclasses
themselves and is a heavy import).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from typing import Any

from ald_tune.errors import ConfigError, shown

#: Upper bounds: a size past these is a typo, refused before anything is allocated.
MAX_NZ = 4096
MAX_WIDTH = 65_536
MAX_EPOCHS = 100_000


def param(default: Any, check: Constraint, doc: str) -> Any:
    """Declare a config field with its constraint and its one-line doc."""
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for defaults of frozen configs")
    return field(default=default, metadata={"check": check, "doc": doc})


def _fmt(x: float | None, inf: str) -> str:
    return inf if x is None else repr(x)


@dataclass(frozen=True)
class Constraint:
    """Base class: ``coerce(value)`` returns the checked value or raises."""

    optional: bool = False

    def describe(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def _coerce(self, value: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def coerce(self, value: Any) -> Any:
        if value is None and self.optional:
            return None
        return self._coerce(value)

    def full_description(self) -> str:
        return self.describe() + (" or None" if self.optional else "")

    def check(self, value: Any, name: str, owner: str) -> Any:
        """The coerced value, or the standard :class:`ConfigError` naming ``name`` of
        ``owner``, what is allowed and the value received."""
        try:
            return self.coerce(value)
        except _Bad:
            raise ConfigError(
                f"The '{name}' parameter of {owner} must be {self.full_description()}. "
                f"Got {shown(value)} instead."
            ) from None


@dataclass(frozen=True)
class Int(Constraint):
    low: int | None = None
    high: int | None = None

    def describe(self) -> str:
        return f"an int in [{_fmt(self.low, '-inf')}, {_fmt(self.high, 'inf')}]".replace(
            "inf]", "inf)"
        ).replace("[-inf", "(-inf")

    def _coerce(self, value: Any) -> int:
        # bool is an int subclass in Python; True for "n_epochs" is a typo, not 1.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Bad
        if isinstance(value, float) and not value.is_integer():
            raise _Bad
        value = int(value)
        if (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            raise _Bad
        return value


@dataclass(frozen=True)
class Float(Constraint):
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        lo = "(" if self.low_open or self.low is None else "["
        hi = ")" if self.high_open or self.high is None else "]"
        return f"a float in {lo}{_fmt(self.low, '-inf')}, {_fmt(self.high, 'inf')}{hi}"

    def _coerce(self, value: Any) -> float:
        if isinstance(value, str):
            # PyYAML reads "1e-3" (no dot) as a string: accept numeric strings.
            try:
                value = float(value)
            except ValueError:
                raise _Bad from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Bad
        value = float(value)
        if not math.isfinite(value):
            raise _Bad
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            raise _Bad
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            raise _Bad
        return value


@dataclass(frozen=True)
class Bool(Constraint):
    def describe(self) -> str:
        return "a bool (true or false)"

    def _coerce(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise _Bad
        return value


@dataclass(frozen=True)
class Choice(Constraint):
    options: tuple[str, ...] = ()

    def describe(self) -> str:
        return "one of " + ", ".join(repr(o) for o in self.options)

    def _coerce(self, value: Any) -> str:
        if isinstance(value, bool) and str(value).lower() in self.options:
            return str(value).lower()  # YAML reads an unquoted `true` as a bool
        if not isinstance(value, str) or value not in self.options:
            raise _Bad
        return value


@dataclass(frozen=True)
class Text(Constraint):
    """A non-empty string of at most ``max_len`` characters (paths: the system's limit)."""

    max_len: int = 4096

    def describe(self) -> str:
        return f"a non-empty string of at most {self.max_len} characters"

    def _coerce(self, value: Any) -> str:
        if not isinstance(value, str) or not value.strip() or len(value) > self.max_len:
            raise _Bad
        return value


#: ``package.module:function`` (a dotted attribute after the colon is allowed too).
IMPORT_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


@dataclass(frozen=True)
class ImportPath(Text):
    """An import path ``package.module:function``."""

    def describe(self) -> str:
        return "an import path package.module:function"

    def _coerce(self, value: Any) -> str:
        text = super()._coerce(value)
        if not IMPORT_PATH.fullmatch(text):
            raise _Bad
        return text


@dataclass(frozen=True)
class IntTuple(Constraint):
    """A non-empty list of ints, each >= ``low``; optionally unique."""

    low: int = 1
    unique: bool = True
    min_len: int = 1
    high: int | None = None
    max_len: int = 64

    def describe(self) -> str:
        uniq = "distinct " if self.unique else ""
        each = f"in [{self.low}, {self.high}]" if self.high is not None else f">= {self.low}"
        return f"a list of {self.min_len} to {self.max_len} {uniq}ints, each {each}"

    def _coerce(self, value: Any) -> tuple[int, ...]:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise _Bad
        items = tuple(value)
        if not self.min_len <= len(items) <= self.max_len:
            raise _Bad
        out = tuple(Int(low=self.low, high=self.high).coerce(v) for v in items)
        if self.unique and len(set(out)) != len(out):
            raise _Bad
        return out


@dataclass(frozen=True)
class Votes(Constraint):
    """A mapping metric -> 'up' | 'down', stored as a sorted tuple of pairs."""

    metrics: tuple[str, ...] = ()

    def describe(self) -> str:
        return "a non-empty mapping from metric to 'up' or 'down', metrics among " + ", ".join(
            self.metrics
        )

    def _coerce(self, value: Any) -> tuple[tuple[str, str], ...]:
        pairs = value.items() if isinstance(value, dict) else value
        try:
            out = tuple((str(k), str(v)) for k, v in pairs)
        except (TypeError, ValueError):
            raise _Bad from None
        if not out or any(k not in self.metrics or v not in ("up", "down") for k, v in out):
            raise _Bad
        if len({k for k, _ in out}) != len(out):
            raise _Bad
        return out


@dataclass(frozen=True)
class Kwargs(Constraint):
    """A mapping of names to plain values (numbers, strings, bools, None, or lists of
    those), at most ``max_keys``; stored as a sorted tuple of pairs (the configs are
    frozen), given back as a dict."""

    max_keys: int = 32

    def describe(self) -> str:
        return (
            f"a mapping of at most {self.max_keys} names to numbers, strings, bools or "
            "lists of them"
        )

    def _coerce(self, value: Any) -> tuple[tuple[str, Any], ...]:
        if not isinstance(value, dict) and not isinstance(value, (list, tuple)):
            raise _Bad
        pairs = value.items() if isinstance(value, dict) else value
        try:
            out = tuple(sorted((str(k), _plain(v)) for k, v in pairs))
        except (TypeError, ValueError):
            raise _Bad from None
        if len(out) > self.max_keys or len({k for k, _ in out}) != len(out):
            raise _Bad
        if not all(NAME_RULE.fullmatch(k) and "." not in k for k, _ in out):
            raise _Bad
        return out


def _plain(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError
        return v
    if isinstance(v, (list, tuple)) and len(v) <= 256:
        if any(isinstance(x, (list, tuple, dict)) for x in v):
            raise ValueError  # one level of lists only
        return tuple(_plain(x) for x in v)
    raise ValueError


#: Constraints whose values are stored as pairs and written out as mappings.
PAIRS = (Votes, Kwargs)


@dataclass(frozen=True)
class FloatPair(Constraint):
    """A [low, high] range of positive floats with low < high."""

    def describe(self) -> str:
        return "a list [low, high] of two positive floats with low < high"

    def _coerce(self, value: Any) -> tuple[float, float]:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise _Bad
        items = tuple(value)
        if len(items) != 2:
            raise _Bad
        lo, hi = (Float(low=0.0, low_open=True).coerce(v) for v in items)
        if lo >= hi:
            raise _Bad
        return (lo, hi)


class _Bad(Exception):
    """Internal signal: the value broke the constraint."""


def validate_fields(obj: Any) -> None:
    """Coerce and check every field of a frozen dataclass instance in place.

    Raises:
        ConfigError: naming the first bad field, the allowed range and the value.
    """
    cls = type(obj).__name__
    for f in fields(obj):
        check: Constraint | None = f.metadata.get("check")
        if check is None:
            continue
        raw = getattr(obj, f.name)
        try:
            value = check.coerce(raw)
        except _Bad:
            raise ConfigError(
                f"The '{f.name}' parameter of {cls} must be {check.full_description()}. "
                f"Got {shown(raw)} instead."
            ) from None
        object.__setattr__(obj, f.name, value)


def fail(cls: str, name: str, must: str, value: Any, fix: str = "") -> ConfigError:
    """Build the standard error for a cross-field rule."""
    msg = f"The '{name}' parameter of {cls} must be {must}. Got {shown(value)} instead."
    return ConfigError(msg + (f" Fix: {fix}" if fix else ""))


NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_name(value: Any, flag: str) -> str:
    """A name the user gives (a sweep, compare, experiment or study): it becomes a folder
    and an MLflow tag, so only letters, digits, ``.``, ``_`` and ``-``, starting with a
    letter or digit, at most 100 characters (no path separators, no ``..``, no quotes).

    Raises:
        ConfigError: naming the flag, the value (bounded) and the fix.
    """
    if isinstance(value, str) and NAME_RULE.fullmatch(value) and ".." not in value:
        return value
    raise ConfigError(
        f"{flag} must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or "
        f"digit (it names a folder and an MLflow tag). Got {shown(value)} instead. "
        f"Fix: e.g. {flag} my-sweep-1."
    )
