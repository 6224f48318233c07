"""Turn photos into packed datasets: the in-memory photo pipeline and the bundled sample.

This module holds :func:`align_photos` (decode, detect with MTCNN, align onto the template,
all in this process and in memory) and the ``sample`` preparer (:func:`prepare_sample`),
which packs the photos bundled in ``facegan/assets/sample_faces`` into a small
train/val/test dataset. The real datasets, which do not fit in memory and are decoded in
parallel, have their own modules: :mod:`facegan.data.celeba`, :mod:`facegan.data.celebahq`
and :mod:`facegan.data.folder` (on :mod:`facegan.data.build`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from facegan.data.build import print_summary
from facegan.data.packed import (
    FORMAT_VERSION,
    SPLIT_ORDER,
    SplitArrays,
    existing_inputs_hash,
    write_packed,
)
from facegan.errors import FaceganError
from facegan.faces import ALIGNMENT_VERSION, align_face, detect_faces, load_image
from facegan.geometry import TEMPLATE, TEMPLATE_NAME, apply_affine

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "assets" / "sample_faces"
SAMPLE_MANIFEST_COLUMNS = ("file", "identity", "split", "source_repo", "licence", "sha256")

#: Photos decoded and detected per chunk (bounds memory on large folders).
_CHUNK = 16


class AlignedPhotos(NamedTuple):
    """What :func:`align_photos` returns; the first three lists are parallel."""

    images: list[np.ndarray]
    """Aligned faces, uint8 (size, size, 3)."""
    landmarks: list[np.ndarray]
    """The detected landmarks mapped into each aligned face, float32 (5, 2)."""
    items: list[tuple[Path, str]]
    """The input items that produced a face, in input order."""
    skipped: list[tuple[Path, str]]
    """Items that did not: (path, reason)."""


def align_photos(
    items: list[tuple[Path, str]],
    size: int,
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> AlignedPhotos:
    """Decode, detect and align each photo of ``items`` ((path, identity) pairs).

    The largest face of each photo is aligned at ``size``. A photo that cannot be decoded or
    holds no face is skipped with its reason. ``progress(done, total)`` is called after
    each photo.
    """
    result = AlignedPhotos([], [], [], [])
    total = len(items)
    for start in range(0, total, _CHUNK):
        chunk = items[start : start + _CHUNK]
        loaded: list[tuple[tuple[Path, str], object]] = []
        for item in chunk:
            try:
                loaded.append((item, load_image(item[0])))
            except FaceganError as exc:
                result.skipped.append((Path(item[0]), str(exc)))
        found = detect_faces([img for _, img in loaded], device=device)
        for (item, img), faces in zip(loaded, found):
            if not faces:
                result.skipped.append((Path(item[0]), "no face found"))
                continue
            aligned, m = align_face(img, faces[0].landmarks, size)
            result.images.append(aligned)
            result.landmarks.append(apply_affine(m, faces[0].landmarks).astype(np.float32))
            result.items.append(item)
        if progress is not None:
            progress(min(start + len(chunk), total), total)
    return result


# --------------------------------------------------------------------------------------------
# The bundled sample
# --------------------------------------------------------------------------------------------


def read_sample_manifest(root: Path = SAMPLE_DIR) -> list[dict[str, str]]:
    """The rows of the bundled sample's manifest.csv, checked against the files present."""
    manifest = root / "manifest.csv"
    if not manifest.is_file():
        raise FaceganError(f"the bundled sample photos are missing ({manifest}); reinstall facegan")
    with open(manifest, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    missing_cols = [c for c in SAMPLE_MANIFEST_COLUMNS if rows and c not in rows[0]]
    if not rows or missing_cols:
        raise FaceganError(f"{manifest} is damaged (no rows or missing {missing_cols})")
    for row in rows:
        if row["split"] not in SPLIT_ORDER:
            raise FaceganError(f"{manifest}: {row['file']} has unknown split {row['split']!r}")
        if not (root / row["file"]).is_file():
            raise FaceganError(f"sample photo {root / row['file']} is missing; reinstall facegan")
    return rows


def sample_inputs_hash(rows: list[dict[str, str]], size: int, root: Path = SAMPLE_DIR) -> str:
    """Hash of everything a sample dataset depends on: photos, labels, size, geometry, code."""
    sha = hashlib.sha256()
    header = {
        "packed_format_version": FORMAT_VERSION,
        "alignment": ALIGNMENT_VERSION,
        "size": size,
        "template": [TEMPLATE_NAME, np.round(TEMPLATE, 8).tolist()],
    }
    sha.update(json.dumps(header, sort_keys=True).encode())
    for row in sorted(rows, key=lambda r: r["file"]):
        data = (root / row["file"]).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if row["sha256"] and digest != row["sha256"]:
            raise FaceganError(
                f"sample photo {root / row['file']} does not match its sha256 in the manifest; "
                "reinstall facegan"
            )
        sha.update(f"{row['file']}\0{row['identity']}\0{row['split']}\0{digest}\n".encode())
    return sha.hexdigest()


def prepare_sample(out: Path, size: int = 128, force: bool = False, console=None) -> Path:
    """Pack the bundled sample photos into a train/val/test dataset at ``out``.

    Every photo is detected and aligned at ``size``. If ``out`` already holds a dataset made
    from the same inputs (photos, labels, size, template, format and alignment versions),
    nothing is done unless ``force``; a different dataset there needs ``force``. Progress
    and a summary table are printed when a rich ``console`` is given.
    """
    out = Path(out)
    if size < 16:
        raise FaceganError(f"--size must be at least 16, got {size}")
    started = time.perf_counter()
    rows = read_sample_manifest()
    inputs_hash = sample_inputs_hash(rows, size)
    if not force and existing_inputs_hash(out) == inputs_hash:
        if console is not None:
            console.print(f"{out} is already prepared from the same sample at {size}x{size}; "
                          "nothing to do (use --force to rebuild it)")
        return out
    if out.exists() and not force:
        raise FaceganError(f"{out} already exists and holds something else; pass --force to "
                           "replace it")

    items = [(SAMPLE_DIR / r["file"], r["identity"]) for r in rows]
    aligned = _align_with_progress(items, size, console)
    for path, reason in aligned.skipped:
        if console is not None:
            console.print(f"[yellow]skipped[/] {path.relative_to(SAMPLE_DIR)}: {reason}")
    split_of = {SAMPLE_DIR / r["file"]: r["split"] for r in rows}
    splits: dict[str, SplitArrays] = {}
    for name in SPLIT_ORDER:
        idx = [i for i, (p, _) in enumerate(aligned.items) if split_of[p] == name]
        splits[name] = SplitArrays(
            images=np.stack([aligned.images[i] for i in idx]) if idx
            else np.zeros((0, size, size, 3), np.uint8),
            files=[str(aligned.items[i][0].relative_to(SAMPLE_DIR)) for i in idx],
            identities=[aligned.items[i][1] for i in idx],
            landmarks=np.stack([aligned.landmarks[i] for i in idx]) if idx
            else np.zeros((0, 5, 2), np.float32),
        )
    meta = {
        "source": "sample",
        "crop": {
            "description": "largest MTCNN face per photo; 5-point similarity transform onto "
            "the template; LANCZOS pre-downscale, bicubic warp, blurred reflect padding",
            "box": None,
            "alignment": ALIGNMENT_VERSION,
        },
        "inputs_sha256": inputs_hash,
        "sample": {
            "photos": len(rows),
            "skipped": [[str(p.relative_to(SAMPLE_DIR)), r] for p, r in aligned.skipped],
            "provenance": "facegan/assets/sample_faces/PROVENANCE.md",
        },
    }
    write_packed(out, splits, meta, force=force)
    print_summary(console, out, f"wrote {out}: the bundled sample at {size}x{size} in "
                  f"{time.perf_counter() - started:.1f} s")
    return out


def _align_with_progress(items: list[tuple[Path, str]], size: int, console) -> AlignedPhotos:
    """:func:`align_photos` with a rich progress bar when a console is given."""
    if console is None:
        return align_photos(items, size)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("detecting and aligning faces", total=len(items))
        return align_photos(items, size, progress=lambda done, _: bar.update(task, completed=done))
