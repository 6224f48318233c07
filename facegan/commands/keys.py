"""`facegan keys`."""

from __future__ import annotations

from typing import Optional

import typer

from facegan.commands.common import console as _console
from facegan.commands.common import reflowed, user_errors


@user_errors
@reflowed
def keys(
    section: Optional[str] = typer.Argument(None, help="Only keys of this section (data, model, loss, train, eval)."),
    task: Optional[str] = typer.Option(None, "--task", help="Only the keys of this task's recipes: inpaint or sr \\[default: both, with a task column]."),
) -> None:
    """List every recipe key with its default and meaning (from the typed schema).

    The `task` key of a recipe (inpaint or sr) decides which model and loss keys it has.

    Examples:
      facegan keys loss
      facegan keys model --task sr
    """
    from rich.table import Table

    from facegan.core.errors import FaceganError
    from facegan.tasks.recipes import describe_keys, describe_keys_by_task

    if task is not None:
        rows = [(k, task, d, doc) for k, d, doc in describe_keys(task)]
    else:
        rows = describe_keys_by_task()
    sections = list(dict.fromkeys(k.split(".")[0] for k, *_ in rows if "." in k))
    if section is not None and section not in sections:
        raise FaceganError(f"unknown section {section!r}; choose one of: {', '.join(sections)}")
    table = Table(title="recipe keys" + (f" (task: {task})" if task else ""))
    columns = ("key", "default", "meaning") if task else ("key", "task", "default", "meaning")
    for col in columns:
        table.add_column(col)
    for key, tasks, default, doc in rows:
        if section is None or key.startswith(section + "."):
            table.add_row(*((key, default, doc) if task else (key, tasks, default, doc)))
    _console().print(table)
