"""`facegan prepare ...`: build packed datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from facegan.commands.common import console as _console
from facegan.commands.common import reflowed, user_errors

HELP = """Build a packed dataset (uint8 arrays + landmarks, split) that training reads without decoding.

Every dataset lands on one geometry: CelebA's aligned face cropped to its centre square (facegan's template), resized with antialiasing to --size pixels (default 128; a dataset folder holds one size, so use one --out per size). Each run prints what it found, shows a progress bar (images/s, ETA) and ends with a table: split, images, identities, size on disk. Re-running on the same inputs is a no-op; --force rebuilds. The output is written to a hidden temp folder and renamed at the end, so an interrupted run leaves no half dataset. Corrupt images are counted, listed and skipped.

\b
Input layouts (annotation files may be in ROOT, ROOT/Anno or ROOT/Eval):
celeba     ROOT/img_align_celeba/000001.jpg ...  178x218 (or in ROOT/Img/)
           or ROOT/img_celeba/ (in the wild; aligned from its landmarks)
           list_eval_partition.txt   000001.jpg 0  (0 train 1 val 2 test)
           identity_CelebA.txt       000001.jpg 2880
           list_landmarks_align_celeba.txt (list_landmarks_celeba.txt
           for img_celeba/): a count line, a header line, then
           000001.jpg 69 109 106 113 77 142 73 152 108 154
celeba-hq  ROOT/CelebA-HQ-img/0.jpg ...  1024x1024 (CelebAMask-HQ)
           ROOT/CelebA-HQ-to-CelebA-mapping.txt  idx orig_idx orig_file
           + CelebA's list_eval_partition.txt, identity_CelebA.txt
           (--celeba DIR, or in ROOT): each image takes its source's
           split and identity; without them the split is seeded
folder     PHOTOS/alice/1.jpg, PHOTOS/bob/2.png ...  sub-folder =
           identity (optional); jpg png webp bmp tif; EXIF honoured;
           MTCNN finds the faces
sample     the small set of real photos bundled with facegan

