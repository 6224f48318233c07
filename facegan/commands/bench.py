"""`facegan bench ...`: measure how fast facegan's pipelines run on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from facegan.commands.common import console as _console
from facegan.commands.common import user_errors

app = typer.Typer(help="Measure how fast facegan's pipelines run on this machine.",
                  no_args_is_help=True)


@app.command("prepare")
@user_errors
def bench_prepare(
    images: int = typer.Option(3000, "--images", "-n", help="Synthetic CelebA JPEGs to generate."),
    workers: Optional[str] = typer.Option(None, "--workers", "-j", help="Worker counts to time, comma-separated \\[default: 1 and every core].", show_default=False),
    size: int = typer.Option(128, "--size", help="Output side in pixels."),
    folder: Optional[Path] = typer.Option(None, "--dir", help="Where to write the synthetic tree \\[default: a temp folder, deleted after].", show_default=False),
) -> None:
    """Time `facegan prepare celeba` on a synthetic CelebA-format folder (images/s per worker count).

    The tree is CelebA's layout and file formats (img_align_celeba/ 178x218 JPEGs made from
    the bundled sample faces, Eval/ and Anno/ files); the whole prepare is timed: listing,
    hashing, parallel decode + crop + resize, writing and checksums. Ends with a projection
    for all 202,599 CelebA images on 16 cores.

    Example: facegan bench prepare --images 3000 --workers 1,2,4,8
    """
    from facegan.bench import bench_prepare as run
    from facegan.bench import cores, projection
    from facegan.errors import FaceganError

    n = cores()
    try:
        counts = tuple(int(w) for w in workers.split(",")) if workers else tuple(sorted({1, n}))
    except ValueError:
        raise FaceganError(f"--workers takes whole numbers like 1,2,4, got {workers!r}") from None
    if images < 64 or any(w < 1 for w in counts):
        raise FaceganError("--images must be at least 64 and worker counts at least 1")
    console = _console()
    rows = run(images, counts, size=size, folder=folder, console=console)
    from rich.table import Table

    one = next((r.images_per_second for r in rows if r.workers == 1), None)
    table = Table(title=f"facegan prepare celeba: {images:,} synthetic images at {size}x{size}, "
                        f"{n} CPU core(s)")
    for col in ("workers", "seconds", "images/s", "speed-up", "CPU s (main + workers)"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(str(r.workers), f"{r.seconds:.2f}", f"{r.images_per_second:,.0f}",
                      f"{r.images_per_second / one:.2f}x" if one else "-",
                      f"{r.cpu_main:.2f} + {r.cpu_workers:.2f}")
    console.print(table)
    console.print(projection(rows))
