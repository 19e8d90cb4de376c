"""``ald-tune report`` and ``recommend`` on a store that has nothing to compare."""

from __future__ import annotations

from ald_tune.cli import report as report_cmd
from ald_tune.cli.main import main


def test_a_missing_experiment_names_the_store_and_the_fix(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    for command in ("report", "recommend"):
        assert main([command, "--experiment", "nope", "--tracking-uri", uri]) == 2
        err = capsys.readouterr().err
        assert "experiment 'nope' not found" in err and "Fix: pass --experiment" in err
    assert report_cmd.run_report.__doc__ and report_cmd.run_recommend.__doc__
