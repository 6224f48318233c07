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
    scale: int | None = None
    """Super-resolution: the output photo is ``scale`` times the input (None: the model's scale)."""
    background: str = "span"
    """Super-resolution: what upscales everything but the faces (:mod:`facegan.restoring.background`)."""
    ext: str | None = None
    """Format of the restored photos: png, jpg or webp (None: the input's own; JPEG at quality
    :data:`JPEG_QUALITY`)."""
    save_faces: bool = False
    """Also write each face: ``cropped_faces/`` (the aligned model input), ``restored_faces/``
    (the model's output) and, for inpainting, ``masks/`` (white = hole), GFPGAN's layout."""
    only_center_face: bool = False
    """Restore only the face nearest the photo's centre."""
    seam: str = "poisson"
    """Inpainting: how a fill meets the photo: poisson (gradient domain, the photo's grain,
    :mod:`facegan.restoring.fill_blend`) or feather (a plain feathered alpha)."""


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
    from facegan.restoring.background import BACKGROUNDS

    if options.ext is not None and options.ext not in EXTENSIONS:
        raise FaceganError(f"--ext must be one of {', '.join(EXTENSIONS)}, got {options.ext!r}")
    if options.seam not in ("poisson", "feather"):
        raise FaceganError(f"--seam must be poisson or feather, got {options.seam!r}")
    if options.background not in BACKGROUNDS:
        raise FaceganError(f"--background must be one of {', '.join(BACKGROUNDS)}, got {options.background!r}")


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


#: Output formats (``--ext``) and the suffix each writes.
EXTENSIONS: dict[str, str] = {"png": ".png", "jpg": ".jpg", "webp": ".webp"}
#: Quality of JPEG and WebP outputs (4:4:4 chroma for JPEG: a restored face keeps its colour detail).
JPEG_QUALITY = 95


def output_ext(photo: Path, ext: str | None) -> str:
    """``ext``, else the input's own format (``.jpeg`` is jpg; anything but JPEG and WebP is png)."""
    if ext is not None:
        return ext
    suffix = photo.suffix.lower()
    return "jpg" if suffix in (".jpg", ".jpeg") else "webp" if suffix == ".webp" else "png"


def output_paths(photo: Path, out_dir: Path, ext: str | None = None) -> tuple[Path, Path]:
    """(``<out>/<stem>_restored.<ext>``, ``<out>/<stem>_compare.png``) for ``photo``."""
    suffix = EXTENSIONS[output_ext(photo, ext)]
    return out_dir / f"{photo.stem}_restored{suffix}", out_dir / f"{photo.stem}_compare.png"


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
            raise FaceganError(f"{stems[item.path.stem].name} and {item.path.name} would both write "
                               f"{item.path.stem}_restored.*")
        stems[item.path.stem] = item.path
        for out in output_paths(item.path, Path(out_dir), options.ext)[: 2 if options.compare else 1]:
            if out.resolve() in inputs:
                raise FaceganError(f"refusing to overwrite the input {out}; choose another --out")
    return items, no_mask
