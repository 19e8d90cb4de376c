"""The comparison driver: scripted fast path, the notebook, cluster configs; real cluster (slow)."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import pytest
import yaml
from conftest import ONE_AT_A_TIME, ROOT

from ald_tune.config.schema import load_config
from ald_tune.sweeps.run import run_sweep
from ald_tune.sweeps.tuner import SweepOptions
from ald_tune.testing import SCRIPTED


@pytest.mark.parametrize("path", ["cluster.yaml", "cluster-local.yaml"])
def test_cluster_configs_pass_rays_own_validation(path):
    from ray.autoscaler._private.util import prepare_config, validate_config

    with open(os.path.join(ROOT, path)) as fh:
        cfg = yaml.safe_load(fh)
    validate_config(prepare_config(cfg))
    text = open(os.path.join(ROOT, path)).read()
    assert "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false" in text and "ALD_TUNE_STORAGE" in text
    assert "pip install --user -e ~/ald-tune" in text
    # `ray submit` runs `python run.py`; every node gets a `python` before anything else
    first = cfg["setup_commands"][0]
    assert "python-is-python3" in first or 'ln -sf "$(command -v python3)"' in first


def run_compare(argv: list[str], scripted: bool) -> tuple[int, str]:
    """``ald_tune/run.py`` in this process (its Ray runtime), stdout captured; ``scripted``
    swaps in the scripted trainer (fast tests) through the plan's options."""
    import contextlib
    import io
    from dataclasses import replace

    from ald_tune.cli import compare as run
    from ald_tune.report import workflow

    buf = io.StringIO()
    real = workflow.Plan.options
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(buf):
        if scripted:
            mp.setattr(
                workflow.Plan,
                "options",
                lambda self, *a, **kw: replace(
                    real(self, *a, **kw), trainer=SCRIPTED, verbose=False
                ),
            )
        rc = run.main(argv)
    return rc, buf.getvalue()


def printed_comparison(text: str) -> str:
    """What compare (or report) printed from the first rule's report to its last line."""
    return text[text.index("# rule: ") : text.rindex("report written to")].strip()


SCRIPTED_ARGS = [
    "--set",
    "train.epochs=30",
    "--set",
    "grid.n_z=[2, 8, 16, 32]",
    "--set",
    "tune.num_samples=2",
    "--set",
    "ald.n_epochs_after_stop=0",
    "--set",
    ONE_AT_A_TIME,
]


@pytest.fixture(scope="module")
def scripted_compare(ray_session, tmp_path_factory):
    """A scripted compare (both rules, fixed runs, every baseline, nested dropout too), then
    more sweeps in the same store: a lone grid and a lone ALD sweep, newer than the compare."""
    tmp = tmp_path_factory.mktemp("cmp")
    rc, text = run_compare(
        [
            "--run-dir",
            str(tmp),
            "--out",
            str(tmp / "printed"),
            "--baselines",
            "asha,units,id,nested",
            *SCRIPTED_ARGS,
        ],
        scripted=True,
    )
    assert rc == 0, text[-3000:]
    cfg = load_config(
        "search_spaces/digits.yaml",
        overrides=[
            "train.epochs=12",
            "grid.n_z=[4, 8]",
            "tune.num_samples=1",
            "tune.grid_seeds=1",
            ONE_AT_A_TIME,
            "ald.window=6",
        ],
    )
    for mode in ("grid", "ald"):
        run_sweep(cfg, SweepOptions(mode=mode, run_dir=str(tmp), trainer=SCRIPTED, verbose=False))
    return tmp, text


TABLES = ("metrics", "tags", "params", "runs")  # what an MLflow SQLite store holds per run


