"""``facegan prepare celeba-hq``: CelebA-HQ (as in CelebAMask-HQ) to a packed dataset.

Input: ``ROOT/CelebA-HQ-img/N.jpg`` (1024x1024) and ``ROOT/CelebA-HQ-to-CelebA-mapping.txt``
(``idx orig_idx orig_file``). Each CelebA-HQ image takes the split and the identity of the
CelebA image it was made from (CelebA's ``list_eval_partition.txt`` and
``identity_CelebA.txt``, looked for with ``--celeba DIR`` or in ``ROOT``, ``ROOT/Anno``,
``ROOT/Eval``), so no identity crosses splits. Without the partition file the split is seeded
(identity-disjoint when ``identity_CelebA.txt`` is there; otherwise identity-disjointness
cannot be guaranteed, and the run says so).

CelebA-HQ images are FFHQ-like tight crops, not facegan's geometry, so each one is aligned
like any photo: MTCNN finds the five landmarks (on a copy at most 512 pixels long; the JPEG
is decoded at reduced scale where that keeps the face sharp enough), and
:func:`facegan.faces.align.align_face` warps the face onto the template -- the same template
CelebA crops sit on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from facegan.core.errors import FaceganError
from facegan.data import annotations as anno
from facegan.data.build import InputsHash, build_and_report, check_settings, inputs_hash_to_build, list_files
from facegan.data.celeba import shared_identities
from facegan.data.extract import Operation, Problem, Source
from facegan.data.packed import SPLIT_ORDER
from facegan.data.splits import DEFAULT_FRACTIONS, seeded_split
from facegan.faces.align import ALIGNMENT_VERSION
from facegan.faces.detect import DETECT_MAX_SIDE

IMAGE_DIR = "CelebA-HQ-img"
WHERE_HQ_FILES = ("CelebAMask-HQ unpacks to a folder holding CelebA-HQ-img/ and "
                  "CelebA-HQ-to-CelebA-mapping.txt; pass that folder as --root")
NO_DISJOINT_WARNING = ("identity-disjointness cannot be guaranteed: CelebA's annotation files "
                       "(list_eval_partition.txt, identity_CelebA.txt) were not given, so the "
                       "split is seeded per image; pass --celeba DIR to use CelebA's own split")


@dataclass
class CelebaHQInputs:
    """What :func:`scan_celebahq` found."""

    root: Path
    image_dir: Path
    files: dict[str, Path]
    """mapping, and partition / identity where found."""
    split_mode: str
    """"official" (CelebA's partition of each source image), "seeded-identity" or "seeded"."""
    sources: dict[str, list[Source]]
    missing: list[str] = field(default_factory=list)
    unlisted: int = 0
    identities: int = 0
    shared_identities: int = 0
    inputs: InputsHash | None = None

    @property
    def identity_disjoint(self) -> bool | None:
        """True when guaranteed, False when known not to be, None when it cannot be known."""
        if "identity" in self.files:
            return self.shared_identities == 0
        return True if self.split_mode == "official" else None


def _annotation_files(root: Path, celeba: Path | None) -> dict[str, Path]:
    """CelebA's partition and identity files: required in ``celeba`` if given, else optional."""
    if celeba is not None:
        celeba = Path(celeba).expanduser()
        if not celeba.is_dir():
            raise FaceganError(f"--celeba {celeba} does not exist or is not a folder")
        return {"partition": anno.require_annotation(celeba, anno.PARTITION),
                "identity": anno.require_annotation(celeba, anno.IDENTITY)}
    found = {"partition": anno.find_annotation(root, anno.PARTITION),
             "identity": anno.find_annotation(root, anno.IDENTITY)}
    return {k: v for k, v in found.items() if v is not None}


def scan_celebahq(
    root: str | Path,
    celeba: str | Path | None = None,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
) -> CelebaHQInputs:
    """Find and check a CelebA-HQ root and decide each image's split and identity."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FaceganError(f"CelebA-HQ root {root} does not exist or is not a folder")
    image_dir = root / IMAGE_DIR
    if not image_dir.is_dir():
        raise FaceganError(f"{IMAGE_DIR}/ not found in {root}; {WHERE_HQ_FILES}")
    mapping_path = root / anno.HQ_MAPPING
    if not mapping_path.is_file():
        raise FaceganError(f"{anno.HQ_MAPPING} not found in {root}; {WHERE_HQ_FILES}")
    mapping = anno.read_hq_mapping(mapping_path)
    files = {"mapping": mapping_path, **_annotation_files(root, celeba)}
    partition = anno.read_partition(files["partition"]) if "partition" in files else None
    identity = anno.read_identities(files["identity"]) if "identity" in files else {}
    for label, table in (("partition", partition), ("identity", identity if identity else None)):
        if table is None:
            continue
        lacking = [(hq, orig) for hq, orig in mapping if orig not in table]
        if lacking:
            hq, orig = lacking[0]
            more = f" (and {len(lacking) - 1:,} more)" if len(lacking) > 1 else ""
            raise FaceganError(f"{files[label]} has no entry for {orig}, the source of CelebA-HQ "
                               f"{hq}{more}; use the annotation files of the original CelebA")

    on_disk = list_files(image_dir)
    present = [(hq, orig) for hq, orig in mapping if hq in on_disk]
    if not present:
        raise FaceganError(f"none of the {len(mapping):,} images listed in {anno.HQ_MAPPING} "
                           f"are in {image_dir}")
    ids = [identity.get(orig, "") for _, orig in present]
    if partition is not None:
        mode, splits = "official", [partition[orig] for _, orig in present]
    else:
        mode = "seeded-identity" if identity else "seeded"
        splits = seeded_split(ids, fractions, seed)

    inputs = InputsHash(preparer="celeba-hq-v1", alignment=ALIGNMENT_VERSION,
                        detector=f"mtcnn<={DETECT_MAX_SIDE}px", split=mode,
                        seeded=None if mode == "official" else [list(fractions), seed])
    for label, path in sorted(files.items()):
        inputs.add_file(label, path)
    sources: dict[str, list[Source]] = {name: [] for name in SPLIT_ORDER}
    for (hq, _), split, ident in zip(present, splits, ids):
        inputs.add_image(hq, on_disk[hq])
        sources[split].append(Source(str(image_dir / hq), hq, ident))
    listed = {hq for hq, _ in mapping}
    return CelebaHQInputs(
        root=root, image_dir=image_dir, files=files, split_mode=mode, sources=sources,
        missing=[hq for hq, _ in mapping if hq not in on_disk],
        unlisted=sum(1 for f in on_disk if f not in listed),
        identities=len({i for i in ids if i}), shared_identities=shared_identities(sources),
        inputs=inputs,
    )


def describe(found: CelebaHQInputs) -> str:
    """What was found, and how it will be split (printed before the work starts)."""
    counts = " / ".join(f"{name} {len(v):,}" for name, v in found.sources.items())
    total = sum(len(v) for v in found.sources.values())
    how = {"official": "CelebA's official partition of each source image",
           "seeded-identity": "seeded, identity-disjoint (no list_eval_partition.txt given)",
           "seeded": "seeded per image"}[found.split_mode]
    ids = f"{found.identities:,} identities" if found.identities else "identities unknown"
    lines = [f"CelebA-HQ in {found.root}: {total:,} images in {IMAGE_DIR}/",
             f"  split: {how}: {counts}; {ids}; landmarks from MTCNN"]
    if found.identity_disjoint is None:
        lines.append(f"  [yellow]warning: {NO_DISJOINT_WARNING}[/]")
    elif not found.identity_disjoint:
        lines.append(f"  [yellow]warning: {found.shared_identities:,} identities occur in more "
                     "than one split[/]")
    if found.missing:
        lines.append(f"  [yellow]{len(found.missing):,} image(s) listed in {anno.HQ_MAPPING} "
                     f"are missing from {IMAGE_DIR}/[/] (first: {found.missing[0]})")
    if found.unlisted:
        lines.append(f"  {found.unlisted:,} other file(s) in {IMAGE_DIR}/ are not in "
                     f"{anno.HQ_MAPPING}; ignored")
    return "\n".join(lines)


def prepare_celebahq(
    root: str | Path,
    out: str | Path,
    size: int = 128,
    workers: int | None = None,
    force: bool = False,
    celeba: str | Path | None = None,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    console=None,
    on_progress=None,
) -> Path:
    """Pack CelebA-HQ at ``root`` into a dataset at ``out``, aligned with MTCNN landmarks.

    Splits follow the CelebA partition of each image's source (``celeba`` = folder holding
    CelebA's annotation files; by default ``root`` is searched); without it, a seeded split
    with ``fractions`` and ``seed``. Same no-op / ``force`` rules as
    :func:`facegan.data.celeba.prepare_celeba`; images without a face are skipped and listed.
    """
    out = Path(out).expanduser()
    workers = check_settings(size, workers)
    found = scan_celebahq(root, celeba, fractions, seed)
    if console is not None:
        console.print(describe(found))
    inputs_hash = inputs_hash_to_build(out, size, found.inputs, force, console)
    if inputs_hash is None:
        return out
    meta = {
        "source": "celeba-hq",
        "crop": {
            "description": "largest MTCNN face of each CelebA-HQ image (detected at <= "
            f"{DETECT_MAX_SIDE} px); 5-point similarity transform onto the template; JPEG DCT "
            "scaling / LANCZOS pre-downscale, bicubic warp, blurred reflect padding",
            "box": None,
            "alignment": ALIGNMENT_VERSION,
        },
        "inputs_sha256": inputs_hash,
        "inputs_hash_covers": "mapping and annotation file bytes; image file names, sizes and "
        "mtimes; size, split settings, template, alignment and format versions",
        "celeba_hq": {
            "root": str(found.root),
            "files": {k: str(p) for k, p in found.files.items()},
            "split": found.split_mode,
            "seeded": None if found.split_mode == "official"
            else {"fractions": list(fractions), "seed": seed},
            "identity_disjoint": found.identity_disjoint,
            "unlisted_files_ignored": found.unlisted,
        },
    }
    missing = [Problem(name, "missing", f"listed in {anno.HQ_MAPPING} but not in {IMAGE_DIR}/")
               for name in found.missing]
    op = Operation("detect", size)
    build_and_report(out, found.sources, op, meta, workers, force=force, console=console,
                     description="detecting and aligning CelebA-HQ", problems=missing,
                     on_progress=on_progress, label=lambda _: "CelebA-HQ")
    return out
