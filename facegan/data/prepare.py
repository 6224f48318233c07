"""The bundled sample: pack the photos of ``facegan/assets/sample_faces`` (``prepare sample``).

The photos are detected and aligned like any folder of photos (the ``detect`` operation of
:mod:`facegan.data.extract`, facegan's one detection policy) and packed by the same
:func:`facegan.data.build.build_and_report` as CelebA, CelebA-HQ and folders; only the split
comes from the sample's ``manifest.csv`` (identity-disjoint) instead of a seeded draw.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np

from facegan.core.errors import FaceganError
from facegan.data.build import already_prepared, build_and_report, check_settings
from facegan.data.extract import Operation, Source
from facegan.data.packed import FORMAT_VERSION, SPLIT_ORDER
from facegan.faces.align import ALIGNMENT_VERSION
from facegan.faces.geometry import TEMPLATE, TEMPLATE_NAME

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "assets" / "sample_faces"
SAMPLE_MANIFEST_COLUMNS = ("file", "identity", "split", "source_repo", "licence", "sha256")


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
    for row in rows:
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
    check_settings(size, 1)
    rows = read_sample_manifest()
    inputs_hash = sample_inputs_hash(rows, size)
    if already_prepared(out, inputs_hash, force, console):
        return out
    sources: dict[str, list[Source]] = {name: [] for name in SPLIT_ORDER}
    for row in rows:
        sources[row["split"]].append(Source(str(SAMPLE_DIR / row["file"]), row["file"], row["identity"]))
    meta = {
        "source": "sample",
        "crop": {
            "description": "largest MTCNN face per photo; 5-point similarity transform onto "
            "the template; LANCZOS pre-downscale, bicubic warp, blurred reflect padding",
            "box": None,
            "alignment": ALIGNMENT_VERSION,
        },
        "inputs_sha256": inputs_hash,
        "sample": {"photos": len(rows), "provenance": "facegan/assets/sample_faces/PROVENANCE.md"},
    }
    build_and_report(out, sources, Operation("detect", size, exif=True), meta, 1, force=force, console=console,
                     description="detecting and aligning faces",
                     label=lambda r: f"the bundled sample ({sum(r.counts.values())} faces)")
    return out
