"""A frozen dataclass read from, and written back to, one JSON object, key for key.

:class:`Record` is the base of the report's typed sections (:mod:`ald_tune.report.record`).
Its :meth:`~Record.from_dict` converts nested objects by the fields' type hints (a record,
a tuple of records, a dict of records) and keeps the order of the keys it read, so
``from_dict(d).to_dict() == d`` with the same key order: the JSON written back is the same
bytes. Keys no field names go to the one field marked ``metadata=REST`` (a row's metric
columns), else they are an error. By hand, not ``dacite``/``pydantic``/``cattrs``: none
of those is a dependency, and none keeps a record's key order and its absent optional
keys through a round trip, which the byte-for-byte rebuild from MLflow needs.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

R = TypeVar("R", bound="Record")

# The metadata of the one dict field that holds the keys no other field names (one per metric).
REST = {"rest": True}


@dataclass(frozen=True, kw_only=True)
class Record:
    """A frozen record read from, and written back to, one JSON object.

    ``key_order`` is the order of the keys it was read from (empty when built in code:
    then the fields' order, absent optional fields left out); it takes no part in
    equality.
    """

    key_order: tuple[str, ...] = field(default=(), compare=False, repr=False)

    _hints: ClassVar[dict[type, dict[str, Any]]] = {}

    @classmethod
    def _fields(cls) -> dict[str, Any]:
        """This record's fields -> their resolved types (cached per class)."""
        if cls not in Record._hints:
            hints = typing.get_type_hints(cls)
            Record._hints[cls] = {
                f.name: hints[f.name] for f in dataclasses.fields(cls) if f.name != "key_order"
            }
        return Record._hints[cls]

    @classmethod
    def _rest_name(cls) -> str | None:
        return next((f.name for f in dataclasses.fields(cls) if f.metadata.get("rest")), None)

    @classmethod
    def from_dict(cls: type[R], d: dict[str, Any]) -> R:
        """The record of one JSON object (as written by :meth:`to_dict`).

        Raises:
            ValueError: ``d`` is not a dict, or a required key is missing.
        """
        if not isinstance(d, dict):
            raise ValueError(f"{cls.__name__} must be read from a JSON object. Got {d!r}.")
        fields, rest_name = cls._fields(), cls._rest_name()
        kwargs: dict[str, Any] = {"key_order": tuple(d)}
        extra: dict[str, Any] = {}
        for k, v in d.items():
            if k in fields and k != rest_name:
                kwargs[k] = _read(fields[k], v)
            else:
                extra[k] = v
        if rest_name is not None:
            kwargs[rest_name] = extra
        elif extra:
            raise ValueError(
                f"{cls.__name__} has no field {sorted(extra)[0]!r} "
                f"(its fields: {', '.join(fields)})."
            )
        try:
            return cls(**kwargs)
        except TypeError as err:
            raise ValueError(f"{cls.__name__} cannot be read from {sorted(d)}: {err}") from err

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: the keys in the order read, else in the fields' order."""
        rest_name = self._rest_name()
        values = {
            name: getattr(self, name)
            for name in self._fields()
            if name != rest_name and (self.key_order or name in self._present())
        }
        if rest_name is not None:
            values.update(getattr(self, rest_name))
        order = self.key_order or tuple(values)
        return {k: _write(values[k]) for k in order if k in values}

    def _present(self) -> set[str]:
        """Built in code: the fields to write (an optional field left at None is absent)."""
        out = set()
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.default is not None or v is not None:
                out.add(f.name)
        return out


def _read(tp: Any, v: Any) -> Any:
    """A JSON value as the field's type: records, tuples of them, dicts of them."""
    if v is None:
        return None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _read(inner[0], v) if len(inner) == 1 else v
    if isinstance(tp, type) and issubclass(tp, Record):
        return tp.from_dict(v)
    if origin is tuple and isinstance(v, list):
        return tuple(_read(args[0], x) for x in v)
    if origin is dict and isinstance(v, dict) and len(args) == 2:
        return {k: _read(args[1], x) for k, x in v.items()}
    return v


def _write(v: Any) -> Any:
    if isinstance(v, Record):
        return v.to_dict()
    if isinstance(v, (tuple, list)):
        return [_write(x) for x in v]
    if isinstance(v, dict):
        return {k: _write(x) for k, x in v.items()}
    return v
