"""``ald-tune optuna`` and the README's plain-Optuna snippet, executed as written."""

from __future__ import annotations

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
                "--set",
                "tune.grid_seeds=1",
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


def test_the_optuna_command_documents_itself():
    assert optuna_cmd.run.__doc__