def check_rebuilt_equals_printed(tmp, text: str, out) -> None:
    """`ald-tune report` prints and writes exactly what compare printed and wrote."""
    from ald_tune.cli.main import main

    uri = "sqlite:///" + str(tmp / "mlflow.db")
    printed, rules = tmp / "printed", ("ald-tune", "paper")
    import contextlib
    import io
    import sqlite3

    def rows() -> tuple[int, ...]:
        with contextlib.closing(sqlite3.connect(tmp / "mlflow.db")) as db:
            return tuple(db.execute(f"select count(*) from {t}").fetchone()[0] for t in TABLES)

    before = rows()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert (
            main(
                [
                    "report",
                    "--experiment",
                    "ald-tune-digits",
                    "--tracking-uri",
                    uri,
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
    again = buf.getvalue()
    assert rows() == before  # report reads; it writes into MLflow only with --log
    assert "sweeps used (the newest complete compare, 'compare-digits-" in again
    assert printed_comparison(again) == printed_comparison(text)
    for folder in ("", *rules):
        a = json.loads((printed / folder / "comparison.json").read_text())
        b = json.loads((out / folder / "comparison.json").read_text())
        assert a == b, folder  # every number, every rule
    assert (printed / "rules.md").read_text() == (out / "rules.md").read_text()
    assert [
        json.loads((printed / r / "comparison.json").read_text())["rule"] for r in rules
    ] == list(rules)


def check_each_parent_holds_its_own_report(
    tmp, nested: tuple[int, ...] = (2, 8, 16, 32), asha_stops: bool = True
) -> None:
    """``nested``: the grid's sizes, whose prefix curve each nested-dropout run holds (the
    sweep ran: every compare here asks for it); ``asha_stops``: ASHA stopped a grid point."""
    from mlflow import MlflowClient

    from ald_tune.config.kinds import COMPARE_TAG, SweepKind

    c = MlflowClient("sqlite:///" + str(tmp / "mlflow.db"))
    exp = c.get_experiment_by_name("ald-tune-digits").experiment_id
    parents = [
        r
        for r in c.search_runs([exp])
        if COMPARE_TAG in r.data.tags and "mlflow.parentRunId" not in r.data.tags
    ]
    kinds = {str(SweepKind.from_tags(r.data.tags)): r for r in parents}
    # No run is left RUNNING, and none KILLED (nothing was interrupted): trials ASHA stopped,
    # and ALD runs that ended after their stop, are FINISHED and say who ended them.
    runs = c.search_runs([exp], max_results=1000)
    assert {r.info.status for r in runs} == {"FINISHED"}
    stopped_by = {r.data.tags.get("ald_tune.stopped_by") for r in runs}
    assert stopped_by <= {None, "asha", "rule"}
    if asha_stops:  # the scripted compare: ASHA stops its weak grid points
        assert "asha" in stopped_by
    # grid + ASHA runs by default (--baselines), nested on request; fixed runs only at n_z
    # off the grid
    assert {"grid", "asha", "ald (ald-tune)", "ald (paper)"} <= set(kinds)
    assert set(kinds) <= {"grid", "asha", "nested", "ald (ald-tune)", "ald (paper)", "fixed"}
    grid = kinds["grid"]
    check_nested_runs(c, exp, kinds["nested"], grid, sizes=nested)
    for rule in ("ald-tune", "paper"):
        run = kinds[f"ald ({rule})"]
        files = {a.path for a in c.list_artifacts(run.info.run_id, "report")}
        assert {
            "report/comparison.json",
            "report/comparison.md",
            "report/fig_metrics_vs_nz.png",
            "report/fig_metrics_vs_nz.svg",
            "report/fig_cost_vs_distance.png",
        } <= files
        local = c.download_artifacts(run.info.run_id, "report/comparison.json", str(tmp / rule))
        report = json.loads(open(local).read())
        assert report["rule"] == rule  # its own rule's report
        assert run.data.tags["ald_tune.recommended_n_z"] == str(report["recommendation"]["n_z"])
        assert (
            c.get_run(run.info.run_id).data.metrics["recommended_n_z"]
            == report["recommendation"]["n_z"]
        )
        assert run.data.tags["ald_tune.plateau_edge"] == str(report["criterion"]["plateau_edge"])
        near = sum(bool(s["near_edge"]) for s in report["ald"]["seeds"])
        assert run.data.tags["ald_tune.near_edge"] == f"{near}/{len(report['ald']['seeds'])}"
        metrics = c.get_run(run.info.run_id).data.metrics
        for s in report["ald"]["seeds"]:
            for k in ("n_z", "steps_above_edge", "nz_over_edge"):
                assert metrics[f"report.seed.{s['seed']}.{k}"] == s[k]
            assert metrics[f"report.seed.{s['seed']}.near_edge"] == float(s["near_edge"])
        # nested dropout's answer per seed, against the same edge
        for s in report["nested"]["seeds"]:
            for k in ("n_z", "steps_above_edge", "nz_over_edge"):
                assert metrics[f"report.nested.seed.{s['seed']}.{k}"] == s[k]
            assert metrics[f"report.nested.seed.{s['seed']}.near_edge"] == float(s["near_edge"])
        for m in report["methods"]:
            assert metrics[f"report.method.{m['key']}.rank"] == m["rank"]
            assert metrics[f"report.method.{m['key']}.trained_cpu_s"] == pytest.approx(
                m["trained_cpu_s"]
            )
        assert grid.data.tags[f"ald_tune.ald_parent.{rule}"] == run.info.run_id
        assert run.data.tags["ald_tune.grid_parent"] == grid.info.run_id
    files = {a.path for a in c.list_artifacts(grid.info.run_id, "report")}
    assert files == {
        "report/rules.md",
        "report/recommendation.json",
        "report/fig_cost_vs_distance.png",
        "report/fig_cost_vs_distance.svg",
    }


def check_nested_runs(c, exp: str, parent, grid, sizes=(2, 8, 16, 32)) -> None:
    """Each nested trial's run holds its prefix curve: prefix.<metric>, step = the prefix."""
    runs = [
        r
        for r in c.search_runs([exp])
        if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    ]
    assert len(runs) == 2  # one wide run per seed (tune.num_samples)
    for run in runs:
        steps = [m.step for m in c.get_metric_history(run.info.run_id, "prefix.recon_loss")]
        assert sorted(steps) == list(sizes) and run.data.tags["ald_tune.kind"] == "nested"
    assert parent.data.tags["ald_tune.grid_parent"] == grid.info.run_id


@pytest.mark.integration
def test_report_cli_rebuilds_exactly_what_compare_printed(scripted_compare, tmp_path):
    tmp, text = scripted_compare
    # The baselines ran by default and are ranked beside ALD (and read back the same).
    for method in (
        "| grid + ASHA |",
        "| units in use (grid n_z = 32) |",
        "| intrinsic dimension (TwoNN) |",
        "| intrinsic dimension (MLE) |",
        "| nested dropout (n_z = 32) |",
        "## Nested dropout: one run of n_z = 32 per seed",
    ):
        assert method in text
    check_rebuilt_equals_printed(tmp, text, tmp_path / "rebuilt")
    check_each_parent_holds_its_own_report(tmp)


@pytest.mark.integration
def test_recommend_prints_the_compares_answer(scripted_compare, capsys):
    from ald_tune.cli.main import main

    tmp, _ = scripted_compare
    uri = "sqlite:///" + str(tmp / "mlflow.db")
    want = json.loads((tmp / "printed" / "recommendation.json").read_text())
    assert (
        main(["recommend", "--experiment", "ald-tune-digits", "--tracking-uri", uri, "--json"]) == 0
    )
    got = json.loads(capsys.readouterr().out)
    assert {k: got[k] for k in want} == want and got["rule"] == "ald-tune"
    # Where the answer and each seed lie against the grid's optimum (the plateau's edge).
    report = json.loads((tmp / "printed" / "comparison.json").read_text())
    assert got["plateau_edge"] == report["criterion"]["plateau_edge"] is not None
    fields = ("in_region", "near_edge", "steps_above_edge", "nz_over_edge")
    assert got["per_seed_vs_edge"] == [
        {"seed": s["seed"], "n_z": s["n_z"], **{k: s[k] for k in fields}}
        for s in report["ald"]["seeds"]
    ]
    pick = next(s for s in report["ald"]["seeds"] if s["n_z"] == got["n_z"])
    assert {k: got[k] for k in fields} == {k: pick[k] for k in fields}
    assert isinstance(got["near_edge"], bool) and isinstance(got["steps_above_edge"], float)
    assert got["sweep"].startswith("aldtune-digits-") and got["per_seed"] and got["reason"]
    assert (
        main(
            [
                "recommend",
                "--experiment",
                "ald-tune-digits",
                "--tracking-uri",
                uri,
                "--rule",
                "paper",
            ]
        )
        == 0
    )
    paper = json.loads((tmp / "printed" / "paper" / "comparison.json").read_text())
    assert (
        f"recommended n_z = {paper['recommendation']['n_z']} (rule 'paper'"
        in capsys.readouterr().out
    )
    assert (
        main(
            [
                "recommend",
                "--experiment",
                "ald-tune-digits",
                "--tracking-uri",
                uri,
                "--rule",
                "nope",
            ]
        )
        == 2
    )
    assert "--rule 'nope'" in capsys.readouterr().err


@pytest.mark.integration
def test_notebook_shows_what_compare_printed(scripted_compare, tmp_path):
    tmp, text = scripted_compare
    md = run_notebook("sqlite:///" + str(tmp / "mlflow.db"), tmp_path)
    assert md.strip() == printed_comparison(text)
    for name in ("fig_metrics_vs_nz", "fig_ald_vs_epoch", "fig_cost_vs_distance"):
        assert os.path.getsize(tmp_path / f"{name}.png") > 1000
        assert os.path.getsize(tmp_path / f"{name}.svg") > 1000


@pytest.mark.slow
def test_the_notebook_runs_a_comparison_itself_with_ald_tune_compare(tmp_path, cache_dir):
    """``SPACE`` set: the notebook calls ``ald_tune.compare`` (real training, tiny), then
    reads that comparison back from MLflow like any other."""
    printed = []
    md = run_notebook(
        "sqlite:///" + str(tmp_path / "mlflow.db"),
        tmp_path / "out",
        space=os.path.join(ROOT, "search_spaces", "digits.yaml"),
        overrides=[
            "train.epochs=8",
            "ald.window=4",
            "ald.patience=2",
            "model.hidden=[32]",
            "data.limit=600",  # 540 training images, a validation split of 60
            "eval.n_fid=50",
            "eval.n_silhouette=60",
            f"eval.cache_dir={cache_dir}",
            "grid.n_z=[2, 6]",
            "tune.num_samples=1",
            "tune.grid_seeds=1",
            "tune.cpus_per_trial=1",
            ONE_AT_A_TIME,
        ],
        printed=printed,
    )
    ran = next(line for line in printed if line.startswith("compare compare-digits-"))
    name, n_z = ran.split()[1], ran.split()[-1]
    assert "# rule: ald-tune" in md and "# rule: paper" in md
    said = f"recommended n_z = {n_z} " if n_z != "None" else "recommended n_z: none"
    assert said in md, (ran, md[-2000:])
    assert any(name in line for line in printed if line != ran), printed  # the note names it


@pytest.mark.integration
def test_the_notebook_opened_in_its_own_folder_finds_the_projects_store(scripted_compare, tmp_path):
    """Jupyter starts a notebook in its folder: with no MLFLOW_TRACKING_URI the notebook
    finds ``runs/mlflow.db`` in a folder above, and creates no store where it stands."""
    import shutil

    tmp, text = scripted_compare
    (tmp_path / "runs").mkdir()
    shutil.copy(tmp / "mlflow.db", tmp_path / "runs" / "mlflow.db")
    md = run_notebook(None, tmp_path / "notebooks")
    assert md.strip() == printed_comparison(text)
    assert not (tmp_path / "notebooks" / "runs" / "mlflow.db").exists()
    assert (tmp_path / "runs" / "notebook-report" / "rules.md").is_file()


def run_notebook(
    uri: str | None,
    out,
    space: str | None = None,
    overrides: list[str] = (),
    printed: list[str] | None = None,
) -> str:
    """Execute the notebook in ``out`` against ``uri`` (``space``: it runs a comparison
    first); returns the Markdown it displayed, its printed lines go to ``printed``."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(os.path.join(ROOT, "notebooks", "comparison_from_mlflow.ipynb"), 4)
    env = {  # uri None: the notebook finds the store as a user's Jupyter would
        "MLFLOW_TRACKING_URI": uri,
        "ALD_TUNE_EXPERIMENT": "ald-tune-digits",
        "ALD_TUNE_NOTEBOOK_OUT": str(out) if uri else None,
        "ALD_TUNE_NOTEBOOK_SPACE": space,
        "ALD_TUNE_NOTEBOOK_SET": ";".join(overrides),
    }
    os.makedirs(out, exist_ok=True)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update({k: v for k, v in env.items() if v is not None})
    for k in (k for k, v in env.items() if v is None):
        os.environ.pop(k, None)
    try:
        NotebookClient(
            nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(out)}}
        ).execute()
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    if printed is not None:
        printed.extend(
            line for o in outputs if o.get("name") == "stdout" for line in o["text"].splitlines()
        )
    md = [o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert len(md) == 1
    return md[0]


@pytest.mark.integration
def test_report_writes_into_mlflow_only_when_asked(scripted_compare, tmp_path, capsys):
    """``report --log`` attaches the rebuilt report to the parents again (on a copy of the
    store: its metric rows grow); without it, report reads only (checked above)."""
    import contextlib
    import shutil
    import sqlite3

    from ald_tune.cli.main import main

    tmp, _ = scripted_compare
    shutil.copy(tmp / "mlflow.db", tmp_path / "mlflow.db")

    def metric_rows() -> int:
        with contextlib.closing(sqlite3.connect(tmp_path / "mlflow.db")) as db:
            return db.execute("select count(*) from metrics").fetchone()[0]

    before = metric_rows()
    uri = "sqlite:///" + str(tmp_path / "mlflow.db")
    argv = ["report", "--experiment", "ald-tune-digits", "--tracking-uri", uri]
    assert main([*argv, "--out", str(tmp_path / "r1")]) == 0
    assert metric_rows() == before
    assert main([*argv, "--out", str(tmp_path / "r2"), "--log"]) == 0
    assert metric_rows() > before
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "r3"), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)  # one object, nothing else printed
    assert list(got["reports"]) == ["ald-tune", "paper"] and got["out"] == str(tmp_path / "r3")
    on_disk = json.loads((tmp_path / "r3" / "paper" / "comparison.json").read_text())
    assert got["reports"]["paper"] == on_disk


@pytest.mark.integration
def test_make_results_puts_what_report_prints_between_the_markers(scripted_compare, tmp_path):
    """benchmarks/results_page.py (``make results``) replaces the page's digits section by
    the comparison as ``ald-tune report`` prints it; the rest of the page stays."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "results_page", os.path.join(ROOT, "benchmarks", "results_page.py")
    )
    page = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(page)
    tmp, text = scripted_compare
    doc = tmp_path / "results.md"
    doc.write_text(f"# Results\n\n{page.BEGIN}\nold\n{page.END}\n\n## MNIST\nkept\n")
    uri = "sqlite:///" + str(tmp / "mlflow.db")
    assert page.main(["--tracking-uri", uri, "--page", str(doc)]) == 0
    got = doc.read_text()
    assert "old" not in got and got.endswith("## MNIST\nkept\n") and got.count(page.BEGIN) == 1
    assert printed_comparison(text) in got  # every line compare printed, in order
    with pytest.raises(SystemExit, match="lacks the markers"):
        page.replace_section("no markers", "x")


@pytest.mark.integration
def test_report_cli_pins_several_ald_sweeps(scripted_compare, tmp_path, capsys):
    """`--sweep ald=A --sweep ald=B`: one report per ALD sweep and the rules table."""
    from ald_tune.cli.main import main
    from ald_tune.config.kinds import read_sweep_file

    tmp, _ = scripted_compare
    names = {
        read_sweep_file(str(p)).get("rule"): p.name
        for p in (tmp / "ray").iterdir()
        if read_sweep_file(str(p)).get("compare")
    }
    grid = next(
        p.name
        for p in (tmp / "ray").iterdir()
        if read_sweep_file(str(p)).get("kind") == "grid" and read_sweep_file(str(p)).get("compare")
    )
    rc = main(
        [
            "report",
            "--experiment",
            "ald-tune-digits",
            "--tracking-uri",
            "sqlite:///" + str(tmp / "mlflow.db"),
            "--out",
            str(tmp_path),
            "--sweep",
            f"grid={grid}",
            "--sweep",
            f"ald={names['paper']}",
            "--sweep",
            f"ald={names['ald-tune']}",
        ]
    )
    assert rc == 0
    table = (tmp_path / "rules.md").read_text()
    assert "| paper |" in table and "| ald-tune |" in table
    for rule in ("paper", "ald-tune"):
        data = json.loads((tmp_path / rule / "comparison.json").read_text())
        assert data["rule"] == rule and len(data["ald"]["n_z"]) == 2
    out = capsys.readouterr().out
    assert "ALD rules side by side" in out and "the pinned sweeps" in out


#: The real compares' settings (tiny: digits, 540 training images, a validation split of 60).
REAL_SETS = {
    "train.epochs": 10,
    "ald.window": 4,
    "ald.patience": 2,
    "ald.n_z_init": 12,
    "model.hidden": "[32]",
    "data.limit": 600,
    "eval.n_fid": 40,
    "eval.n_silhouette": 60,
    "grid.n_z": "[2, 4, 8]",
    "tune.num_samples": 2,
    "tune.grid_seeds": 1,
    "tune.checkpoint_min_s": 0,
    "tune.max_concurrent_trials": 1,  # ONE_AT_A_TIME
}


@pytest.fixture(scope="module")
def real_compare(cache_dir, ray_session, tmp_path_factory):
    """Real training: one small compare with both rules, the fixed runs and every baseline
    (nested dropout too) into one store, read by the slow tests below."""
    tmp = tmp_path_factory.mktemp("real")
    argv = ["--run-dir", str(tmp), "--out", str(tmp / "printed"), "--space", "digits"]
    argv += ["--baselines", "asha,units,id,nested"]
    sets = {**REAL_SETS, "eval.cache_dir": cache_dir}
    rc, text = run_compare(argv + [f"--set={k}={v}" for k, v in sets.items()], scripted=False)
    assert rc == 0, text[-3000:]
    return tmp, text


@pytest.mark.slow
def test_a_real_compare_reads_back_the_same_from_mlflow(real_compare, tmp_path):
    """The CLI report and the notebook rebuild a real compare number for number, and every
    parent run holds its own report."""
    tmp, text = real_compare
    assert "recommended n_z = " in text
    check_rebuilt_equals_printed(tmp, text, tmp_path / "rebuilt")
    check_each_parent_holds_its_own_report(tmp, nested=(2, 4, 8), asha_stops=False)
    md = run_notebook("sqlite:///" + str(tmp / "mlflow.db"), tmp_path / "nb")
    assert md.strip() == printed_comparison(text)


@pytest.mark.slow
def test_nested_dropout_for_real_on_digits(real_compare, tmp_path):
    """Real training, few epochs: `compare --baselines ...,nested` on digits. Each seed's
    wide run ends with its metrics at every grid n_z, answers a grid n_z, is ranked with
    its compute, and `ald-tune report` rebuilds the same from MLflow."""
    import contextlib
    import io
    import math

    from ald_tune.cli.main import main

    tmp, text = real_compare
    rep = json.loads((tmp / "printed" / "comparison.json").read_text())
    seeds = rep["nested"]["seeds"]
    assert len(seeds) == 2
    for s in seeds:
        assert s["width"] == 8 and list(s["curve"]) == ["2", "4", "8"] and s["n_z"] in (2, 4, 8)
        assert s["epochs"] == 10 and s["cpu_s"] > 0 and s["prefix_eval_s"] > 0
        for c in s["curve"].values():
            assert all(math.isfinite(c[m]) for m in ("recon_loss", "fid_gen", "fid_recon"))
    method = next(x for x in rep["methods"] if x["method"] == "nested dropout (n_z = 8)")
    assert method["n_z"] == [s["n_z"] for s in seeds]
    # to a trained model: its run plus one fixed run (a grid trial) at each seed's answer
    assert method["trained_cpu_s"] > method["answer_cpu_s"] == method["total_cpu_s"] > 0
    assert method["n_seeds"] == 2 and len(method["steps_above_edge"]) == 2
    assert "## Nested dropout: one run of n_z = 8 per seed" in text
    buf = io.StringIO()
    uri = "sqlite:///" + str(tmp / "mlflow.db")
    with contextlib.redirect_stdout(buf):
        argv = ["report", "--experiment", "ald-tune-digits", "--tracking-uri", uri]
        assert main([*argv, "--out", str(tmp_path / "rebuilt")]) == 0
    assert printed_comparison(buf.getvalue()) == printed_comparison(text)
    again = json.loads((tmp_path / "rebuilt" / "comparison.json").read_text())
    assert again == rep  # every number, the curves too


def node_ids(storage: str) -> set[str]:
    ids = set()
    for path in glob.glob(os.path.join(storage, "*", "*", "result.json")):
        with open(path) as fh:
            for line in fh:
                if line.strip():
                    ids.add(json.loads(line).get("node_id"))
    return ids - {None}


@pytest.mark.slow
def test_comparison_on_a_two_node_local_cluster(two_node_cluster, cache_dir, tmp_path):
    """`ald_tune/run.py` joins a real two-node cluster; trials run on both nodes."""
    run_dir = tmp_path / "runs"
    cmd = [
        sys.executable,
        os.path.join(ROOT, "ald_tune", "run.py"),
        "--address",
        two_node_cluster["address"],
        "--run-dir",
        str(run_dir),
        "--space",
        "digits",
        "--out",
        str(tmp_path / "report"),
        "--set",
        "train.epochs=8",
        "--set",
        "ald.window=4",
        "--set",
        "ald.patience=2",
        "--set",
        "ald.n_z_init=12",
        "--set",
        "model.hidden=[32]",
        "--set",
        "data.limit=600",  # 540 training images, a validation split of 60
        "--set",
        "eval.n_fid=40",
        "--set",
        "eval.n_silhouette=60",
        "--set",
        f"eval.cache_dir={cache_dir}",
        "--set",
        "grid.n_z=[2, 4, 8]",
        "--set",
        "tune.num_samples=2",
        "--set",
        "tune.grid_seeds=1",  # one trial per grid n_z
    ]
    proc = subprocess.run(
        cmd,
        env=two_node_cluster["env"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "report" / "comparison.json").read_text())
    assert [r["n_z"] for r in report["grid"]["rows"]] == [2, 4, 8]
    assert len(report["ald"]["seeds"]) == 2 and report["criterion"]["plateau_edge"] in (2, 4, 8)
    assert report["speedup"] and report["cost"]["grid"]["trial_epochs"] == 24
    assert not report.get("nested")  # nested dropout runs on request only (--baselines)
    for name in (
        "comparison.csv",
        "comparison.md",
        "fig_metrics_vs_nz.png",
        "fig_ald_vs_epoch.png",
    ):
        assert (tmp_path / "report" / name).stat().st_size > 100
    assert len(node_ids(str(run_dir / "ray"))) == 2, "trials did not run on both nodes"
    assert "plateau" in proc.stdout.lower()
