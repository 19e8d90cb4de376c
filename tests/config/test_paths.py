"""ald-tune's cache folder: ``$ALD_TUNE_CACHE`` made absolute, else ``~/.cache/ald_tune``."""

from __future__ import annotations

import os

from ald_tune.config.paths import default_cache_dir


def test_the_cache_is_the_environments_folder_made_absolute_or_the_users_cache(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ALD_TUNE_CACHE", "rel/cache")
    assert default_cache_dir() == os.path.join(tmp_path, "rel", "cache")
    monkeypatch.delenv("ALD_TUNE_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == os.path.join(tmp_path, "home", ".cache", "ald_tune")
