"""Which sweeps the MLflow rebuild picks: stores holding several sweeps of every kind.

The parent runs are made by hand in a real SQLite store (no training), with the tags a
sweep writes when it starts, so each case says exactly which sweeps exist and how they
ended.
"""

from __future__ import annotations

import pytest

from ald_tune.config.kinds import COMPARE_TAG, MAIN_RULE_TAG, SWEEP_TAG, SweepKind
from ald_tune.errors import ConfigError
from ald_tune.report.mlflow_rebuild import _parents, parse_pins, select
from ald_tune.tracking.runs import COMPLETE_TAG


class Store:
    """A SQLite MLflow store with an experiment; ``add`` makes one sweep parent run."""

    def __init__(self, tmp_path):
        from mlflow import MlflowClient

        self.c = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
        self.exp = self.c.create_experiment("e", artifact_location=str(tmp_path / "art"))
        self.clock = 1_000_000

    def add(
        self,
        name,
        kind,
        rule=None,
        compare=None,
        complete=False,
        status="FINISHED",
        main_rule=None,
        tags=None,
    ):
        self.clock += 1000  # every run newer than the last
        all_tags = {SWEEP_TAG: name, **SweepKind(kind, rule).tags(), **(tags or {})}
        if compare:
            all_tags[COMPARE_TAG] = compare
            all_tags[MAIN_RULE_TAG] = main_rule or "ald-tune"
        if complete:
            all_tags[COMPLETE_TAG] = "true"
        run = self.c.create_run(self.exp, start_time=self.clock, tags=all_tags, run_name=name)
        if status != "RUNNING":
            self.c.set_terminated(run.info.run_id, status=status, end_time=self.clock + 500)
        return run.info.run_id

    def compare(
        self,
        cid,
        rules=("ald-tune", "paper"),
        complete=True,
        fixed=True,
        asha=False,
        status="FINISHED",
    ):
        self.add(f"{cid}-grid", "grid", compare=cid, complete=complete)
        if asha:
            self.add(f"{cid}-asha", "asha", compare=cid, complete=complete)
        for r in rules:
            self.add(
                f"{cid}-{r}",
                "ald",
                r,
                compare=cid,
                complete=complete,
                status=status,
                main_rule=rules[0],
            )
        if fixed:
            self.add(f"{cid}-fixed", "fixed", compare=cid, complete=complete)

    def select(self, pins=None, **kw):
        return select(_parents(self.c, self.exp), pins, "e", **kw)


def names(sel):
    out = {
        k: sel.__dict__[k].data.tags[SWEEP_TAG]
        for k in ("grid", "asha", "fixed")
        if sel.__dict__[k] is not None
    }
    out.update({f"ald:{k}": r.data.tags[SWEEP_TAG] for k, r in sel.alds.items()})
    return out


def test_the_newest_complete_compare_wins_over_newer_partial_and_lone_sweeps(tmp_path):
    s = Store(tmp_path)
    s.compare("A", asha=True)
    s.compare("B", rules=("paper", "ald-tune"))  # newer, main rule paper
    s.compare("C", complete=False)  # newest, interrupted
    s.add("lone-grid", "grid")
    s.add("lone-ald", "ald", "ald-tune")
    s.add("old-untagged", "grid", tags={"ald_tune.kind": "nonsense"})
    sel = s.select()
    assert names(sel) == {
        "grid": "B-grid",
        "fixed": "B-fixed",
        "ald:paper": "B-paper",
        "ald:ald-tune": "B-ald-tune",
    }
    assert list(sel.alds) == ["paper", "ald-tune"]  # the compare's main rule first
    assert sel.compare == "B" and "newest complete compare, 'B'" in sel.note
    assert "B-grid" in sel.note and "from 3 compare run(s)" in sel.note


def test_a_compare_with_a_failed_or_running_sweep_is_not_complete(tmp_path):
    s = Store(tmp_path)
    s.compare("A")
    s.compare("B", status="RUNNING")  # its ALD sweeps never ended
    assert s.select().compare == "A"
    s.compare("C", status="FAILED")  # ended (a trial errored): usable
    assert s.select().compare == "C"


def test_pins_choose_the_group_of_the_pinned_sweep(tmp_path):
    s = Store(tmp_path)
    s.compare("A", asha=True)
    s.compare("B")
    sel = s.select(parse_pins(["grid=A-grid"]))
    assert names(sel) == {
        "grid": "A-grid",
        "asha": "A-asha",
        "fixed": "A-fixed",
        "ald:ald-tune": "A-ald-tune",
        "ald:paper": "A-paper",
    }
    sel = s.select(parse_pins(["ald=A-paper"]))  # one pinned ALD sweep replaces the rules
    assert names(sel)["grid"] == "A-grid" and list(sel.alds) == ["paper"]
    sel = s.select(parse_pins(["grid=B-grid", "ald=A-paper", "ald=B-paper"]))
    assert list(sel.alds) == ["paper (A-paper)", "paper (B-paper)"]  # same rule: by name
    assert "with the pinned sweeps" in sel.note


def test_without_any_compare_the_newest_ended_sweep_of_each_kind(tmp_path):
    s = Store(tmp_path)
    s.add("g1", "grid")
    s.add("a1", "ald", "ald-tune")
    s.add("p1", "ald", "paper")
    s.add("g2", "grid")
    s.add("a2", "ald", "ald-tune")
    s.add("g3", "grid", status="RUNNING")  # still running: not used
    s.add("f1", "fixed")  # fixed runs only when named
    s.add("h1", "asha", status="KILLED")  # interrupted: not used
    sel = s.select()
    assert names(sel) == {"grid": "g2", "ald:ald-tune": "a2", "ald:paper": "p1"}
    assert "no complete compare" in sel.note
    assert names(s.select(parse_pins(["fixed=f1"])))["fixed"] == "f1"


@pytest.mark.parametrize(
    "pins, pattern",
    [
        (["grid=nope"], r"sweep 'nope' \(grid\) not found in experiment 'e'"),
        (
            ["grid=A-paper"],
            r"sweep 'A-paper' is a ald \(paper\) sweep, not grid.*--sweep ald=A-paper",
        ),
    ],
)
def test_bad_pins_name_the_sweep_and_the_fix(tmp_path, pins, pattern):
    s = Store(tmp_path)
    s.compare("A")
    with pytest.raises(ConfigError, match=pattern):
        s.select(parse_pins(pins))


@pytest.mark.parametrize(
    "items, pattern",
    [
        (["grid"], "must look like KIND=NAME"),
        (["gird=x"], "must look like KIND=NAME"),
        (["grid=a", "grid=b"], "given twice"),
        (["ald="], "must look like KIND=NAME"),
    ],
)
def test_parse_pins_refuses_malformed_items(items, pattern):
    with pytest.raises(ConfigError, match=pattern):
        parse_pins(items)


def test_nothing_to_compare_says_which_sweep_is_missing(tmp_path):
    s = Store(tmp_path)
    s.add("a1", "ald", "ald-tune")
    with pytest.raises(ConfigError, match=r"no finished grid sweep.*ald-tune compare"):
        s.select()
    assert names(s.select(require_grid=False)) == {"ald:ald-tune": "a1"}
    s2 = Store(tmp_path / "two")
    s2.add("g1", "grid")
    with pytest.raises(ConfigError, match="no finished ALD sweep"):
        s2.select()
