"""`facegan keys`."""

from __future__ import annotations

from typing import Optional

import typer

from facegan.commands.common import console as _console

def keys(section: Optional[str] = typer.Argument(None, help="Only keys of this section (data, model, loss, train, eval).")) -> None:
    """List every recipe key with its default and meaning (from the typed schema).

    Example: facegan keys loss
    """
    from rich.table import Table

    from facegan.recipe import describe_keys

    table = Table(title="recipe keys")
    for col in ("key", "default", "meaning"):
        table.add_column(col)
    for key, default, doc in describe_keys():
        if section is None or key.startswith(section + "."):
            table.add_row(key, default, doc)
    _console().print(table)
