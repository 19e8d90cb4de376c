"""Layer 7, the command line: ``ald-tune`` (every command, the comparison included) and
the ``ray submit`` target ``ald_tune/run.py``, a thin file that calls
:func:`ald_tune.cli.compare.main`. Arguments are parsed only in the ``main`` functions.

May import: every layer.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """The ``ald-tune`` console command (see :func:`ald_tune.cli.main.main`)."""
    from ald_tune.cli.main import main as _main

    return _main(argv)
