"""The comparison report: hand-made trials with a known plateau (milliseconds), then one
round trip of real scripted sweeps through MLflow (seconds)."""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import replace

import pytest
from conftest import ONE_AT_A_TIME

import ald_tune.report
from ald_tune.report.build import build_report, recommend
from ald_tune.report.files import FILES, markdown, write_report
from ald_tune.report.mlflow_rebuild import comparison_from_mlflow, report_from_mlflow
from ald_tune.sweeps.results import TrialRecord
from ald_tune.testing import SCRIPTED

NZ = (2, 4, 8, 16, 32)
# Last-epoch means per n_z: everything improves until n_z = 8, then a flat, noisy plateau.
MEANS = {
    "recon_loss": {2: 40.0, 4: 30.0, 8: 20.2, 16: 20.0, 32: 20.1},
    "fid_gen": {2: 50.0, 4: 25.0, 8: 10.1, 16: 10.0, 32: 9.95},
    "fid_recon": {2: 20.0, 4: 12.0, 8: 5.05, 16: 5.0, 32: 5.02},
    "neg_elbo": {2: 46.0, 4: 37.0, 8: 29.2, 16: 29.0, 32: 29.1},
    "silhouette": {2: 0.5, 4: 0.4, 8: 0.3, 16: 0.25, 32: 0.2},
}
# Seed 0 sits at mean - d, seed 1 at mean + d: per-n_z sd = d * sqrt(2).
NOISE = {
    "recon_loss": 0.05,
    "fid_gen": 0.2,
    "fid_recon": 0.01,
    "neg_elbo": 0.05,
    "silhouette": 0.01,
}
EPOCHS = 10


def trial(
    last: dict,
    *,
    seed=0,
    n_z_grid=None,
    final_n_z=None,
    epochs=EPOCHS,
    cpu=1.0,
    status="TERMINATED",
    time_s=10.0,
    n_z_path=None,
):
    """A trial record like SweepRecord.trials: metrics drift towards ``last`` over the epochs;
    its time (training seconds summed over epochs) is ``time_s``."""
    hist = []
    for e in range(epochs):
        rec = {k: v + (epochs - 1 - e) * 0.5 for k, v in last.items()}
        nz = n_z_grid if n_z_grid is not None else (n_z_path or [64] * epochs)[e]
        hist.append(
            {
                "epoch": e,
                "n_z": nz,
                **rec,
                "kl": 5.0,
                "cpu_time_s": cpu,
                "train_time_s": time_s / epochs,
            }
        )
    return TrialRecord(
        trial_id=f"t{seed}-{n_z_grid}",
        kind="grid" if n_z_grid else "ald",
        rule=None if n_z_grid else "ald-tune",
        seed=seed,
        n_z_grid=n_z_grid,
        final_n_z=final_n_z if final_n_z is not None else n_z_grid,
        status=status,
        history=hist,
    )


def grid_trials(seeds=(0, 1), means=MEANS):
    out = []
    for nz in NZ:
        for s in seeds:
            sign = -1 if s == 0 else 1
            last = {m: means[m][nz] + sign * NOISE[m] * (len(seeds) > 1) for m in means}
            out.append(trial(last, seed=s, n_z_grid=nz))
    return out


def ald_trials(finals=(7, 9), cpu=2.0):
    out = []
    for s, nz in enumerate(finals):
        last = {m: MEANS[m][8] + 0.01 * s for m in MEANS}
        path = [64] * 5 + [nz] * (EPOCHS - 5)
        out.append(trial(last, seed=s, final_n_z=nz, cpu=cpu, n_z_path=path))
    return out


@pytest.fixture(scope="module")
def report():
    return build_report(
        grid_trials(), ald_trials(), wall={"grid": 50.0, "ald": 25.0}, dataset="toy"
    ).to_dict()


def row(rep, nz):
    return next(r for r in rep["grid"]["rows"] if r["n_z"] == nz)


