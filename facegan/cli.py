"""The `facegan` command. One function per subcommand; heavy imports happen inside them so
`facegan --help` and `facegan --version` answer instantly."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import List, Optional

import typer

from facegan import __version__

METRICS_HELP = (
    "Metrics (DESIGN §4): images quantised to uint8; per-image values, then the mean. "
    "PSNR = 10 log10(255²/MSE) in float64; SSIM with an 11x11 Gaussian window (σ 1.5), valid region, "
    "per RGB channel then mean. Inpainting scores the composite (output inside the hole, input outside) "
    "over the whole image, plus hole L1 x100 (0..1 scale) and hole-only PSNR. Identity: cosine of "
    "L2-normalised embeddings of output and ground truth."
)

app = typer.Typer(
    name="facegan",
    help="Identity-preserving GANs for faces: inpainting of occluded faces (and, soon, super-resolution).\n\n"
    "Quick start: facegan prepare sample && facegan train recipes/quickstart_inpaint.yaml",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
prepare_app = typer.Typer(
    help="Build a packed dataset (uint8 arrays + landmarks, split) that training reads without decoding.",
    no_args_is_help=True,
)
app.add_typer(prepare_app, name="prepare")


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def user_errors(fn):
    """Report FaceganError as one line on stderr with its exit code; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from facegan.errors import FaceganError

        try:
            return fn(*args, **kwargs)
        except FaceganError as err:
            print(f"error: {err}", file=sys.stderr)
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise typer.Exit(130) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        print(f"facegan {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """facegan: identity-preserving face inpainting and super-resolution GANs."""


# ----------------------------------------------------------------------------- prepare


@prepare_app.command("sample")
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


# ----------------------------------------------------------------------------- train


@app.command()
@user_errors
def train(
    recipe: Path = typer.Argument(..., help="Recipe YAML (or, with --resume, a run folder).", show_default=False),
    set_: Optional[List[str]] = typer.Option(None, "--set", "-s", help="Override a recipe key: --set loss.identity=0 (repeatable)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder [default: runs/<recipe name>]."),
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
    from facegan.errors import FaceganError
    from facegan.recipe import load_recipe, recipe_to_yaml

    overrides = list(set_ or [])
    run_dir = None
    if recipe.is_dir():
        if not resume:
            raise FaceganError(f"{recipe} is a folder; pass a recipe YAML, or --resume to continue the run in it")
        run_dir, recipe = recipe, recipe / "recipe.yaml"
    resolved = load_recipe(recipe, overrides)
    if run_dir is not None:
        resolved.name = run_dir.name
    if dry_run:
        print(recipe_to_yaml(resolved), end="")
        return
    out_dir = out or run_dir or Path("runs") / resolved.name
    if out is not None:
        resolved.name = out.name
    from facegan.engines.gan import train as run_training

    console = _console()
    last = run_training(resolved, out_dir, resume=resume, console=console)
    console.print(f"[green]done[/]: {last}  (next: facegan eval {out_dir})")


# ----------------------------------------------------------------------------- eval


@app.command("eval", help="Score a run's EMA generator on fixed masks: table, per-image CSV, JSON, grid.\n\n" + METRICS_HELP
             + "\n\nExample: facegan eval runs/quickstart_inpaint --mask eyes --json eyes.json")
@user_errors
def eval_(
    run: Path = typer.Argument(..., help="Run folder or checkpoint file.", show_default=False),
    data: Optional[Path] = typer.Option(None, "--data", help="Packed dataset [default: the recipe's data.path]."),
    split: Optional[str] = typer.Option(None, "--split", help="Split to score [default: the recipe's eval.split, test]."),
    mask: Optional[str] = typer.Option(None, "--mask", help="Mask type (center, half, eyes, mouth, box, freeform, glasses, facemask) or a PNG (white = hole)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the summary JSON here."),
    identity_net: Optional[str] = typer.Option(None, "--identity-net", help="Network scoring identity cosine [default: the training one]."),
    max_images: Optional[int] = typer.Option(None, "--max-images", help="Score only the first N images."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for CSV/JSON/grid [default: <run>/eval]."),
) -> None:
    from facegan.evaluate import evaluate

    if identity_net is not None and identity_net not in ("mobilefacenet", "facenet-vggface2"):
        from facegan.errors import FaceganError

        raise FaceganError(f"--identity-net {identity_net!r}: expected mobilefacenet or facenet-vggface2")
    evaluate(run, data=data, split=split, mask=mask, json_out=json_out, identity_net=identity_net,
             device=device, max_images=max_images, out_dir=out, console=_console())


# ----------------------------------------------------------------------------- restore


@app.command()
@user_errors
def restore(
    image: Path = typer.Argument(..., help="An aligned face photo (any size).", show_default=False),
    task: str = typer.Option("inpaint", "--task", help="inpaint (sr arrives with the super-resolution engine)."),
    mask: str = typer.Option("eyes", "--mask", help="center, half, eyes, mouth, box, freeform, glasses, facemask, or a PNG (white = hole)."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", "-c", help="Checkpoint file or run folder [default: newest inpaint run in runs/]."),
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


# ----------------------------------------------------------------------------- keys


@app.command()
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
