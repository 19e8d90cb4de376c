"""The README: short, its Python snippets run as written, its links resolve; the docs build."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT

README = os.path.join(ROOT, "README.md")


def python_blocks() -> list[str]:
    """Every ```python block of the README, in order."""
    text = open(README, encoding="utf-8").read()
    return re.findall(r"```python\n(.*?)```", text, re.S)


@pytest.fixture
def tiny_configs(monkeypatch, cache_dir, tmp_path):
    """``load_config`` adds tiny settings (the snippets run as written, in seconds), in a
    fresh folder that has the bundled search spaces."""
    import ald_tune.config.schema

    real = ald_tune.config.schema.load_config
    tiny = [
        "train.epochs=4",
        "ald.window=4",
        "ald.patience=2",
        "ald.n_z_init=8",
        "model.hidden=[16]",
        "eval.n_fid=40",
        f"eval.cache_dir={cache_dir}",
        "grid.n_z=[2, 4]",
    ]
    monkeypatch.setattr(
        ald_tune.config.schema,
        "load_config",
        lambda path, preset=None, overrides=(): real(path, preset, [*overrides, *tiny]),
    )
    monkeypatch.chdir(tmp_path)
    os.symlink(os.path.join(ROOT, "search_spaces"), tmp_path / "search_spaces")
    return tmp_path


def test_every_line_the_readme_quotes_from_the_demo_is_in_the_generated_results():
    """The README's demo output is an excerpt of docs/results.md's generated section
    (``make results``), so the two come from one run and cannot drift apart."""
    text = open(README, encoding="utf-8").read()
    quoted = re.search(r"```markdown\n(.*?)```", text, re.S).group(1)
    page = open(os.path.join(ROOT, "docs", "results.md"), encoding="utf-8").read()
    section = page[page.index("<!-- make results: digits") : page.index("<!-- end of make")]
    lines = set(section.splitlines())
    missing = [line for line in quoted.splitlines() if line.strip() and line not in lines]
    assert not missing, missing


def test_the_readme_is_short_and_its_links_resolve():
    text = open(README, encoding="utf-8").read()
    assert len(text.splitlines()) <= 250
    for link in re.findall(r"\]\(([^)#]+)\)", text):
        if "://" not in link:
            assert os.path.exists(os.path.join(ROOT, link)), link


def test_the_python_api_snippet_runs_as_written(tiny_configs, capsys):
    exec(compile(python_blocks()[0], "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("0 8 ") and out[-1].startswith("final n_z: ")


# The two snippets below train to a result (five Optuna trials into MLflow; a loop of its
# own): the slow tier. The fast tier covers what they call (tests/integrations/
# test_optuna_objective.py, tests/engine/test_pruner.py); the API snippet above stays fast.
@pytest.mark.slow
def test_the_optuna_snippet_runs_as_written_and_closes_its_runs(tiny_configs):
    from mlflow import MlflowClient

    exec(compile(python_blocks()[1], "README.md", "exec"), {})
    c = MlflowClient("sqlite:///" + str(tiny_configs / "runs" / "mlflow.db"))
    runs = c.search_runs([c.get_experiment_by_name("ald-tune-digits").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 2 and len(runs) == 2 + 3 + 2
    assert all(r.info.status == "FINISHED" for r in runs)


@pytest.mark.slow
def test_the_own_loop_snippet_prunes_as_written(capsys):
    exec(compile(python_blocks()[2], "README.md", "exec"), {})
    last = capsys.readouterr().out.splitlines()[-1]
    n_z = int(last.split()[1])
    assert 1 <= n_z < 16 and "stopped" in last, last


@pytest.mark.integration
def test_the_docs_build_with_warnings_as_errors(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-q",
            "--site-dir",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
