"""`facegan restore`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from facegan.commands.common import console as _console
from facegan.commands.common import user_errors

@user_errors
def restore(
    image: Path = typer.Argument(..., help="An aligned face photo (any size).", show_default=False),
    task: str = typer.Option("inpaint", "--task", help="inpaint (sr arrives with the super-resolution engine)."),
    mask: str = typer.Option("eyes", "--mask", help="center, half, eyes, mouth, box, freeform, glasses, facemask, or a PNG (white = hole)."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", "-c", help="Checkpoint file or run folder \\[default: newest inpaint run in runs/]."),
    out: Path = typer.Option(Path("restored"), "--out", "-o", help="Output folder."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
) -> None:
    """Fill an occluded region of an aligned face; writes <stem>_restored.png and <stem>_compare.png.

    The face is resized to the model's size, the hole is filled, and only the hole is pasted back
    into the full-resolution photo.

    Example: facegan restore face.png --task inpaint --mask eyes --out restored/
    """
    from facegan.errors import FaceganError
    from facegan.restore import restore_aligned

    if task != "inpaint":
        raise FaceganError(f"--task {task!r}: this version restores with --task inpaint")
    console = _console()
    restored, compare = restore_aligned(image, mask=mask, checkpoint=checkpoint, out_dir=out, device=device, console=console)
    console.print(f"wrote {restored} and {compare}")
