"""The README's "Configuration" tables, generated from the config dataclasses.

Each field's default, allowed values (from its constraint) and meaning (its ``param``
doc) come from :mod:`ald_tune.config`, so the docs cannot drift; a test keeps the
README equal to :func:`config_reference`.
"""

from __future__ import annotations

import dataclasses

from ald_tune.config.schema import SECTIONS


def config_reference() -> str:
    """Every section and field as the Markdown tables of the README's "Configuration":
    default, what is allowed, what it means (generated, so the docs cannot drift)."""
    out = []
    for name, cls in SECTIONS.items():
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        out += [f"**{name}** ({doc})", "", "| field | default | allowed | meaning |",
                "|---|---|---|---|"]
        for f in dataclasses.fields(cls):
            default = f.default  # every section field is a param() with a default
            if isinstance(default, tuple) and default and isinstance(default[0], tuple):
                default = dict(default)  # votes: shown as the mapping users write
            check = f.metadata["check"]
            allowed = check.describe() + (" or None" if getattr(check, "optional", False) else "")
            out.append(f"| `{name}.{f.name}` | `{default}` | {allowed} | {f.metadata['doc']} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
