"""The package type-checks (mypy, configured in setup.cfg)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_package_type_checks():
    out = subprocess.run([sys.executable, "-m", "mypy", "--config-file", "setup.cfg"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
