"""``ald-tune ald`` / ``grid``: bad input refused before Ray."""

from __future__ import annotations

from ald_tune.cli import sweep as sweep_cmd
from ald_tune.cli.main import main


def test_the_scheduler_is_refused_on_ald_and_nothing_starts(tmp_path, capsys):
    assert main(["ald", "--scheduler", "asha", "--run-dir", str(tmp_path)]) == 2
    assert "--scheduler does nothing for ald sweeps" in capsys.readouterr().err
    assert not (tmp_path / "ray").exists() and sweep_cmd.run.__doc__