def test_plateau_edge_best_region_optima_and_mean_rank(report):
    crit, grid = report["criterion"], report["grid"]
    assert crit["plateau_edge"] == 8 and crit["best_region"] == [8, 16, 32]
    assert crit["optimum_nz"] == 8 and crit["optimum_rule"] == "plateau_edge"
    assert {m: o["n_z"] for m, o in grid["optimum_by_metric"].items()} == {
        "recon_loss": 16,
        "fid_gen": 32,
        "fid_recon": 16,
        "neg_elbo": 16,
        "silhouette": 2,
    }
    assert grid["optimum_by_metric"]["recon_loss"]["value"] == pytest.approx(20.0)
    # Ranks per metric averaged: 2 -> 4.2, 4 -> 3.6, 8 -> 3.0, 16 -> 1.8, 32 -> 2.4.
    assert [r["mean_rank"] for r in grid["rows"]] == pytest.approx([4.2, 3.6, 3.0, 1.8, 2.4])
    assert grid["mean_rank_nz"] == 16
    assert row(report, 8)["recon_loss"] == pytest.approx(20.2)  # mean over the two seeds
    assert grid["n_seeds"] == 2 and grid["n_errored"] == 0


def test_tolerances_are_recorded_with_their_source(report):
    tol = report["criterion"]["tolerances"]
    assert set(tol) == {"recon_loss", "fid_gen", "fid_recon"}  # silhouette is not in it
    sd = {m: NOISE[m] * math.sqrt(2) for m in NOISE}  # pooled sd of the seeds
    assert tol["recon_loss"]["spread"] == pytest.approx(sd["recon_loss"])
    assert tol["recon_loss"]["tolerance"] == pytest.approx(0.02 * 20.0)  # relative floor wins
    assert tol["fid_gen"]["tolerance"] == pytest.approx(2 * sd["fid_gen"])  # 2 x spread wins
    assert tol["fid_gen"]["best"] == pytest.approx(9.95) and tol["fid_gen"]["best_nz"] == 32
    assert all(t["spread_source"].startswith("grid seeds") for t in tol.values())
    assert report["criterion"]["rel_floor"] == 0.02


def test_one_grid_seed_takes_the_spread_from_epoch_to_epoch_noise():
    # The toy metrics drift linearly (no noise): first differences see none, the floor rules.
    one_seed = grid_trials(seeds=(0,))
    t = build_report(one_seed, ald_trials()).to_dict()["criterion"]["tolerances"]["recon_loss"]
    assert t["spread_source"].startswith("one grid seed") and t["spread"] == pytest.approx(0)
    assert t["tolerance"] == pytest.approx(0.02 * 20.0)
    # Alternating +-0.3 around the drift: the 9 differences are the drift's step +-0.6.
    for tr in one_seed:
        for h in tr.history:
            h["fid_gen"] += 0.3 if h["epoch"] % 2 else -0.3
    t = build_report(one_seed, ald_trials()).to_dict()["criterion"]["tolerances"]["fid_gen"]
    diffs = [0.6 * (-1) ** e for e in range(9)]
    mean = sum(diffs) / 9
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 8)
    assert t["spread"] == pytest.approx(sd / math.sqrt(2), rel=1e-6)
    assert "(40 dof)" in t["spread_source"]  # 5 trials x (9 diffs - 1)
    # The same for every ALD rule: the ALD seeds play no part.
    other = build_report(one_seed, ald_trials(finals=(3, 30))).to_dict()["criterion"]["tolerances"]
    assert other["fid_gen"]["spread"] == t["spread"]


def test_ald_seeds_against_the_best_region(report):
    a = report["ald"]
    assert a["n_z"] == [7, 9] and a["n_z_mean"] == 8 and a["n_z_std"] == pytest.approx(math.sqrt(2))
    s7, s9 = a["seeds"]
    assert (s7["in_region"], s7["distance"], s7["nearest_region_nz"]) == (False, 1, 8)
    assert (s9["in_region"], s9["distance"]) == (True, 0)  # between 8 and 16, both in it
    assert a["n_in_region"] == 1 and report["headline"]["ald_in_region_fraction"] == 0.5
    assert report["headline"]["ald_nz_mean"] == 8 and report["headline"]["grid_plateau_nz"] == 8


