"""`facegan restore`: restore every face of ordinary photos (or of aligned face crops)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from facegan.commands.common import FIDELITY_HELP, MIRROR_HELP
from facegan.commands.common import console as _console
from facegan.commands.common import reflowed, user_errors


class TaskName(str, Enum):
    """``--task``: the names of :data:`facegan.tasks.registry.TASKS` (a test keeps them equal)."""

    inpaint = "inpaint"
    sr = "sr"


class Backend(str, Enum):
    """``--backend``: :data:`facegan.restoring.backends.BACKENDS` (a test keeps them equal)."""

    torch = "torch"
    onnx = "onnx"


@user_errors
@reflowed
def restore(
    source: Path = typer.Argument(..., help="A photo, or a folder of photos.", show_default=False),
    task: TaskName = typer.Option(TaskName.inpaint, "--task", help="inpaint (fill a hole) or sr (super-resolution)."),
    mask: Optional[str] = typer.Option(
        None, "--mask",
        help="inpaint: center, half, eyes, mouth, box, freeform, glasses, facemask (placed from each face's "
        "landmarks), a mask image of the photo's aspect ratio (white = hole), or a folder of masks "
        "matched by file stem \\[default: eyes].",
    ),
    face: str = typer.Option("all", "--face", help="Which faces: all, largest, or N (the N largest)."),
    aligned: bool = typer.Option(False, "--aligned", help="The input is an aligned face crop: skip detection."),
    scale: Optional[int] = typer.Option(None, "--scale", help="sr: the output photo is SCALE times the input (2, 4 or 8). A face near a face model's own input size gets that model (sr8-128: faces of 15.5-16 px, sr4-128: 31-32 px, sr2-128: 62-64 px; a face model fed a resampled face does worse than the generic upsampler), never shrunk first and its output never enlarged after; other faces are upscaled with the background \\[default: 4, or --checkpoint's scale]."),
    background: str = typer.Option("span", "--background", help="sr: what upscales the photo around the faces: span (the learned generic upsampler that ships with facegan) or bicubic (faster, softer)."),
    compare: bool = typer.Option(False, "--compare", help="Also write <stem>_compare.png: input | occluded | restored, whole photo and per face (faces shown at 256 px or more)."),
    ext: Optional[str] = typer.Option(None, "--ext", help="Format of the restored photos: png, jpg (quality 95, 4:4:4) or webp \\[default: the input's own: JPEG in, JPEG out].", show_default=False),
    save_faces: bool = typer.Option(False, "--save-faces", help="Also write every face: OUT/cropped_faces/ (the aligned input), OUT/restored_faces/ (the model's output) and, for inpainting, OUT/masks/ (white = hole), as <stem>_NN.png."),
    only_center_face: bool = typer.Option(False, "--only-center-face", help="Restore only the face nearest the photo's centre."),
    seam: str = typer.Option("poisson", "--seam", help="inpaint: how the fill meets the photo: poisson (gradient domain: colour and tone follow the skin around it, the photo's grain added, enlarged by the learned upsampler on large faces) or feather (a plain feathered blend of the 128 px fill)."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", "-c", help="Checkpoint file, run folder, bundled model name (facegan models), or with --backend onnx an exported .onnx file \\[default: the bundled models of --task; a run is used only when named]."),
    backend: Optional[Backend] = typer.Option(None, "--backend", help="torch, or onnx: run the generator of an exported --checkpoint MODEL.onnx with onnxruntime (the same detection, alignment and paste-back) \\[default: onnx for a .onnx checkpoint, else torch].", show_default=False),
    out: Path = typer.Option(Path("restored"), "--out", "-o", help="Output folder."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    mirror: Optional[bool] = typer.Option(None, "--mirror/--no-mirror", help=MIRROR_HELP, show_default=False),
    fidelity: Optional[float] = typer.Option(None, "--fidelity", help=FIDELITY_HELP, show_default=False),
    batch_size: int = typer.Option(8, "--batch-size", help="Faces per generator call."),
    max_megapixels: float = typer.Option(64.0, "--max-megapixels", help="Refuse, before any work, a photo whose restored version would be larger (super-resolution multiplies the pixels by scale²)."),
) -> None:
    """Restore the faces of a photo, or of every photo in a folder.

    Each face is found (MTCNN), aligned onto the model's template, occluded
    with the mask, restored by the checkpoint's generator (EMA weights) and
    pasted back with a feathered seam. --task inpaint changes only the hole:
    the output has the input's size and pixels away from the hole keep their
    exact values. --task sr outputs the photo upscaled --scale times by a
    learned upsampler (SPAN; --background bicubic for plain bicubic), each
    face restored by the face model that fits its size (never shrunk first);
    the choice for every face is printed.

    Writes OUT/<stem>_restored.<ext> in the input's format (--ext to choose;
    <stem>_compare.png with --compare, the faces with --save-faces); never
    overwrites an input. An inpainted fill is brought to the face's size in
    the photo by the learned upsampler and meets the photo in the gradient
    domain with the photo's grain (--seam feather: a plain blend); a grey
    photo stays grey. A photo with transparency (RGBA PNG) keeps it:
    faces are found and restored on the photo over white, and the output gets
    the input's alpha channel back. In a folder, photos that cannot be
    restored (unreadable, too small, no face, no mask) are listed and skipped
    and the others are restored.

    Examples:
      facegan restore photo.jpg --mask eyes
      facegan restore photo.jpg --mask photo_mask.png   (white = hole)
      facegan restore photos/ --mask masks/ --out restored/
      facegan restore small_photo.jpg --task sr --scale 4
      facegan restore face.png --aligned --mask mouth   (no detection)
    """
    from facegan.core.errors import FaceganError, not_found
    from facegan.restoring.backends import open_face_models
    from facegan.restoring.photo import restore_photos
    from facegan.restoring.planning import RestoreOptions, check_options, parse_face_option
    from facegan.tasks.base import TaskOptions
    from facegan.tasks.registry import check_options as check_task_options

    options = RestoreOptions(task=task.value, mask=mask or "eyes", faces=parse_face_option(face), aligned=aligned,
                             compare=compare, batch_size=batch_size, max_megapixels=max_megapixels, scale=scale,
                             background=background, ext=ext, save_faces=save_faces, only_center_face=only_center_face,
                             seam=seam)
    check_options(options)
    check_task_options(options.task, TaskOptions(mask=mask, scale=scale))
    if not source.exists():
        raise FaceganError(f"{source} {not_found(source)}")
    console = _console()
    models = open_face_models(options.task, checkpoint, backend.value if backend else None, TaskOptions(mask=mask),
                              device, mirror, console=console, fidelity=fidelity)
    if options.task == "sr" and scale is None:
        options.scale = models.first.scale if checkpoint is not None else 4
    restorer = models
    if source.is_dir():
        summary = _restore_folder(source, out, restorer, options, console)
    else:
        summary = restore_photos(source, out, restorer, options)
    _report(summary, console)
    _check_all_restored(summary, source)


def _check_all_restored(summary, source: Path) -> None:
    """Exit code 3 when no photo held a face, 2 when nothing was restored, 1 when some were skipped."""
    from facegan.core.errors import FaceganError, NoFaceError

    if not summary.written:
        if summary.no_face and not summary.failed:
            raise NoFaceError(f"no face found in any of the {len(summary.no_face)} photo(s) in {source}")
        raise FaceganError(f"nothing restored from {source}")
    skipped = len(summary.no_face) + len(summary.no_mask) + len(summary.failed)
    if skipped:
        raise FaceganError(f"{skipped} of {summary.photos} photo(s) skipped (listed above); the others were restored",
                           exit_code=1)


def _restore_folder(source: Path, out: Path, restorer, options, console):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from facegan.restoring.photo import restore_photos
    from facegan.restoring.planning import list_photos

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
    for path, choice in summary.choices:
        console.print(f"  {path.name}: {choice.describe()}")
    for path in summary.written:
        console.print(f"wrote {path}")
    console.print(f"{len(summary.written)} of {summary.photos} photo(s) restored, {summary.faces} face(s)")
    for path in summary.no_face:
        console.print(f"  no face found: {path}")
    for path in summary.no_mask:
        console.print(f"  no mask with its stem, skipped: {path}")
    for path, reason in summary.failed:
        console.print(f"  skipped {path}: {reason}")
