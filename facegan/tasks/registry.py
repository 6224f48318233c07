"""The table of tasks: one line per task, nothing imported until a task is asked for.

A task is a :class:`facegan.tasks.base.Task` subclass in its own module, which also holds
its recipe schema. Adding one means writing that module and one line here;
``tests/test_task_contract.py`` then checks every method of it on a tiny model.
"""

from __future__ import annotations

import importlib

from facegan.core.errors import FaceganError

#: Task name (the ``task`` key of a recipe) -> ``module:class``.
TASKS: dict[str, str] = {
    "inpaint": "facegan.tasks.inpaint:InpaintTask",
    "sr": "facegan.tasks.sr:SRTask",
}


def task_names() -> list[str]:
    """Every task's name, in table order."""
    return list(TASKS)


def task_class(name: str):
    """The Task subclass called ``name``; FaceganError for an unknown name."""
    from facegan.tasks.base import Task

    if name not in TASKS:
        raise FaceganError(f"unknown task {name!r}; expected one of: {', '.join(TASKS)}")
    module, _, cls_name = TASKS[name].partition(":")
    cls = getattr(importlib.import_module(module), cls_name)
    if not (isinstance(cls, type) and issubclass(cls, Task)) or cls.name != name:
        raise TypeError(f"{TASKS[name]} is not the Task subclass of task {name!r}")
    return cls


def recipe_types() -> dict[str, type]:
    """Each task's recipe schema, by task name."""
    return {name: task_class(name).recipe_type for name in TASKS}


def make_task(recipe):
    """The task engine of a validated recipe."""
    return task_class(recipe.task)(recipe)


def check_options(task: str, options, checkpoint: dict | None = None, where: str | None = None) -> None:
    """The one check of a command's task options (a :class:`~facegan.tasks.base.TaskOptions`).

    FaceganError when ``task`` is unknown, when an option is given that the task does not take
    (naming the tasks that do), or, given a ``checkpoint``'s stored fields (``scale``, ``size``)
    and the name ``where`` it was loaded from, when that checkpoint cannot serve them (a ×8
    generator cannot upscale ×4). Without ``where`` the messages speak of ``--task``
    (``restore``, before a checkpoint is chosen).
    """
    cls = task_class(task)
    for option in options.given():
        if option in cls.options:
            continue
        owners = [task_class(n) for n in TASKS if option in task_class(n).options]
        if where is None:
            names = " or ".join(t.name for t in owners) or "no task"
            raise FaceganError(f"--{option} is for --task {names}; --task {cls.name} does not take it")
        nouns = " or ".join(t.noun for t in owners) or "no task's"
        names = " or ".join(f"'{t.name}'" for t in owners) or "no"
        value = getattr(options, option)
        raise FaceganError(f"--{option} is for {nouns} runs: a {option} (--{option} {value}) is only for {names} "
                           f"checkpoints, and {where} is a '{cls.name}' checkpoint")
    if checkpoint is not None:
        cls.check_checkpoint(checkpoint, options, where or "the checkpoint")