def test_final_metrics_against_the_optimum_and_the_fixed_run_at_alds_n_z():
    fixed = [trial({m: MEANS[m][16] + 1.0 for m in MEANS}, seed=s, n_z_grid=9) for s in (0, 1)]
    rep = build_report(grid_trials(), ald_trials(finals=(7, 9)), fixed=fixed).to_dict()
    s7, s9 = rep["ald"]["seeds"]
    assert s7["fixed_source"] == "not run" and s7["fixed"] is None
    assert s9["fixed_source"] == "fixed" and s9["fixed"]["recon_loss"] == pytest.approx(21.0)
    vs = rep["vs"]["metrics"]["recon_loss"]
    assert vs["grid_optimum"] == pytest.approx(20.2) and vs["ald"] == pytest.approx(20.205)
    assert vs["fixed_at_ald_nz"] == pytest.approx(21.0) and rep["vs"]["n_fixed_seeds"] == 1
    # Without fixed runs, the grid trial at that exact n_z stands in.
    rep = build_report(grid_trials(), ald_trials(finals=(8, 16))).to_dict()
    assert [s["fixed_source"] for s in rep["ald"]["seeds"]] == ["grid", "grid"]
    assert rep["ald"]["seeds"][1]["fixed"]["recon_loss"] == pytest.approx(20.0)


def test_cost_and_speedups_count_errored_trials_and_fall_back_to_trial_time():
    broken = trial({m: math.nan for m in MEANS}, seed=9, n_z_grid=4, epochs=3, status="ERROR")
    asha = [trial({m: MEANS[m][nz] for m in MEANS}, n_z_grid=nz, epochs=4) for nz in NZ]
    rep = build_report(
        [*grid_trials(), broken],
        ald_trials(cpu=2.0),
        asha=asha,
        wall={"grid": 50.0, "ald": 25.0, "asha": 100.0},
    ).to_dict()
    c, s = rep["cost"], rep["speedup"]
    assert c["grid"]["trial_epochs"] == 10 * EPOCHS + 3 and c["grid"]["cpu_s"] == pytest.approx(103)
    assert c["grid"]["n_errored"] == 1 and rep["grid"]["n_errored"] == 1
    assert row(rep, 4)["n_seeds"] == 2  # the errored trial is left out
    assert c["ald"]["cpu_s"] == pytest.approx(2 * EPOCHS * 2.0)
    assert s["grid"]["compute"] == pytest.approx(103 / 40)
    assert s["grid"]["compute_per_seed"] == pytest.approx(103 / 20)
    assert s["grid"]["wall"] == pytest.approx(2.0) and s["asha"]["compute"] == pytest.approx(0.5)
    assert rep["headline"]["speedup_compute_vs_asha"] == pytest.approx(0.5)
    # No per-epoch CPU time: trial time x tune.cpus_per_trial (from MLflow params here).
    ald = ald_trials()
    for t in ald:
        t.cpus = 2.0  # tune.cpus_per_trial
        for h in t.history:
            del h["cpu_time_s"]
    rep = build_report(grid_trials(), ald).to_dict()
    assert rep["cost"]["ald"]["cpu_s"] == pytest.approx(2 * 10.0 * 2.0)
    assert rep["cost"]["ald"]["cpu_source"] == ["time_s x cpus_per_trial"]
    assert rep["speedup"]["grid"]["wall"] is None  # no wall times given


def test_nan_metrics_single_nz_grid_and_empty_region():
    grid = grid_trials()
    grid[1].history[-1]["fid_recon"] = math.nan  # n_z 2, seed 1
    rep = build_report(grid, ald_trials()).to_dict()
    assert row(rep, 2)["fid_recon_n"] == 1 and row(rep, 2)["fid_recon"] == pytest.approx(19.99)
    json.dumps(rep, allow_nan=False)  # JSON-ready: NaN -> None
    rep = build_report([t for t in grid_trials() if t.n_z_grid == 16], ald_trials()).to_dict()
    assert rep["criterion"]["best_region"] == [16] and rep["grid"]["mean_rank_nz"] == 16
    assert [s["in_region"] for s in rep["ald"]["seeds"]] == [False, False]
    # Opposed metrics: no n_z is near the best on both; the mean rank stands in.
    means = {**MEANS, "fid_gen": {2: 1.0, 4: 5.0, 8: 10.0, 16: 20.0, 32: 40.0}}
    rep = build_report(grid_trials(means=means), ald_trials()).to_dict()
    assert rep["criterion"]["best_region"] == [] and rep["criterion"]["plateau_edge"] is None
    assert rep["criterion"]["optimum_nz"] == rep["grid"]["mean_rank_nz"]
    assert rep["criterion"]["optimum_rule"].startswith("mean_rank")


