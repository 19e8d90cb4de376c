"""The report as a typed record: the same JSON both ways, older files read back."""

from __future__ import annotations

import copy
import json

import pytest
from test_build import ald_trials, grid_trials, trial
from test_nested import curve, nested_trial

from ald_tune.report.build import build_report, markdown
from ald_tune.report.record import AldSeed, GridRow, Method, Recommendation, Report


def _reports() -> dict[str, Report]:
    fixed = [trial({"recon_loss": 20.0}, seed=0, n_z_grid=7)]
    return {
        "plain": build_report(grid_trials(), ald_trials(), dataset="toy"),
        "paper, fixed, asha": build_report(
            grid_trials(),
            ald_trials(finals=(7, 9, 12)),
            asha=grid_trials(seeds=(0,)),
            fixed=fixed,
            rule="paper",
            wall={"grid": 50.0, "ald": 25.0, "asha": 30.0},
        ),
        "nested": build_report(
            grid_trials(),
            ald_trials(),
            nested=[nested_trial(0, curve()), nested_trial(1, curve(16))],
            intrinsic={
                "twonn": {"dimension": 5.2, "n_z": 6, "n_samples": 100, "cpu_s": 1.0, "wall_s": 1.0}
            },
        ),
    }


@pytest.fixture(scope="module")
def reports() -> dict[str, Report]:
    return _reports()


def test_to_dict_and_from_dict_give_the_same_json_key_for_key(reports):
    for name, rep in reports.items():
        d = rep.to_dict()
        again = Report.from_dict(json.loads(json.dumps(d)))
        assert again == rep, name
        assert again.to_dict() == d, name
        # the same bytes: same keys in the same order
        assert json.dumps(again.to_dict(), indent=1) == json.dumps(d, indent=1), name
        assert markdown(again) == markdown(rep) == markdown(d), name


def test_the_sections_are_typed_records(reports):
    rep = reports["nested"]
    assert isinstance(rep.grid.rows[0], GridRow) and isinstance(rep.ald.seeds[0], AldSeed)
    assert isinstance(rep.recommendation, Recommendation)
    assert all(isinstance(m, Method) for m in rep.methods)
    assert rep.criterion.plateau_edge == 8 and rep.criterion.best_region == (8, 16, 32)
    assert rep.grid.rows[2].metrics["recon_loss"] == pytest.approx(20.2)
    assert rep.method("ald") is not None and rep.method("nested") is not None
    assert rep.nested is not None and len(rep.nested.seeds) == 2
    assert rep.headline.speedups["speedup_compute"] == rep.speedup["grid"].compute
    with pytest.raises(AttributeError):  # frozen
        rep.dataset = "other"  # type: ignore[misc]


def test_a_comparison_json_without_the_optional_sections_still_reads_and_renders(reports):
    old = copy.deepcopy(reports["plain"].to_dict())
    for key in ("methods", "recommendation", "nested"):
        old.pop(key, None)
    for seed in old["ald"]["seeds"]:
        for key in ("near_edge", "steps_above_edge", "nz_over_edge", "answer_epochs", "gap"):
            del seed[key]
    for key in ("n_near_edge", "control_pairs", "control_within", "n_fixed_compared"):
        del old["ald"][key]
    del old["criterion"]["not_recorded"], old["criterion"]["near_edge_max_nz"]
    rep = Report.from_dict(old)
    assert rep.methods == () and rep.recommendation is None and rep.nested is None
    assert rep.ald.seeds[0].near_edge is None and rep.criterion.not_recorded is None
    assert rep.to_dict() == old  # absent stays absent
    md = markdown(rep)
    assert "# ALD vs grid search: toy" in md and "Recommended n_z" not in md


def test_a_report_without_a_required_section_names_it():
    d = _reports()["plain"].to_dict()
    del d["grid"]
    with pytest.raises(ValueError, match="grid"):
        Report.from_dict(d)
