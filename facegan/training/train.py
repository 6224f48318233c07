"""Train a recipe into a run folder: the guard around :class:`facegan.training.trainer.Trainer`.

:func:`train` is what ``facegan train``, ``facegan ablate`` and the tests call. It owns the run
folder, not the loop: it refuses a file where the folder should be, locks the folder for the whole
run (a second writer is refused at once; the lock dies with its process), removes the temp files
a killed save left behind, prints the run's one-line description and the recipe's warnings, and
removes a folder it created when the run is refused before anything was written.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from facegan.core.errors import FaceganError
from facegan.tasks.schema import Recipe


def train(recipe: Recipe, out_dir: Path, resume: bool = False, console=None) -> Path:
    """Train a recipe into ``out_dir``; returns the path of the final checkpoint.

    The run folder is locked for the whole run (a second `facegan train` on it is refused at
    once; the lock dies with the process), and temp files that killed runs left in it are removed.
    """
    from facegan.core.atomic import TEMP_PATTERN
    from facegan.core.locks import exclusive, remove_stale
    from facegan.training.run_log import describe_run
    from facegan.training.trainer import Trainer

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise FaceganError(f"--out {out_dir} is a file, not a run folder")
    main = int(os.environ.get("RANK", "0")) == 0
    new = not out_dir.exists()
    lock_file = out_dir / ".facegan.lock"
    try:
        with exclusive(lock_file, f"run folder {out_dir}") if main else contextlib.nullcontext():
            if main:
                for stale in remove_stale(out_dir / "checkpoints", TEMP_PATTERN):
                    if console is not None:
                        console.print(f"[dim]removed {stale.name}, left by a run that was killed while saving[/]")
            trainer = Trainer(recipe, out_dir, resume=resume, console=console)
            if console is not None and trainer.dist.main:
                console.print(describe_run(trainer))
                if "path" not in recipe.data.model_fields_set:
                    console.print(f"[yellow]the recipe names no data.path: training on {recipe.data.path}, the default "
                                  "(set data.path to choose the dataset)[/]")
                if recipe.train.amp and not trainer.amp:
                    console.print("[yellow]train.amp is on but there is no CUDA device: training in fp32[/]")
            return trainer.fit()
    finally:
        if main and new and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()  # refused before anything was written: leave no folder behind
