"""``ald-tune optuna`` and the README's plain-Optuna snippet, executed as written."""

from __future__ import annotations

import os

from conftest import ROOT

from ald_tune.cli import optuna as optuna_cmd
from ald_tune.cli.main import main

TINY = [
    "--set",
    "train.epochs=6",
    "--set",
    "ald.window=4",
    "--set",
    "ald.patience=2",
    "--set",
    "model.hidden=[32, 32]",
    "--set",
    "ald.n_z_init=10",
    "--set",
    "eval.n_fid=40",
]


def test_optuna_command_stores_the_study_for_optuna_dashboard(tmp_path, cache_dir, capsys):
    import optuna

    storage = f"sqlite:///{tmp_path}/optuna.db"
    assert (
        main(
            [
                "optuna",
                "--mode",
                "grid",
                *TINY,
                "--set",
                f"eval.cache_dir={cache_dir}",
                "--set",
                "grid.n_z=[2, 4]",
                "--storage",
                storage,
                "--study-name",
                "g",
                "--no-tracking",
            ]
        )
        == 0
    )
    study = optuna.load_study(study_name="g", storage=storage)
    assert sorted(t.params["n_z"] for t in study.trials) == [2, 4]
    assert all(
        t.state.name == "COMPLETE" and t.user_attrs["final_n_z"] == t.params["n_z"]
        for t in study.trials
    )
    assert f"open it with `optuna-dashboard {storage}`" in capsys.readouterr().out


def readme_block(heading: str) -> str:
    """The first ```python block after ``heading`` in the README."""
    text = open(os.path.join(ROOT, "README.md")).read()
    rest = text[text.index(heading) :]
    return rest[
        rest.index("```python") + len("```python") : rest.index("```", rest.index("```python") + 3)
    ]


def test_the_readme_optuna_snippet_runs_as_written_and_closes_its_runs(
    tmp_path, cache_dir, monkeypatch
):
    """The snippet, executed as written, on tiny settings (load_config adds them)."""
    from mlflow import MlflowClient

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
        lambda path, preset=None, overrides=(): real(path, preset, [*tiny, *overrides]),
    )
    monkeypatch.chdir(tmp_path)
    os.symlink(
        os.path.join(ROOT, "search_spaces"),
        tmp_path / "search_spaces",
    )
    exec(compile(readme_block("### Plain Optuna"), "README.md", "exec"), {})
    c = MlflowClient("sqlite:///" + str(tmp_path / "runs" / "mlflow.db"))
    runs = c.search_runs([c.get_experiment_by_name("ald-tune-digits").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 2 and len(runs) == 2 + 3 + 2
    assert all(r.info.status == "FINISHED" for r in runs)


def test_the_optuna_command_documents_itself():
    assert optuna_cmd.run.__doc__
