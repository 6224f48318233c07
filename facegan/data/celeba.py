"""``facegan prepare celeba``: CelebA, as its official release ships, to a packed dataset.

Two image sets are accepted (in ``ROOT``, ``ROOT/Img`` or the doubly nested folder some
mirrors unzip to, e.g. ``img_align_celeba/img_align_celeba``):

* ``img_align_celeba/`` (178x218, the default): each image is cropped to
  ``geometry.CELEBA_SQUARE_BOX`` -- the centre 178x178 square, which *is* facegan's template
  -- and resized with PIL's antialiased LANCZOS; the landmarks of
  ``list_landmarks_align_celeba.txt`` follow by the crop offset and the scale. No warp.
* ``img_celeba/`` (in the wild): each photo is aligned onto the template from the five
  landmarks of ``list_landmarks_celeba.txt`` (:func:`facegan.faces.align.align_face`).

The split is CelebA's official ``list_eval_partition.txt`` (162,770 / 19,867 / 19,962 images,
identity-disjoint); identities come from ``identity_CelebA.txt``. Annotation files are found in
``ROOT``, ``ROOT/Anno`` or ``ROOT/Eval`` (see :mod:`facegan.data.annotations`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from facegan.core.errors import FaceganError
from facegan.data import annotations as anno
from facegan.data.build import InputsHash, build_and_report, check_settings, inputs_hash_to_build, list_files
from facegan.data.extract import Operation, Problem, Source
from facegan.data.packed import SPLIT_ORDER
from facegan.faces.align import ALIGNMENT_VERSION
from facegan.faces.geometry import CELEBA_ALIGNED_SIZE, CELEBA_SQUARE_BOX

#: Bumped whenever the fixed crop changes what a prepared dataset contains.
CROP_VERSION = "celeba-square-box-lanczos-v1"
IMAGE_DIRS = {"aligned": "img_align_celeba", "wild": "img_celeba"}
LANDMARK_FILES = {"aligned": anno.LANDMARKS_ALIGNED, "wild": anno.LANDMARKS_WILD}
IMAGE_CHOICES = ("auto", "aligned", "wild")


@dataclass
class CelebaInputs:
    """What :func:`scan_celeba` found in a CelebA root."""

    root: Path
    kind: str
    """"aligned" (img_align_celeba) or "wild" (img_celeba)."""
    image_dir: Path
    annotation_files: dict[str, Path]
    """partition, identity and landmarks file paths."""
    sources: dict[str, list[Source]]
    """The images present on disk, per official split, by file name."""
    missing: list[str] = field(default_factory=list)
    """Listed in the partition file but absent from the image folder."""
    unlisted: int = 0
    """Files in the image folder that the partition file does not list (ignored)."""
    identities: int = 0
    shared_identities: int = 0
    """Identities found in more than one split (0 for the official partition)."""
    inputs: InputsHash | None = None


def find_image_dir(root: Path, name: str) -> Path | None:
    """``name`` in ``root`` or ``root/Img``, descending into a nested ``name/name`` if present."""
    for base in (root, root / "Img"):
        folder = base / name
        if folder.is_dir():
            nested = folder / name
            return nested if nested.is_dir() else folder
    return None


def _image_dir(root: Path, images: str) -> tuple[str, Path]:
    if images not in IMAGE_CHOICES:
        raise FaceganError(f"--images must be one of {', '.join(IMAGE_CHOICES)}, got {images!r}")
    kinds = ("aligned", "wild") if images == "auto" else (images,)
    for kind in kinds:
        folder = find_image_dir(root, IMAGE_DIRS[kind])
        if folder is not None:
            return kind, folder
    wanted = " or ".join(f"{IMAGE_DIRS[k]}/" for k in kinds)
    raise FaceganError(f"no {wanted} folder in {root} (nor in its Img/); unzip "
                       f"{IMAGE_DIRS[kinds[0]]}.zip from the Img/ folder of CelebA's release there")


def scan_celeba(root: str | Path, images: str = "auto") -> CelebaInputs:
    """Find and check a CelebA root: image folder, annotation files, and which images exist."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FaceganError(f"CelebA root {root} does not exist or is not a folder")
    kind, image_dir = _image_dir(root, images)
    files = {
        "partition": anno.require_annotation(root, anno.PARTITION),
        "identity": anno.require_annotation(root, anno.IDENTITY),
        "landmarks": anno.require_annotation(root, LANDMARK_FILES[kind]),
    }
    partition = anno.read_partition(files["partition"])
    identity = anno.read_identities(files["identity"])
    landmarks = anno.read_landmarks(files["landmarks"])
    for label, table in (("identity", identity), ("landmarks", landmarks)):
        lacking = [f for f in partition if f not in table]
        if lacking:
            more = f" and {len(lacking) - 1:,} more" if len(lacking) > 1 else ""
            raise FaceganError(f"{files[label]} has no entry for {lacking[0]}{more} listed in "
                               f"{anno.PARTITION}; use the annotation files of one CelebA release")
    on_disk = list_files(image_dir)
    present = sorted(f for f in partition if f in on_disk)
    if not present:
        raise FaceganError(f"none of the {len(partition):,} images listed in {anno.PARTITION} "
                           f"are in {image_dir}")
    inputs = InputsHash(preparer="celeba-v1", images=kind, operation=_operation_version(kind))
    for label, path in sorted(files.items()):
        inputs.add_file(label, path)
    sources: dict[str, list[Source]] = {name: [] for name in SPLIT_ORDER}
    for name in present:
        inputs.add_image(name, on_disk[name])
        sources[partition[name]].append(
            Source(str(image_dir / name), name, identity[name], landmarks[name]))
    return CelebaInputs(
        root=root, kind=kind, image_dir=image_dir, annotation_files=files, sources=sources,
        missing=sorted(f for f in partition if f not in on_disk),
        unlisted=sum(1 for f in on_disk if f not in partition),
        identities=len({identity[f] for f in present}),
        shared_identities=shared_identities(sources), inputs=inputs,
    )