def test_criterion_metrics_is_a_parameter():
    rep = build_report(
        grid_trials(), ald_trials(), criterion_metrics=("recon_loss", "silhouette"), rel_floor=0.55
    ).to_dict()
    # recon <= 20 + 11 keeps 4..32; silhouette >= 0.5 - 0.275 (higher is better) keeps 2..16.
    assert rep["criterion"]["metrics"] == ["recon_loss", "silhouette"]
    assert rep["criterion"]["best_region"] == [4, 8, 16]


def test_bad_input_says_what_is_missing():
    with pytest.raises(ValueError, match=r"no finished ALD trials.*0 given"):
        build_report(grid_trials(), []).to_dict()
    with pytest.raises(ValueError, match=r"no finished ALD trials.*2 given, 2 errored"):
        build_report(grid_trials(), [replace(t, status="ERROR") for t in ald_trials()]).to_dict()
    with pytest.raises(ValueError, match="no finished grid trials"):
        build_report([], ald_trials()).to_dict()
    with pytest.raises(ValueError, match=r"criterion_metrics.*'kl'"):
        build_report(grid_trials(), ald_trials(), criterion_metrics=("kl",)).to_dict()
    with pytest.raises(ValueError, match=r"rel_floor.*Got -1"):
        build_report(grid_trials(), ald_trials(), rel_floor=-1).to_dict()
    grid = grid_trials()
    for t in grid:
        for h in t.history:
            h["fid_gen"] = float("nan")  # recorded, never finite: a broken FID
    with pytest.raises(ValueError, match="'fid_gen' has no finite value"):
        build_report(grid, ald_trials()).to_dict()


def test_metrics_not_recorded_leave_the_criterion_and_the_votes():
    """Feature vectors have no FID: the criterion uses the metrics that exist, the paper
    rule's missing votes are named, and the Markdown says both."""
    grid, ald = grid_trials(), ald_trials()
    for t in [*grid, *ald]:
        for h in t.history:
            h.pop("fid_gen"), h.pop("fid_recon")
    rep = build_report(grid, ald, rule="paper").to_dict()
    assert rep["criterion"]["metrics"] == ["recon_loss"]
    assert rep["criterion"]["not_recorded"] == ["fid_gen", "fid_recon"]
    assert rep["ald"]["votes_not_recorded"] == ["fid_gen", "fid_recon"]
    with pytest.raises(ValueError, match="none of the criterion metrics"):
        build_report(grid, ald, criterion_metrics=("fid_gen",)).to_dict()
    text = markdown(rep)
    assert "Not recorded: fid_gen, fid_recon" in text and "they did not vote" in text
    full = build_report(grid_trials(), ald_trials(), rule="paper").to_dict()
    assert full["criterion"]["not_recorded"] == [] and full["ald"]["votes_not_recorded"] == []


