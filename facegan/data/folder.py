"""``facegan prepare folder``: any folder of photos to a packed dataset.

Every image under the folder (jpg, jpeg, png, webp, bmp, tif; hidden files and folders
skipped) is decoded with its EXIF orientation applied (grey, palette, RGBA, CMYK and 16-bit
images converted to 8-bit RGB), MTCNN finds the faces (on a copy at most 1024 pixels long),
and the largest face -- or every face with ``all_faces``, named ``file#0``, ``file#1``, ...
largest first -- is aligned onto facegan's template from its five landmarks, the same
geometry as CelebA crops. Photos without a face and files that cannot be decoded are
listed and skipped.

Identities come from the first level of sub-folders (``alice/1.jpg`` is ``alice``); images
directly in the folder have no identity. The split is seeded (``fractions``, ``seed``) and
keeps each identity inside one split; it is identity-disjoint when every image has one.

Byte-identical files (found by content hash) are packed once: the first in path order is kept,
the copies are listed as skipped duplicates, so one image can never be in two splits (a copy
under another identity would otherwise put the same face in train and in test).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from facegan.core.errors import FaceganError
from facegan.core.hashing import sha256_file
from facegan.data.build import InputsHash, build_and_report, check_settings, inputs_hash_to_build
from facegan.data.extract import Operation, Problem, Source
from facegan.data.packed import SPLIT_ORDER
from facegan.data.splits import DEFAULT_FRACTIONS, seeded_split
from facegan.faces.align import ALIGNMENT_VERSION
from facegan.faces.detect import DETECT_MAX_SIDE

EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


@dataclass
class FolderInputs:
    """What :func:`scan_folder` found."""

    root: Path
    sources: dict[str, list[Source]]
    images: int
    with_identity: int
    """Images inside a sub-folder (so with an identity)."""
    identities: int
    ignored: int
    """Files with other extensions (not images), skipped."""
    inputs: InputsHash
    duplicates: list[Problem] = field(default_factory=list)
    """Byte-identical copies of an earlier file, left out (each names the file it copies)."""

    @property
    def identity_disjoint(self) -> bool:
        return self.images > 0 and self.with_identity == self.images


def _walk(root: Path, exclude: Path | None) -> tuple[list[tuple[str, os.stat_result]], int]:
    """(relative posix path, stat) of every image under ``root`` in sorted order; ignored count."""
    found: list[tuple[str, os.stat_result]] = []
    ignored = 0
    excluded = exclude.resolve() if exclude is not None else None
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and (excluded is None or (here / d).resolve() != excluded))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = here / name
            if not name.lower().endswith(EXTENSIONS):
                ignored += 1
                continue
            try:
                found.append((path.relative_to(root).as_posix(), path.stat()))
            except OSError:
                ignored += 1
    return found, ignored


def scan_folder(
    root: str | Path,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    all_faces: bool = False,
    exclude: Path | None = None,
) -> FolderInputs:
    """List the images under ``root``, label identities from sub-folders, and split them."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FaceganError(f"{root} does not exist or is not a folder")
    files, ignored = _walk(root, exclude)
    if not files:
        raise FaceganError(f"no images found in {root} (looked for "
                           f"{', '.join(e[1:] for e in EXTENSIONS)}, in sub-folders too)")
    files, duplicates = _without_copies(root, files)
    ids = [rel.split("/", 1)[0] if "/" in rel else "" for rel, _ in files]
    splits = seeded_split(ids, fractions, seed)
    inputs = InputsHash(preparer="folder-v2", alignment=ALIGNMENT_VERSION,
                        detector=f"mtcnn<={DETECT_MAX_SIDE}px", fractions=list(fractions), seed=seed,
                        all_faces=all_faces)
    sources: dict[str, list[Source]] = {name: [] for name in SPLIT_ORDER}
    for (rel, stat), split, ident in zip(files, splits, ids):
        inputs.add_image(rel, stat)
        sources[split].append(Source(str(root / rel), rel, ident))
    return FolderInputs(root=root, sources=sources, images=len(files),
                        with_identity=sum(1 for i in ids if i),
                        identities=len({i for i in ids if i}), ignored=ignored, inputs=inputs,
                        duplicates=duplicates)


