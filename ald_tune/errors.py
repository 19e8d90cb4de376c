"""The two error types ald-tune raises for bad user input.

Both subclass :class:`ValueError`, so callers that already catch ``ValueError``
keep working. Messages always name the field or file, the bad value and, when
there is one, the fix.
"""

from __future__ import annotations

import reprlib
from typing import Any

#: The longest value a message shows: a message never grows with the input (a YAML
#: alias bomb, a huge ``--set``), so an error costs no memory to print.
MAX_SHOWN = 120


class ConfigError(ValueError):
    """A configuration value (YAML field, CLI override, argument) is invalid."""


class DataError(ValueError):
    """A data file or array is missing, unreadable, or has the wrong content."""


class Interrupted(KeyboardInterrupt):
    """A run or sweep stopped by Ctrl-C (or SIGTERM); the message says how to resume it."""


def shown(value: Any, limit: int = MAX_SHOWN) -> str:
    """``repr(value)`` for a message, bounded to ``limit`` characters (nested containers
    are cut at three levels and eight items each)."""
    r = reprlib.Repr()
    r.maxlevel = 3
    r.maxlist = r.maxtuple = r.maxdict = r.maxset = r.maxfrozenset = r.maxdeque = 8
    r.maxstring = r.maxother = r.maxlong = limit
    text = r.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
