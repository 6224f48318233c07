"""`facegan prepare ...`: build packed datasets."""

from __future__ import annotations

from pathlib import Path

import typer

from facegan.commands.common import console as _console
from facegan.commands.common import user_errors

app = typer.Typer(
    help="Build a packed dataset (uint8 arrays + landmarks, split) that training reads without decoding.",
    no_args_is_help=True,
)


@app.command("sample")
@user_errors
def prepare_sample(
    out: Path = typer.Option(Path("data/sample"), "--out", "-o", help="Dataset folder to write."),
    size: int = typer.Option(128, "--size", help="Side of the aligned faces in pixels (multiple of 16)."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if OUT already holds a dataset."),
) -> None:
    """Pack the small set of real face photos that ships with facegan (MIT / Apache-2.0 sources).

    Faces are detected with MTCNN, aligned on 5 landmarks to facegan's template, split
    train/val/test (identity-disjoint) and packed. Re-running is a no-op.

    Example: facegan prepare sample --out data/sample --size 128
    """
    from facegan.data.prepare import prepare_sample as run

    if size % 16 or not 32 <= size <= 1024:
        from facegan.errors import FaceganError

        raise FaceganError(f"--size must be a multiple of 16 between 32 and 1024, got {size}")
    run(out, size=size, force=force, console=_console())
