"""`facegan restore`: restore every face of ordinary photos (or of aligned face crops)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from facegan.commands.common import MIRROR_HELP
from facegan.commands.common import console as _console
from facegan.commands.common import user_errors


@user_errors
def restore(
    source: Path = typer.Argument(..., help="A photo, or a folder of photos.", show_default=False),
    task: str = typer.Option("inpaint", "--task", help="inpaint or sr."),
    mask: Optional[str] = typer.Option(
        None, "--mask",
        help="inpaint: center, half, eyes, mouth, box, freeform, glasses, facemask (placed from each face's "
        "landmarks), a mask image of the photo's aspect ratio (white = hole), or a folder of masks "
        "matched by file stem \\[default: eyes].",
    ),
    face: str = typer.Option("all", "--face", help="Which faces: all, largest, or N (the N largest)."),
    aligned: bool = typer.Option(False, "--aligned", help="The input is an aligned face crop: skip detection."),
    scale: Optional[int] = typer.Option(None, "--scale", help="sr: the upscaling factor (picks the newest run of that scale; refuses a checkpoint of another) \\[default: the checkpoint's]."),
    compare: bool = typer.Option(False, "--compare", help="Also write <stem>_compare.png: input | occluded | restored, whole photo and per face."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", "-c", help="Checkpoint file, run folder, bundled model name (facegan models), or with --backend onnx an exported .onnx file \\[default: the newest run of --task in runs/, else the bundled model of --task]."),
    backend: str = typer.Option("torch", "--backend", help="torch, or onnx: run the generator of an exported --checkpoint MODEL.onnx with onnxruntime (the same detection, alignment and paste-back) \\[default: onnx for a .onnx checkpoint]."),
    out: Path = typer.Option(Path("restored"), "--out", "-o", help="Output folder."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    mirror: Optional[bool] = typer.Option(None, "--mirror/--no-mirror", help=MIRROR_HELP, show_default=False),
    batch_size: int = typer.Option(8, "--batch-size", help="Faces per generator call."),
) -> None:
    """Restore the faces of a photo, or of every photo in a folder.

    Each face is found (MTCNN), aligned onto the model's template, occluded
    with the mask, restored by the checkpoint's generator (EMA weights) and
    pasted back with a feathered seam. --task inpaint changes only the hole:
    the output has the input's size and pixels away from the hole keep their
    exact values. --task sr outputs the photo upscaled by the model's scale
    (bicubic) with each face replaced by the restored one.

    Writes OUT/<stem>_restored.png (and <stem>_compare.png with --compare);
    never overwrites an input. A photo with transparency (RGBA PNG) keeps it:
    faces are found and restored on the photo over white, and the output gets
    the input's alpha channel back. In a folder, photos that cannot be
    restored (unreadable, too small, no face, no mask) are listed and skipped
    and the others are restored.

    Exit codes: 0 every photo restored; 1 some photos of a folder skipped
    (listed); 2 bad input or options (nothing written); 3 no face in any photo.

    Examples:
      facegan restore photo.jpg --mask eyes
      facegan restore photo.jpg --mask photo_mask.png   (white = hole)
      facegan restore photos/ --mask masks/ --out restored/
      facegan restore tiny_face.jpg --task sr --scale 8
      facegan restore face.png --aligned --mask mouth   (no detection)
    """
    from facegan.engines.task import TaskOptions
    from facegan.engines.tasks import refuse_options, task_class
    from facegan.errors import FaceganError, NoFaceError
    from facegan.photo import (
        RestoreOptions,
        check_options,
        parse_face_option,
        restore_photos,
    )
    from facegan.restore import Restorer

    options = RestoreOptions(task=task, mask=mask or "eyes", faces=parse_face_option(face), aligned=aligned,
                             compare=compare, batch_size=batch_size)
    check_options(options)
    asked = TaskOptions(mask=mask, scale=scale)
    refuse_options(task_class(task), asked)
    if not source.exists():
        raise FaceganError(f"{source} does not exist")
    console = _console()
    given = {k: v for k, v in vars(asked).items() if v is not None}
    if checkpoint is not None and str(checkpoint).endswith(".onnx") and backend == "torch":
        backend = "onnx"
    if backend == "onnx":
        if mirror is not None:
            raise FaceganError("--mirror/--no-mirror: an exported model runs as it was exported (its recipe's "
                               "model.mirror_ensemble); restore with --backend torch to choose")
        restorer = _onnx_restorer(checkpoint, task, asked)
    elif backend == "torch":
        restorer = Restorer.find(task, checkpoint, "runs", device, console, mirror, **given)
    else:
        raise FaceganError(f"--backend {backend!r}: choose torch or onnx")

    if source.is_dir():
        summary = _restore_folder(source, out, restorer, options, console)
    else:
        summary = restore_photos(source, out, restorer, options)
    _report(summary, console)
    if not summary.written:
        if summary.no_face and not summary.failed:
            raise NoFaceError(f"no face found in any of the {len(summary.no_face)} photo(s) in {source}")
        raise FaceganError(f"nothing restored from {source}")
    skipped = len(summary.no_face) + len(summary.no_mask) + len(summary.failed)
    if skipped:
        raise FaceganError(f"{skipped} of {summary.photos} photo(s) skipped (listed above); the others were restored",
                           exit_code=1)


def _onnx_restorer(checkpoint, task: str, asked):
    """The exported model of --checkpoint, checked against --task and the task options."""
    from facegan.engines.tasks import task_class
    from facegan.errors import FaceganError
    from facegan.export import OnnxRestorer

    if checkpoint is None:
        raise FaceganError("--backend onnx needs --checkpoint MODEL.onnx (made by `facegan export`)")
    restorer = OnnxRestorer(checkpoint)
    if restorer.task.name != task:
        raise FaceganError(f"{checkpoint} is a '{restorer.task.name}' model, not '{task}'")
    task_class(task).check_checkpoint({"scale": restorer.task.scale}, asked, checkpoint)
    return restorer


def _restore_folder(source: Path, out: Path, restorer, options, console):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from facegan.photo import list_photos, restore_photos

    total = len(list_photos(source))
    faces = 0
    columns = (TextColumn("restoring"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[faces]} faces"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("restore", total=total, faces=0)

        def on_photo(path: Path, n: int) -> None:
            nonlocal faces
            faces += n
            progress.update(bar, advance=1, faces=faces)

        summary = restore_photos(source, out, restorer, options, on_photo=on_photo)
        progress.update(bar, completed=total)
    return summary


def _report(summary, console) -> None:
    for path in summary.written:
        console.print(f"wrote {path}")
    console.print(f"{len(summary.written)} of {summary.photos} photo(s) restored, {summary.faces} face(s)")
    for path in summary.no_face:
        console.print(f"  no face found: {path}")
    for path in summary.no_mask:
        console.print(f"  no mask with its stem, skipped: {path}")
    for path, reason in summary.failed:
        console.print(f"  skipped {path}: {reason}")