def test_files_and_markdown(report, tmp_path):
    paths = write_report(report, str(tmp_path / "out"))
    assert set(paths) == {"json", "csv", "md", "fig_metrics", "fig_epochs", "fig_cost"}
    assert sorted(os.path.basename(p) for p in paths.values()) == sorted(FILES)
    assert ald_tune.report.build.write_report is write_report  # build re-exports the files
    assert json.loads(open(paths["json"]).read()) == report
    rows = list(csv.DictReader(open(paths["csv"])))
    assert [r["method"] for r in rows] == ["grid"] * 5 + ["ald"] * 2
    assert [r["n_z"] for r in rows] == ["2", "4", "8", "16", "32", "7", "9"]
    assert rows[-1]["in_region"] == "True" and rows[-2]["distance"] == "1"
    for key in ("fig_metrics", "fig_epochs", "fig_cost"):
        assert open(paths[key], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
        assert open(paths[key][:-4] + ".svg").read(200).lstrip().startswith("<?xml")
    md = markdown(report)
    assert open(paths["md"]).read() == md
    for text in (
        "n_z = 8; best region {8, 16, 32}",
        "mean-rank choice n_z = 16",
        "7, 9 (mean 8.0",
        "1/2 in the best region",
        "| recon_loss | 20.000 | 16 |",
        "| 0.400 |",
        "compute 2.50x (per ALD seed 5.00x), wall time 2.00x",
        "not run",
    ):
        assert text in md, text


# ---------------------------------------------------------------- through MLflow
@pytest.mark.integration
def test_report_from_mlflow_matches_the_sweep_results(ray_session, tmp_path):
    from mlflow import MlflowClient

    from ald_tune.config.schema import load_config
    from ald_tune.sweeps.run import run_sweep
    from ald_tune.sweeps.tuner import SweepOptions

    cfg = load_config(
        "search_spaces/digits.yaml",
        overrides=[
            "train.epochs=30",
            "grid.n_z=[2, 8, 16]",
            "tune.num_samples=2",
            "tune.checkpoint_every=5",
            "tune.checkpoint_min_s=0",
            "tune.grid_seeds=1",
            ONE_AT_A_TIME,
            "ald.final_share=0",
        ],
    )
    res = {
        m: run_sweep(
            cfg, SweepOptions(mode=m, run_dir=str(tmp_path), trainer=SCRIPTED, verbose=False)
        )
        for m in ("grid", "ald")
    }
    direct = build_report(
        res["grid"].trials,
        res["ald"].trials,
        dataset="digits",
        wall={m: r.wall_time_s for m, r in res.items()},
    ).to_dict()
    uri = res["grid"].tracking_uri
    rebuilt, paths = report_from_mlflow(uri, "ald-tune-digits", str(tmp_path / "report"))
    rebuilt = rebuilt.to_dict()
    assert rebuilt["dataset"] == "digits"
    assert rebuilt["criterion"]["plateau_edge"] == direct["criterion"]["plateau_edge"] == 8
    assert rebuilt["criterion"]["best_region"] == direct["criterion"]["best_region"]
    assert rebuilt["grid"]["optimum_by_metric"] == direct["grid"]["optimum_by_metric"]
    assert rebuilt["grid"]["mean_rank_nz"] == direct["grid"]["mean_rank_nz"]
    assert rebuilt["ald"]["n_z"] == direct["ald"]["n_z"] == [t.final_n_z for t in res["ald"].trials]
    for m, tol in direct["criterion"]["tolerances"].items():
        assert rebuilt["criterion"]["tolerances"][m]["tolerance"] == pytest.approx(tol["tolerance"])
    assert len(direct["cost"]["grid"]["nodes"]) == 1
    assert rebuilt["cost"]["grid"]["nodes"] == direct["cost"]["grid"]["nodes"]
    for k in ("trial_epochs", "cpu_s"):
        assert rebuilt["cost"]["grid"][k] == pytest.approx(direct["cost"]["grid"][k])
    assert rebuilt["cost"]["ald"]["wall_s"] == res["ald"].wall_time_s  # the same number
    comp = comparison_from_mlflow(
        uri, "ald-tune-digits", pins={"grid": [res["grid"].name]}, build=False
    )
    assert comp.grid.parent_run_id == res["grid"].parent_run_id
    assert comp.alds["ald-tune"].parent_run_id == res["ald"].parent_run_id
    assert [t.n_z_grid for t in comp.grid.trials] == [2, 8, 16]
    assert all(t.epochs == 30 and t.finished for t in comp.alds["ald-tune"].trials)
    from ald_tune.errors import ConfigError

    with pytest.raises(ConfigError, match="sweep 'nope' .* not found"):
        comparison_from_mlflow(uri, "ald-tune-digits", pins={"ald": ["nope"]})
    with pytest.raises(ConfigError, match="experiment 'missing' not found"):
        comparison_from_mlflow(uri, "missing")
    c = MlflowClient(uri)
    arts = {a.path for a in c.list_artifacts(res["ald"].parent_run_id, "report")}
    assert arts >= {
        f"report/{p.rsplit('/', 1)[-1]}"
        for k, p in paths.items()
        if k not in ("rules", "recommendation")
    }
    got = c.get_run(res["ald"].parent_run_id).data.metrics
    assert got["report.grid_plateau_nz"] == 8
    assert got["report.ald_nz_mean"] == pytest.approx(rebuilt["ald"]["n_z_mean"])
    assert "report.speedup_compute" in got and got["recommended_n_z"] == rebuilt["ald"]["n_z"][1]
    grid_arts = {a.path for a in c.list_artifacts(res["grid"].parent_run_id, "report")}
    assert "report/rules.md" in grid_arts and "report/comparison.json" not in grid_arts


def test_recommend_takes_the_median_and_breaks_ties_upward():
    assert recommend([5, 8, 5], "ald-tune")["n_z"] == 5
    assert recommend([6, 4])["n_z"] == 6 and "upward" in recommend([6, 4])["reason"]
    assert recommend([7])["n_z"] == 7 and recommend([])["n_z"] is None
    seeds = [
        {"seed": 0, "n_z": 9, "in_region": True, "near_edge": False},
        {"seed": 1, "n_z": 3, "in_region": False, "near_edge": False},
    ]
    for s, steps, over in zip(seeds, (2.25, -1.0), (1.5, 0.5)):
        s.update(steps_above_edge=steps, nz_over_edge=over, distance=0)
    rec = recommend([9, 3, 4, 12], "paper", seeds, edge=6)
    assert rec == {
        "n_z": 9,
        "rule": "paper",
        "per_seed": [9, 3, 4, 12],
        "plateau_edge": 6,
        "in_region": True,
        "near_edge": False,
        "steps_above_edge": 2.25,
        "nz_over_edge": 1.5,
        "reason": rec["reason"],
        "per_seed_vs_edge": [{k: v for k, v in s.items() if k != "distance"} for s in seeds],
    }
    assert "median of the 4 seeds" in rec["reason"] and "upward" in rec["reason"]
    # Without a grid (ALD sweeps run alone): the same keys, nothing against an edge.
    alone = recommend([5], "ald-tune")
    assert set(alone) == set(rec) and alone["per_seed_vs_edge"] == []
    assert alone["plateau_edge"] is alone["near_edge"] is alone["steps_above_edge"] is None


def test_best_region_is_one_span_with_noise_holes_flagged():
    # n_z 16 misses on fid_gen by noise between 8 and 32, which are within tolerance.
    grid = grid_trials()
    for t in grid:
        if t.n_z_grid == 16:
            for h in t.history:
                h["fid_gen"] = 50.0
    rep = build_report(grid, ald_trials()).to_dict()
    crit = rep["criterion"]
    assert crit["within_tolerance"] == [8, 32] and crit["noise_holes"] == [16]
    assert crit["best_region"] == [8, 16, 32] and crit["plateau_edge"] == 8
    assert "| yes (noise hole) |" in markdown(rep)


def test_the_report_package_exports_the_builder():
    assert ald_tune.report.build_report is build_report and ald_tune.report.recommend is recommend


def test_alds_final_model_against_a_fixed_run_at_its_nz_per_seed():
    fixed = [
        trial({**{m: MEANS[m][16] for m in MEANS}, "recon_loss": 21.0}, seed=0, n_z_grid=9),
    ]
    rep = build_report(grid_trials(), ald_trials(finals=(7, 9)), fixed=fixed).to_dict()
    s7, s9 = rep["ald"]["seeds"]
    assert s7["gap"] is None
    gap = s9["gap"]["metrics"]
    tol = rep["criterion"]["tolerances"]["recon_loss"]["tolerance"]
    # ALD's final recon 20.21 against 21.0 from scratch: ALD is better (negative gap).
    assert gap["recon_loss"]["gap"] == pytest.approx(20.21 - 21.0)
    assert gap["recon_loss"]["tolerance"] == pytest.approx(tol) and gap["recon_loss"]["within"]
    # fid_gen: ALD 10.11 against 10.0, worse by 0.11, within a tolerance of 0.2+.
    assert gap["fid_gen"]["gap"] == pytest.approx(0.11) and s9["gap"]["within"]
    assert rep["ald"]["n_as_good_as_fixed"] == 1 and rep["ald"]["n_fixed_compared"] == 1
    worse = [trial({**{m: MEANS[m][16] for m in MEANS}, "fid_gen": 9.0}, seed=0, n_z_grid=9)]
    rep = build_report(grid_trials(), ald_trials(finals=(7, 9)), fixed=worse).to_dict()
    assert not rep["ald"]["seeds"][1]["gap"]["within"]  # 1.11 worse on fid_gen
    assert "0/1 seed(s) within tolerance" in markdown(rep)
