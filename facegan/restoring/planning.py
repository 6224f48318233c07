"""What `facegan restore` will do, before any model is loaded: options, photos, masks, outputs.

:class:`RestoreOptions` are the options of `facegan restore`; :func:`plan_inputs` lists the
photos to restore with their masks (a mask name, a mask image, or a folder of masks matched by
file stem) and refuses outputs that would overwrite an input or collide.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from facegan.core.errors import FaceganError, not_found

#: Files of a folder that are taken as photos (case-insensitive suffixes).
PHOTO_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class RestoreOptions:
    """What to restore and how (the options of `facegan restore`)."""

    task: str = "inpaint"
    """The task's name (``inpaint``, ``sr``)."""
    mask: str = "eyes"
    """Tasks that take a hole: a mask name, a mask image (white = hole) or a folder of masks."""
    faces: int | None = None
    """Restore the ``faces`` largest faces of each photo; ``None``: all of them."""
    aligned: bool = False
    """The photos are aligned faces already: no detection, the whole photo is the face."""
    compare: bool = False
    """Also write ``<stem>_compare.png`` (input | occluded | restored)."""
    batch_size: int = 8
    """Faces per generator call (drawn from several photos)."""
    seed: int = 0
    """Seed of the random mask kinds (box, freeform)."""
    max_megapixels: float = 64.0
    """A photo whose restored version would be larger (super-resolution) is refused before any work."""


@dataclass
class PhotoItem:
    """One photo to restore and the mask that goes with it."""

    path: Path
    mask: str | Path | None
    """A mask name or a mask file, ``None`` for a task that takes no hole."""


def parse_face_option(value: str) -> int | None:
    """``--face``: ``all`` -> None, ``largest`` -> 1, ``N`` -> the N largest faces."""
    text = value.strip().lower()
    if text == "all":
        return None
    if text == "largest":
        return 1
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise FaceganError(f"--face {value!r}: use largest, all, or a number of faces (1, 2, ...)")


def check_options(options: RestoreOptions) -> None:
    """Refuse option values that cannot work, before any model is loaded (the task and its
    options: :func:`facegan.tasks.registry.check_options` and the restorer's check)."""
    if options.batch_size < 1:
        raise FaceganError(f"--batch-size must be at least 1, got {options.batch_size}")
    if not options.max_megapixels > 0:
        raise FaceganError(f"--max-megapixels must be above 0, got {options.max_megapixels:g}")


def list_photos(source: Path) -> list[Path]:
    """``source`` itself, or the photos (by suffix) directly inside the folder ``source``."""
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.exists():
        raise FaceganError(f"{source} {not_found(source)}")
    photos = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    if not photos:
        raise FaceganError(f"no photos ({', '.join(PHOTO_SUFFIXES)}) in {source}")
    return photos


def output_paths(photo: Path, out_dir: Path) -> tuple[Path, Path]:
    """(``<out>/<stem>_restored.png``, ``<out>/<stem>_compare.png``) for ``photo``."""
    return out_dir / f"{photo.stem}_restored.png", out_dir / f"{photo.stem}_compare.png"


def _masks_by_stem(folder: Path) -> dict[str, Path]:
    from facegan.data.mask_files import MASK_FILE_SUFFIXES

    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in MASK_FILE_SUFFIXES:
            if path.stem in found:
                raise FaceganError(f"two masks for '{path.stem}' in {folder}: {found[path.stem].name} and {path.name}")
            found[path.stem] = path
    return found


def plan_inputs(source: Path, options: RestoreOptions, out_dir: Path, takes_hole: bool) -> tuple[list[PhotoItem], list[Path]]:
    """The photos to restore with their masks, and the photos of a folder without a mask.

    Masks in a folder are matched to photos by file stem (for a task that takes holes).
    Refuses (before anything runs) outputs that would overwrite an input file, and photos
    whose outputs would collide.
    """
    from facegan.data.mask_files import parse_mask_spec

    source = Path(source)
    photos = list_photos(source)
    spec = parse_mask_spec(options.mask) if takes_hole else None
    items: list[PhotoItem] = []
    no_mask: list[Path] = []
    if isinstance(spec, Path) and spec.is_dir():
        by_stem = _masks_by_stem(spec)
        for photo in photos:
            if photo.stem in by_stem:
                items.append(PhotoItem(photo, by_stem[photo.stem]))
            elif source.is_file():
                raise FaceganError(f"no mask named {photo.stem}.* in {spec}")
            else:
                no_mask.append(photo)
    else:
        items = [PhotoItem(photo, spec) for photo in photos]

    inputs = {p.resolve() for p in photos} | {i.mask.resolve() for i in items if isinstance(i.mask, Path)}
    stems: dict[str, Path] = {}
    for item in items:
        if item.path.stem in stems:
            raise FaceganError(f"{stems[item.path.stem].name} and {item.path.name} would both write {item.path.stem}_restored.png")
        stems[item.path.stem] = item.path
        for out in output_paths(item.path, Path(out_dir))[: 2 if options.compare else 1]:
            if out.resolve() in inputs:
                raise FaceganError(f"refusing to overwrite the input {out}; choose another --out")
    return items, no_mask