def shared_identities(sources: dict[str, list[Source]]) -> int:
    """How many (non-empty) identities occur in more than one split."""
    seen: dict[str, str] = {}
    shared: set[str] = set()
    for split, items in sources.items():
        for s in items:
            if s.identity and seen.setdefault(s.identity, split) != split:
                shared.add(s.identity)
    return len(shared)


def _operation_version(kind: str) -> str:
    return CROP_VERSION if kind == "aligned" else ALIGNMENT_VERSION


def operation(kind: str, size: int) -> Operation:
    """The per-image operation for CelebA's aligned or in-the-wild images."""
    if kind == "aligned":
        return Operation("crop", size, box=CELEBA_SQUARE_BOX, expect_size=CELEBA_ALIGNED_SIZE)
    return Operation("landmarks", size)


def describe(found: CelebaInputs) -> str:
    """One paragraph: what was found (printed before the work starts)."""
    counts = " / ".join(f"{name} {len(v):,}" for name, v in found.sources.items())
    total = sum(len(v) for v in found.sources.values())
    kind = "178x218 aligned" if found.kind == "aligned" else "in the wild"
    lines = [f"CelebA in {found.root}: {total:,} images ({kind}) in "
             f"{found.image_dir.relative_to(found.root)}/",
             f"  official partition ({found.annotation_files['partition'].name}): {counts}; "
             f"{found.identities:,} identities; 5 landmarks per image from "
             f"{found.annotation_files['landmarks'].name}"]
    if found.shared_identities:
        lines.append(f"  [yellow]warning: {found.shared_identities:,} identities occur in more "
                     f"than one split of this {anno.PARTITION}[/] (the official one has none)")
    if found.missing:
        lines.append(f"  [yellow]{len(found.missing):,} image(s) listed in {anno.PARTITION} are "
                     f"missing from {found.image_dir}[/] (first: {found.missing[0]})")
    if found.unlisted:
        lines.append(f"  {found.unlisted:,} other file(s) in {found.image_dir.name}/ are not in "
                     f"{anno.PARTITION}; ignored")
    return "\n".join(lines)


def _crop_meta(kind: str) -> dict:
    if kind == "aligned":
        return {
            "description": "official 178x218 aligned image cropped to box (its centre square, "
            "which is facegan's template) and resized with PIL LANCZOS (antialiased); "
            "landmarks mapped by the crop offset and scale",
            "box": list(CELEBA_SQUARE_BOX),
            "box_convention": "left, top, right, bottom in pixels of the 178x218 image; "
            "right and bottom exclusive",
            "alignment": CROP_VERSION,
        }
    return {
        "description": "in-the-wild photo aligned onto the template by a 5-point similarity "
        "transform from list_landmarks_celeba.txt; LANCZOS pre-downscale (JPEG DCT scaling "
        "where the face keeps >= 2 source pixels per output pixel), bicubic warp, blurred "
        "reflect padding",
        "box": None,
        "alignment": ALIGNMENT_VERSION,
    }


def prepare_celeba(
    root: str | Path,
    out: str | Path,
    size: int = 128,
    workers: int | None = None,
    force: bool = False,
    images: str = "auto",
    console=None,
    on_progress=None,
) -> Path:
    """Pack CelebA at ``root`` into a dataset at ``out`` (official split, identities, landmarks).

    ``images``: "auto" (img_align_celeba if present, else img_celeba), "aligned" or "wild".
    ``workers`` processes decode in parallel (None = every core). If ``out`` already holds a
    dataset made from the same inputs and settings nothing is done; another dataset there
    needs ``force``. Images listed but missing, corrupt or of the wrong size are skipped,
    counted and listed (meta.json ``skipped``). Prints what it found, a progress bar and a
    summary table when a rich ``console`` is given.
    """
    out = Path(out).expanduser()
    workers = check_settings(size, workers)
    found = scan_celeba(root, images)
    if console is not None:
        console.print(describe(found))
    inputs_hash = inputs_hash_to_build(out, size, found.inputs, force, console)
    if inputs_hash is None:
        return out
    meta = {
        "source": "celeba",
        "crop": _crop_meta(found.kind),
        "inputs_sha256": inputs_hash,
        "inputs_hash_covers": "annotation file bytes; image file names, sizes and mtimes; "
        "size, template, crop/alignment and format versions",
        "celeba": {
            "root": str(found.root),
            "images": str(found.image_dir.relative_to(found.root)),
            "annotations": {k: str(p.relative_to(found.root))
                            for k, p in found.annotation_files.items()},
            "split": "official list_eval_partition.txt (0 = train, 1 = val, 2 = test)",
            "identity_disjoint": found.shared_identities == 0,
            "unlisted_files_ignored": found.unlisted,
        },
    }
    missing = [Problem(name, "missing", f"listed in {anno.PARTITION} but not in "
                       f"{found.image_dir.name}/") for name in found.missing]
    what = "cropping CelebA" if found.kind == "aligned" else "aligning CelebA (in the wild)"
    build_and_report(out, found.sources, operation(found.kind, size), meta, workers, force=force,
                     console=console, description=what, problems=missing, on_progress=on_progress,
                     label=lambda _: f"CelebA ({found.kind})")
    return out
