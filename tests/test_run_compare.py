"""The comparison driver: scripted fast path, the notebook, cluster configs; real cluster (slow)."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import pytest
import yaml

from ald_tune.report import build_report, write_report
from ald_tune.report_mlflow import report_from_mlflow
from ald_tune.tuners import SweepOptions, run_sweep
from ald_tune.config import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("path", ["cluster.yaml", "cluster-local.yaml"])
def test_cluster_configs_pass_rays_own_validation(path):
    from ray.autoscaler._private.util import prepare_config, validate_config
    with open(os.path.join(ROOT, path)) as fh:
        cfg = yaml.safe_load(fh)
    validate_config(prepare_config(cfg))
    text = open(os.path.join(ROOT, path)).read()
    assert "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false" in text and "ALD_TUNE_STORAGE" in text
    assert "pip install --user -e ~/ald-tune" in text


@pytest.fixture(scope="module")
def scripted_comparison(ray_session, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cmp")
    cfg = load_config("search_spaces/digits.yaml", overrides=[
        "train.epochs=30", "grid.n_z=[2, 8, 16, 32]", "tune.num_samples=2",
        "tune.checkpoint_every=5", "tune.checkpoint_min_s=0", "ald.n_epochs_after_stop=0",
        "ald.rule=paper"])
    out = {m: run_sweep(cfg, SweepOptions(mode=m, run_dir=str(tmp), engine="scripted",
                                          verbose=False)) for m in ("grid", "ald")}
    return tmp, out


def test_notebook_runs_on_a_finished_sweep(scripted_comparison, tmp_path):
    import nbformat
    from nbclient import NotebookClient
    tmp, sweeps = scripted_comparison
    nb = nbformat.read(os.path.join(ROOT, "notebooks", "comparison_from_mlflow.ipynb"), 4)
    env = {"MLFLOW_TRACKING_URI": sweeps["grid"].tracking_uri,
           "ALD_TUNE_EXPERIMENT": "ald-tune-digits", "ALD_TUNE_NOTEBOOK_OUT": str(tmp_path)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    assert os.path.getsize(tmp_path / "fig_metrics_vs_nz.png") > 1000
    assert os.path.getsize(tmp_path / "fig_ald_vs_epoch.png") > 1000
    md = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
          if "text/markdown" in o.get("data", {})]
    assert md and "plateau" in md[0]["data"]["text/markdown"].lower()


def test_report_cli_rebuilds_from_mlflow(scripted_comparison, tmp_path, capsys):
    from ald_tune.cli import main
    _, sweeps = scripted_comparison
    rc = main(["report", "--experiment", "ald-tune-digits", "--tracking-uri",
               sweeps["grid"].tracking_uri, "--out", str(tmp_path)])
    assert rc == 0
    data = json.loads((tmp_path / "comparison.json").read_text())
    direct = build_report(sweeps["grid"].trials, sweeps["ald"].trials)
    assert data["criterion"]["best_region"] == direct["criterion"]["best_region"]
    assert sorted(data["ald"]["n_z"]) == sorted(direct["ald"]["n_z"])
    for name in ("comparison.csv", "comparison.md"):
        assert (tmp_path / name).stat().st_size > 100


def test_report_cli_side_by_side_for_several_ald_sweeps(scripted_comparison, tmp_path, capsys):
    """`--sweep ald=A --sweep ald=B`: one report per ALD sweep and the rules table."""
    from ald_tune.cli import main
    tmp, sweeps = scripted_comparison
    cfg = load_config("search_spaces/digits.yaml", overrides=[
        "train.epochs=30", "grid.n_z=[2, 8, 16, 32]", "tune.num_samples=2",
        "ald.rule=ald-tune", "ald.n_epochs_after_stop=0"])
    tuned = run_sweep(cfg, SweepOptions(mode="ald", run_dir=str(tmp), engine="scripted",
                                        verbose=False, label="aldtune"))
    rc = main(["report", "--experiment", "ald-tune-digits", "--tracking-uri",
               sweeps["grid"].tracking_uri, "--out", str(tmp_path),
               "--sweep", f"grid={sweeps['grid'].name}", "--sweep", f"ald={sweeps['ald'].name}",
               "--sweep", f"ald={tuned.name}"])
    assert rc == 0
    table = (tmp_path / "rules.md").read_text()
    assert f"| paper ({sweeps['ald'].name}) |" in table
    assert f"| ald-tune ({tuned.name}) |" in table
    for name in (sweeps["ald"].name, tuned.name):
        data = json.loads((tmp_path / name / "comparison.json").read_text())
        assert data["rule"] in ("paper", "ald-tune") and len(data["ald"]["n_z"]) == 2
    assert "ALD rules side by side" in capsys.readouterr().out


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
    cmd = [sys.executable, os.path.join(ROOT, "ald_tune", "run.py"),
           "--address", two_node_cluster["address"], "--run-dir", str(run_dir),
           "--space", "digits", "--out", str(tmp_path / "report"),
           "--set", "train.epochs=8", "--set", "ald.window=4", "--set", "ald.patience=2",
           "--set", "ald.n_z_init=12", "--set", "model.hidden=[32, 32]",
           "--set", "eval.n_fid=40", "--set", f"eval.cache_dir={cache_dir}",
           "--set", "grid.n_z=[2, 4, 8]", "--set", "tune.num_samples=2"]
    proc = subprocess.run(cmd, env=two_node_cluster["env"], capture_output=True, text=True,
                          timeout=900, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "report" / "comparison.json").read_text())
    assert [r["n_z"] for r in report["grid"]["rows"]] == [2, 4, 8]
    assert len(report["ald"]["seeds"]) == 2 and report["criterion"]["plateau_edge"] in (2, 4, 8)
    assert report["speedup"] and report["cost"]["grid"]["trial_epochs"] == 24
    for name in ("comparison.csv", "comparison.md", "fig_metrics_vs_nz.png", "fig_ald_vs_epoch.png"):
        assert (tmp_path / "report" / name).stat().st_size > 100
    assert len(node_ids(str(run_dir / "ray"))) == 2, "trials did not run on both nodes"
    assert "plateau" in proc.stdout.lower()
