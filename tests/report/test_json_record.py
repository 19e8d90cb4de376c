"""A record read from one JSON object and written back key for key."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from ald_tune.report.json_record import REST, Record


@dataclass(frozen=True, kw_only=True)
class Row(Record):
    n_z: int
    metrics: dict[str, float] = field(default_factory=dict, metadata=REST)
    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class Table(Record):
    rows: tuple[Row, ...]
    by_name: dict[str, Row] = field(default_factory=dict)
    best: Row | None = None


def test_the_keys_come_back_in_the_order_read_with_nested_records_typed():
    d = {
        "by_name": {"a": {"recon_loss": 1.5, "n_z": 2}},
        "rows": [{"recon_loss": 3.0, "n_z": 4, "note": "x", "kl": 0.5}],
    }
    t = Table.from_dict(d)
    assert isinstance(t.rows, tuple) and isinstance(t.rows[0], Row)
    assert t.rows[0].metrics == {"recon_loss": 3.0, "kl": 0.5} and t.by_name["a"].n_z == 2
    assert t.best is None and json.dumps(t.to_dict()) == json.dumps(d)  # best stays absent


def test_built_in_code_the_fields_order_is_used_and_unset_optionals_are_left_out():
    row = Row(n_z=8, metrics={"recon_loss": 2.0})
    assert row.to_dict() == {"n_z": 8, "recon_loss": 2.0}
    assert list(Table(rows=(row,)).to_dict()) == ["rows", "by_name"]
    assert Row.from_dict(row.to_dict()) == row


def test_an_unknown_or_missing_key_is_one_clear_error():
    with pytest.raises(ValueError, match="Table has no field 'colour'"):
        Table.from_dict({"rows": [], "colour": "red"})
    with pytest.raises(ValueError, match="Table cannot be read from"):
        Table.from_dict({"by_name": {}})
    with pytest.raises(ValueError, match="must be read from a JSON object"):
        Row.from_dict([1, 2])  # type: ignore[arg-type]
