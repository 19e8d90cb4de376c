"""The two error types ald-tune raises for bad user input.

Both subclass :class:`ValueError`, so callers that already catch ``ValueError``
keep working. Messages always name the field or file, the bad value and, when
there is one, the fix.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value (YAML field, CLI override, argument) is invalid."""


class DataError(ValueError):
    """A data file or array is missing, unreadable, or has the wrong content."""