def _content_digest(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except OSError:
        return None  # unreadable: the extraction lists it


def _without_copies(root: Path, files: list[tuple[str, os.stat_result]]):
    """The files with every byte-identical copy of an earlier one left out, and those copies
    (as skipped problems naming the file they copy). Only files of equal size are hashed."""
    by_size: dict[int, list[str]] = {}
    for rel, stat in files:
        by_size.setdefault(stat.st_size, []).append(rel)
    first_of: dict[str, str] = {}
    copies: dict[str, str] = {}
    for same_size in (names for names in by_size.values() if len(names) > 1):
        for rel in same_size:
            digest = _content_digest(root / rel)
            if digest is None:
                continue
            if digest in first_of:
                copies[rel] = first_of[digest]
            else:
                first_of[digest] = rel
    kept = [(rel, stat) for rel, stat in files if rel not in copies]
    problems = [Problem(rel, "duplicate", f"the same bytes as {copies[rel]}") for rel, _ in files if rel in copies]
    return kept, problems


def describe(found: FolderInputs, fractions, seed: int) -> str:
    """What was found, and how it will be split (printed before the work starts)."""
    counts = " / ".join(f"{name} {len(v):,}" for name, v in found.sources.items())
    lines = [f"{found.images:,} images in {found.root}"
             + (f" ({found.ignored:,} other files ignored)" if found.ignored else "")]
    if found.identity_disjoint:
        lines.append(f"  {found.identities:,} identities from sub-folder names; seeded "
                     f"identity-disjoint split (seed {seed}): {counts}")
    elif found.with_identity:
        lines.append(f"  {found.identities:,} identities from sub-folder names; "
                     f"{found.images - found.with_identity:,} images at the top level have none "
                     f"and are split one by one (seed {seed}): {counts}")
    else:
        lines.append(f"  no sub-folders, so identities are unknown and the split (seed {seed}) "
                     f"is per image, not identity-disjoint: {counts}")
    if found.duplicates:
        shown = ", ".join(f"{p.name} = {p.reason.removeprefix('the same bytes as ')}"
                          for p in found.duplicates[:3]).replace("[", "\\[")  # file names are not rich markup
        more = f" and {len(found.duplicates) - 3} more" if len(found.duplicates) > 3 else ""
        lines.append(f"  [yellow]warning:[/] {len(found.duplicates):,} byte-identical cop"
                     f"{'y' if len(found.duplicates) == 1 else 'ies'} skipped, packed once so no image "
                     f"is in two splits: {shown}{more}")
    lines.append("  faces: MTCNN, aligned on 5 landmarks to facegan's template")
    return "\n".join(lines)


def prepare_folder(
    folder: str | Path,
    out: str | Path,
    size: int = 128,
    workers: int | None = None,
    force: bool = False,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    all_faces: bool = False,
    console=None,
    on_progress=None,
) -> Path:
    """Detect, align and pack the faces of every photo under ``folder`` into ``out``.

    Same no-op / ``force`` rules as :func:`facegan.data.celeba.prepare_celeba`. Photos without
    a face and unreadable files are skipped, counted and listed (meta.json ``skipped``).
    """
    out = Path(out).expanduser()
    workers = check_settings(size, workers)
    found = scan_folder(folder, fractions, seed, all_faces, exclude=out)
    if console is not None:
        console.print(describe(found, fractions, seed))
    inputs_hash = inputs_hash_to_build(out, size, found.inputs, force, console)
    if inputs_hash is None:
        return out
    meta = {
        "source": "folder",
        "crop": {
            "description": ("every" if all_faces else "largest") + " MTCNN face per photo "
            f"(detected at <= {DETECT_MAX_SIDE} px, EXIF orientation applied); 5-point similarity "
            "transform onto the template; JPEG DCT scaling / LANCZOS pre-downscale, bicubic "
            "warp, blurred reflect padding",
            "box": None,
            "alignment": ALIGNMENT_VERSION,
        },
        "inputs_sha256": inputs_hash,
        "inputs_hash_covers": "image file names (relative), sizes and mtimes; split settings, "
        "--all-faces, size, template, alignment and format versions",
        "folder": {
            "root": str(found.root),
            "images": found.images,
            "identities": "first-level sub-folder names" if found.with_identity else None,
            "identity_disjoint": found.identity_disjoint,
            "split": {"fractions": list(fractions), "seed": seed},
            "all_faces": all_faces,
            "other_files_ignored": found.ignored,
        },
    }
    op = Operation("detect", size, exif=True, all_faces=all_faces)
    build_and_report(out, found.sources, op, meta, workers, force=force, console=console, problems=found.duplicates,
                     description="detecting and aligning faces", on_progress=on_progress,
                     label=lambda r: f"{sum(r.counts.values()):,} faces from {found.images:,} images")
    return out
