"""What a sweep is: its kind and rule, as tags and in its Tune folder."""

from __future__ import annotations

import pytest

from ald_tune.config.kinds import SweepKind, read_sweep_file, write_sweep_file
from ald_tune.config.schema import Config
from ald_tune.errors import ConfigError


def test_sweep_kinds_round_trip_through_tags():
    for kind in (
        SweepKind("grid"),
        SweepKind("asha"),
        SweepKind("fixed"),
        SweepKind("ald", "paper"),
        SweepKind("ald", "ald-tune"),
    ):
        assert SweepKind.from_tags(kind.tags()) == kind
    assert SweepKind.from_tags({}) is None
    assert SweepKind.from_tags({"ald_tune.kind": "ald", "ald_tune.rule": "x"}) is None
    with pytest.raises(ConfigError, match="kind must be one of"):
        SweepKind("fixd")
    with pytest.raises(ConfigError, match="needs a rule"):
        SweepKind("ald")


def test_the_kind_of_a_sweep_follows_its_mode_and_scheduler():
    cfg = Config()
    assert SweepKind.for_sweep("grid", cfg) == SweepKind("grid")
    assert SweepKind.for_sweep("grid", cfg.replace(tune={"scheduler": "asha"})).kind == "asha"
    assert SweepKind.for_sweep("ald", cfg) == SweepKind("ald", "ald-tune")
    assert SweepKind.for_sweep("grid", cfg, "fixed").label == "fixed"
    labels = [SweepKind("ald", r).label for r in ("paper", "ald-tune", "units")]
    assert labels == ["aldpaper", "aldtune", "aldunits"]  # each names its rule
    assert SweepKind("ald", "paper").old_labels == ("ald",)  # 0.2's name, found on --resume


def test_the_sweep_file_holds_the_same_facts(tmp_path):
    assert read_sweep_file(str(tmp_path)) == {}
    write_sweep_file(str(tmp_path / "s"), {"kind": "grid", "wall_s": 1.5})
    assert read_sweep_file(str(tmp_path / "s")) == {"kind": "grid", "wall_s": 1.5}
    (tmp_path / "s" / "ald_tune_sweep.json").write_text("{not json")
    assert read_sweep_file(str(tmp_path / "s")) == {}
    write_sweep_file("s3://bucket/x", {"kind": "grid"})  # remote: left to Tune, no error


def test_default_names_of_commands_started_in_the_same_second_differ():
    """Two ``compare`` (or ``ald``, ``train``) started together shared a default name, so the
    second wrote into the first's Tune folder and died."""
    import re

    from ald_tune.config.constraints import check_name
    from ald_tune.config.kinds import default_stamp

    stamps = {default_stamp() for _ in range(50)}
    assert len(stamps) == 50
    for stamp in stamps:
        assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", stamp)
        check_name(f"aldtune-fashion_mnist-{stamp}", "--name")
