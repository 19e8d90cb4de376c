"""``ald-tune backfill`` refuses what it cannot read."""

from __future__ import annotations

from ald_tune.cli import backfill as backfill_cmd
from ald_tune.cli.main import main


def test_remote_storage_and_missing_folders_are_refused(tmp_path, capsys):
    assert main(["backfill", "--name", "s", "--storage", "s3://bucket/ray"]) == 2
    assert "is remote; backfill reads a local folder" in capsys.readouterr().err
    assert main(["backfill", "--name", "s", "--storage", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert backfill_cmd.run.__doc__
