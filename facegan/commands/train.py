"""`facegan train`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from facegan.commands.common import console as _console
from facegan.commands.common import reflowed, user_errors


@user_errors
@reflowed
def train(
    recipe: Path = typer.Argument(..., help="Recipe YAML (or, with --resume, a run folder).", show_default=False),
    set_: Optional[List[str]] = typer.Option(None, "--set", "-s", help="Override a recipe key: --set loss.identity=0 (repeatable)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder \\[default: runs/<recipe name>]."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in the run folder from its last checkpoint."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the fully resolved recipe and exit (0 valid, 2 invalid)."),
) -> None:
    """Train a recipe: rich progress, log.jsonl, sample grids, loss curves, checkpoints.

    The run folder gets recipe.yaml, log.jsonl (every step's losses), samples/, loss_curves.png,
    val_curves.png and checkpoints/ (step_*.pt and last.pt, written atomically).
    Run `facegan keys` for every recipe key.

    Examples:
      facegan train recipes/quickstart_inpaint.yaml
      facegan train recipes/inpaint_identity.yaml --set loss.identity=0 --set train.steps=50 --out runs/no_id
      facegan train runs/quickstart_inpaint --resume --set train.steps=2000
    """
    from facegan.core.errors import FaceganError
    from facegan.tasks.recipes import load_recipe, recipe_to_yaml

    overrides = list(set_ or [])
    run_dir = None
    if resume and not recipe.exists():
        raise FaceganError(f"no run at {recipe} (--resume takes the run folder of an earlier `facegan train`)")
    if out is not None and out.exists() and not out.is_dir():
        raise FaceganError(f"--out {out} is a file, not a run folder")
    if recipe.is_dir():
        if not resume:
            raise FaceganError(f"{recipe} is a folder; pass a recipe YAML, or --resume to continue the run in it")
        run_dir, recipe = recipe, recipe / "recipe.yaml"
        if not recipe.is_file():
            raise FaceganError(f"no run at {run_dir} (it has no recipe.yaml)")
    resolved = load_recipe(recipe, overrides)
    if run_dir is not None:
        resolved.name = run_dir.name
    if dry_run:
        print(recipe_to_yaml(resolved), end="")
        return
    out_dir = out or run_dir or Path("runs") / resolved.name
    if out is not None:
        resolved.name = out.name
    from facegan.training.train import train as run_training

    console = _console()
    last = run_training(resolved, out_dir, resume=resume, console=console)
    console.print(f"[green]done[/]: {last}  (next: facegan eval {out_dir})")
