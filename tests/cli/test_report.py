"""``ald-tune report`` and ``recommend`` on a store that has nothing to compare."""

from __future__ import annotations

from ald_tune.cli import report as report_cmd
from ald_tune.cli.main import main


def test_a_missing_experiment_names_the_store_and_the_fix(tmp_path, capsys):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    MlflowClient(uri).search_experiments()  # a store, without that experiment
    for command in ("report", "recommend"):
        assert main([command, "--experiment", "nope", "--tracking-uri", uri]) == 2
        err = capsys.readouterr().err
        assert "experiment 'nope' not found" in err and "Fix: pass --experiment" in err
    assert report_cmd.run_report.__doc__ and report_cmd.run_recommend.__doc__


def test_reading_where_no_store_is_says_so_and_makes_none(tmp_path, capsys):
    """``recommend --run-dir never/made`` used to create ``never/made/mlflow.db``."""
    for command in ("report", "recommend"):
        run_dir = tmp_path / "never" / "made"
        assert main([command, "--experiment", "e", "--run-dir", str(run_dir)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"there is no MLflow store at '{run_dir}" in err
        assert not (tmp_path / "never").exists()
