"""`facegan bench ...`: measure how fast facegan's pipelines run on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from facegan.commands.common import console as _console
from facegan.commands.common import reflowed, user_errors

app = typer.Typer(help="Measure how fast facegan's pipelines run on this machine.",
                  no_args_is_help=True)


@app.command("prepare")
@user_errors
@reflowed
def bench_prepare(
    images: int = typer.Option(3000, "--images", "-n", help="Synthetic CelebA JPEGs to generate."),
    workers: Optional[str] = typer.Option(None, "--workers", "-j", help="Worker counts to time, comma-separated \\[default: 1 and every core].", show_default=False),
    size: int = typer.Option(128, "--size", help="Output side in pixels."),
    folder: Optional[Path] = typer.Option(None, "--dir", help="Where to write the synthetic tree and the outputs \\[default: a temp folder, deleted after].", show_default=False),
    root: Optional[Path] = typer.Option(None, "--root", help="Time a real CelebA-format tree (img_align_celeba/ and its annotation files) instead of a synthetic one; --images is then ignored.", show_default=False),
) -> None:
    """Time `facegan prepare celeba` on a CelebA-format folder (images/s per worker count).

    Without --root the tree is synthetic: CelebA's layout and file formats (img_align_celeba/
    178x218 JPEGs made from the bundled sample faces, Eval/ and Anno/ files). With --root it is
    your own CelebA (or a subset in its layout). The whole prepare is timed: listing, hashing,
    parallel decode + crop + resize, writing and checksums. Ends with a projection for all
    202,599 CelebA images on 16 cores.

    Examples:
      facegan bench prepare --images 3000 --workers 1,2,4,8
      facegan bench prepare --root ~/datasets/celeba --workers 1,2
    """
    from facegan.bench.prepare import bench_prepare as run
    from facegan.bench.prepare import cores, projection
    from facegan.core.errors import FaceganError

    n = cores()
    try:
        counts = tuple(int(w) for w in workers.split(",")) if workers else tuple(sorted({1, n}))
    except ValueError:
        raise FaceganError(f"--workers takes whole numbers like 1,2,4, got {workers!r}") from None
    if images < 64 or any(w < 1 for w in counts):
        raise FaceganError("--images must be at least 64 and worker counts at least 1")
    console = _console()
    if root is not None and not root.is_dir():
        raise FaceganError(f"--root {root} is not a folder")
    rows = run(images, counts, size=size, folder=folder, console=console, root=root)
    if root is not None:
        images = rows[0].images if rows else 0
    from rich.table import Table

    one = next((r.images_per_second for r in rows if r.workers == 1), None)
    what = f"{images:,} images of {root}" if root is not None else f"{images:,} synthetic images"
    table = Table(title=f"facegan prepare celeba: {what} at {size}x{size}, {n} CPU core(s)")
    for col in ("workers", "seconds", "images/s", "speed-up", "CPU s (main + workers)"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(str(r.workers), f"{r.seconds:.2f}", f"{r.images_per_second:,.0f}",
                      f"{r.images_per_second / one:.2f}x" if one else "-",
                      f"{r.cpu_main:.2f} + {r.cpu_workers:.2f}")
    console.print(table)
    console.print(projection(rows))


@app.command("train")
@user_errors
@reflowed
def bench_train(
    recipe: Path = typer.Argument(..., help="Recipe YAML to measure.", show_default=False),
    steps: int = typer.Option(20, "--steps", help="Measured steps per config (the median is reported)."),
    warmup: int = typer.Option(5, "--warmup", help="Steps per config run first and not measured."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Override train.batch.", show_default=False),
    device: Optional[str] = typer.Option(None, "--device", help="Override train.device (auto, cpu, cuda, cuda:N).", show_default=False),
    set_: Optional[List[str]] = typer.Option(None, "--set", "-s", help="Recipe override for every config, KEY=VALUE (repeatable)."),
    compare: Optional[List[str]] = typer.Option(None, "--compare", "-c", help="A variant to measure beside the recipe: KEY=VALUE[,KEY=VALUE...] (repeatable)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write every measurement to this JSON file.", show_default=False),
) -> None:
    """Measure how fast a recipe trains: img/s, milliseconds per phase, peak memory, FLOPs and MFU.

    Each config (the recipe, then each --compare variant) is a real trainer on the recipe's data
    in a temporary folder (nothing is written to runs/); their steps are interleaved in one
    process, so the ratio column compares configs under the same conditions. Phases: batch and
    masks, G forward, D step, identity-loss forward, G losses + backward + optimizer, EMA. MFU
    is shown on GPUs whose bf16 peak is known.

    Examples:
      facegan bench train recipes/inpaint_identity.yaml --set loss.identity_net=mobilefacenet --batch 16
      facegan bench train recipes/quickstart_inpaint.yaml --compare loss.identity=0 --compare train.channels_last=true
    """
    import json

    from facegan.bench.train import bench_train as run
    from facegan.bench.train import results_table
    from facegan.core.errors import FaceganError

    if json_out is not None and json_out.is_dir():
        raise FaceganError(f"--json {json_out} is a folder; pass a file name")
    overrides = list(set_ or [])
    if batch is not None:
        overrides.append(f"train.batch={batch}")
    if device is not None:
        overrides.append(f"train.device={device}")
    variants = [[part.strip() for part in c.split(",") if part.strip()] for c in compare or []]
    if any(not v for v in variants):
        raise FaceganError("--compare takes KEY=VALUE[,KEY=VALUE...]")
    console = _console()
    results, info = run(recipe, overrides, variants, steps=steps, warmup=warmup, console=console)
    console.print(results_table(results, info))
    if json_out is not None:
        from facegan.core.atomic import atomic_write_bytes

        payload = {"info": info, "configs": [r.as_dict() for r in results]}
        atomic_write_bytes(json_out, json.dumps(payload, indent=2).encode())
        console.print(f"wrote {json_out}")


@app.command("restore")
@user_errors
@reflowed
def bench_restore(
    models: Optional[List[str]] = typer.Argument(None, help="Bundled model names or checkpoints \\[default: every bundled model].", show_default=False),
    photos: Optional[Path] = typer.Option(None, "--photos", help="A folder of photos \\[default: the bundled sample photos].", show_default=False),
    repeats: int = typer.Option(3, "--repeats", help="Timed restores per photo, after one warm-up (the median is reported)."),
    mask: str = typer.Option("eyes", "--mask", help="inpaint: the mask every face gets."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads \\[default: torch's, one per core].", show_default=False),
) -> None:
    """Milliseconds per face of `facegan restore` on the CPU, stage by stage.

    Each model restores the same photos as `facegan restore` does: read the photo, detect and
    align its faces (prepare), run the model on them (model), paste them back (paste). Writing
    the files is not timed. Each photo is restored once to warm up and then --repeats times; a
    stage's time is its median per face, and the table gives the median over photos.

    Examples:
      facegan bench restore
      facegan bench restore sr4-128 --photos ~/photos --repeats 5
    """
    from rich.table import Table

    from facegan.bench.restore import STAGES, sample_photos
    from facegan.bench.restore import bench_restore as run
    from facegan.checkpoints.bundled import list_models
    from facegan.core.errors import FaceganError
    from facegan.restoring.planning import list_photos

    if repeats < 1 or (threads is not None and threads < 1):
        raise FaceganError("--repeats and --threads must be at least 1")
    found = list_photos(photos) if photos is not None else sample_photos()
    names = list(models or [m.name for m in list_models()])
    console = _console()
    table = Table(title=f"facegan restore on the CPU: ms per face (median over {len(found)} photos, {repeats} repeats)")
    for col in ("model", "task", "faces", *STAGES, "total"):
        table.add_column(col, justify="left" if col in ("model", "task") else "right")

    def row(t) -> None:
        console.print(f"{t.model}: {t.ms_per_face['total']:.0f} ms per face", style="dim")
        table.add_row(t.model, f"{t.task} ({t.detail})", str(t.faces),
                      *(f"{t.ms_per_face[s]:.1f}" for s in (*STAGES, "total")))

    run(names, found, repeats=repeats, mask=mask, threads=threads, on_done=row)
    console.print(table)
