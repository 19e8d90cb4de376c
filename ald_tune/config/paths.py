"""Where ald-tune keeps files that outlive a run: its cache."""

from __future__ import annotations

import os


def default_cache_dir() -> str:
    """``$ALD_TUNE_CACHE`` or ``~/.cache/ald_tune`` (absolute): the classifier extractor's
    weights and the empty MLflow store of each MLflow version."""
    return os.path.abspath(
        os.environ.get("ALD_TUNE_CACHE")
        or os.path.join(os.path.expanduser("~"), ".cache", "ald_tune")
    )
