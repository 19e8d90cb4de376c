"""A sweep's plan before Ray starts: the storage it will write to is checked first."""

from __future__ import annotations


def test_a_storage_folder_removed_under_the_probe_by_a_second_sweep_is_made_again(
    tmp_path, monkeypatch
):
    """Two sweeps started together on a new folder: one's clean-up may remove the folder
    between the other's makedirs and its probe. That is retried, not reported unwritable."""
    import shutil
    import tempfile

    from ald_tune.sweeps import plan

    storage = str(tmp_path / "runs" / "ray")
    real = tempfile.mkdtemp
    calls = []

    def racing_mkdtemp(*args, **kwargs):
        calls.append(kwargs.get("dir"))
        if len(calls) == 1:  # the other sweep's clean-up wins the first time
            shutil.rmtree(tmp_path / "runs")
        return real(*args, **kwargs)

    monkeypatch.setattr(plan.tempfile, "mkdtemp", racing_mkdtemp)
    plan.check_storage(storage)
    assert len(calls) == 2
    assert not (tmp_path / "runs").exists()  # nothing is left behind