\b
Examples:
facegan prepare celeba --root ~/data/celeba --out data/celeba-128
facegan prepare celeba-hq --root ~/data/CelebAMask-HQ --out data/celebahq-128
facegan prepare folder ~/photos --out data/mine-128 --split 0.9,0.05,0.05
"""

app = typer.Typer(help=HELP, no_args_is_help=True)

_SIZE_HELP = ("Side of the aligned faces in pixels (multiple of 16, 32..1024). A dataset folder "
              "holds one size: use another --out for another size.")
_WORKERS_HELP = "Processes decoding in parallel \\[default: every CPU core]."
_FORCE_HELP = "Rebuild even if OUT already holds a dataset (it is replaced at the end)."
_SPLIT_HELP = "Seeded train,val,test fractions (identity-disjoint where identities are known)."


def _check_size(size: int) -> None:
    if size % 16 or not 32 <= size <= 1024:
        from facegan.core.errors import FaceganError

        raise FaceganError(f"--size must be a multiple of 16 between 32 and 1024, got {size}")


@app.command("sample")
@user_errors
@reflowed
def prepare_sample(
    out: Path = typer.Option(Path("data/sample"), "--out", "-o", help="Dataset folder to write."),
    size: int = typer.Option(128, "--size", help=_SIZE_HELP),
    force: bool = typer.Option(False, "--force", help=_FORCE_HELP),
) -> None:
    """Pack the small set of real face photos that ships with facegan (MIT / Apache-2.0 sources).

    Faces are detected with MTCNN, aligned on 5 landmarks to facegan's template, split
    train/val/test (identity-disjoint) and packed. Re-running is a no-op.

    Example: facegan prepare sample --out data/sample --size 128
    """
    from facegan.data.prepare import prepare_sample as run

    _check_size(size)
    run(out, size=size, force=force, console=_console())


@app.command("celeba")
@user_errors
@reflowed
def prepare_celeba(
    root: Path = typer.Option(..., "--root", help="CelebA folder (holding img_align_celeba/ or Img/, Anno/, Eval/).", show_default=False),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Dataset folder to write \\[default: data/celeba-SIZE]."),
    size: int = typer.Option(128, "--size", help=_SIZE_HELP),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", help=_WORKERS_HELP, show_default=False),
    images: str = typer.Option("auto", "--images", help="auto (img_align_celeba/ if present), aligned, or wild (img_celeba/)."),
    force: bool = typer.Option(False, "--force", help=_FORCE_HELP),
) -> None:
    """Pack CelebA as the official release ships it (official split, identities, 5 landmarks).

    img_align_celeba/ (178x218): each image is cropped to its centre 178x178 square (rows 20..197, recorded in meta.json as crop.box) and resized with antialiasing; the landmarks of list_landmarks_align_celeba.txt follow into output pixels. No warp. img_celeba/ (in the wild, --images wild): each photo is aligned onto the same template from the landmarks of list_landmarks_celeba.txt. Split: list_eval_partition.txt as is (162,770 / 19,867 / 19,962). Annotation files are found in ROOT, ROOT/Anno or ROOT/Eval. Images listed but missing, corrupt, or not 178x218 are counted, listed and skipped.

    \b
    Example:
    facegan prepare celeba --root ~/data/celeba --out data/celeba-128 --workers 8
    """
    from facegan.data.celeba import prepare_celeba as run

    _check_size(size)
    run(root, out or Path(f"data/celeba-{size}"), size=size, workers=workers, force=force,
        images=images, console=_console())


@app.command("celeba-hq")
@user_errors
@reflowed
def prepare_celebahq(
    root: Path = typer.Option(..., "--root", help="CelebAMask-HQ folder (holding CelebA-HQ-img/ and CelebA-HQ-to-CelebA-mapping.txt).", show_default=False),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Dataset folder to write \\[default: data/celebahq-SIZE]."),
    size: int = typer.Option(128, "--size", help=_SIZE_HELP),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", help=_WORKERS_HELP, show_default=False),
    celeba: Optional[Path] = typer.Option(None, "--celeba", help="Folder with CelebA's list_eval_partition.txt and identity_CelebA.txt (or its Anno/, Eval/) \\[default: look in ROOT].", show_default=False),
    split: str = typer.Option("0.9,0.05,0.05", "--split", help="Used only without CelebA's partition file. " + _SPLIT_HELP),
    seed: int = typer.Option(0, "--seed", help="Seed of that split."),
    force: bool = typer.Option(False, "--force", help=_FORCE_HELP),
) -> None:
    """Pack CelebA-HQ (1024x1024, as in CelebAMask-HQ), aligned with MTCNN landmarks.

    Each image takes the split and identity of its source CelebA image (via CelebA-HQ-to-CelebA-mapping.txt and CelebA's annotation files), so no identity crosses splits. Without list_eval_partition.txt the split is seeded (--split, --seed) and the run warns that identity-disjointness cannot be guaranteed (unless identity_CelebA.txt is found). Faces are found with MTCNN and aligned on 5 landmarks to the CelebA template; images without a face are listed and skipped.

    \b
    Example:
    facegan prepare celeba-hq --root ~/data/CelebAMask-HQ --celeba ~/data/celeba
    """
    from facegan.data.celebahq import prepare_celebahq as run
    from facegan.data.splits import parse_fractions

    _check_size(size)
    run(root, out or Path(f"data/celebahq-{size}"), size=size, workers=workers, force=force,
        celeba=celeba, fractions=parse_fractions(split), seed=seed, console=_console())


@app.command("folder")
@user_errors
@reflowed
def prepare_folder(
    folder: Path = typer.Argument(..., help="Folder of photos (sub-folder names = identities).", show_default=False),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset folder to write.", show_default=False),
    size: int = typer.Option(128, "--size", help=_SIZE_HELP),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", help=_WORKERS_HELP, show_default=False),
    split: str = typer.Option("0.9,0.05,0.05", "--split", help=_SPLIT_HELP),
    seed: int = typer.Option(0, "--seed", help="Seed of the split."),
    all_faces: bool = typer.Option(False, "--all-faces", help="Keep every face of a photo (named file#0, file#1, ... largest first), not only the largest."),
    force: bool = typer.Option(False, "--force", help=_FORCE_HELP),
) -> None:
    """Detect, align and pack the faces in a folder of photos.

    Any jpg, png, webp, bmp or tif under FOLDER (EXIF orientation honoured; grey, RGBA, CMYK and 16-bit converted). MTCNN finds the faces; the largest of each photo (every face with --all-faces) is aligned on its 5 landmarks to the same template as CelebA crops. Photos without a face and unreadable files are listed and skipped. Identity = first sub-folder (alice/1.jpg -> alice); the seeded split keeps each identity in one split.

    \b
    Example:
    facegan prepare folder ~/photos --out data/mine-128 --split 0.9,0.05,0.05
    """
    from facegan.data.folder import prepare_folder as run
    from facegan.data.splits import parse_fractions

    _check_size(size)
    run(folder, out, size=size, workers=workers, force=force, fractions=parse_fractions(split),
        seed=seed, all_faces=all_faces, console=_console())
