"""The explicit table of task engines (no registry, no import-time scanning)."""

from __future__ import annotations

from facegan.recipe import Recipe


def make_task(recipe: Recipe):
    """The task engine a recipe's ``task`` names."""
    if recipe.task == "inpaint":
        from facegan.engines.inpaint import InpaintTask

        return InpaintTask(recipe)
    if recipe.task == "sr":
        from facegan.engines.sr import SRTask

        return SRTask(recipe)
    raise ValueError(f"unknown task {recipe.task!r}")  # the schema makes this unreachable
