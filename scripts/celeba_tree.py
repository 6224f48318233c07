"""Turn a folder of aligned CelebA faces with a manifest into CelebA's own release layout.

The team's training data (a research-only subset of CelebA, re-aligned to the geometry of
``img_align_celeba``) comes as ``images/*.jpg`` plus ``manifest.csv`` (columns ``file``,
``celeba_file``, ``celeba_identity``, ``lm5_crop``). `facegan prepare celeba` reads the layout
CelebA itself ships, so this script writes that layout:

    OUT/img_align_celeba/<celeba_file>        (hard links, or copies across file systems)
    OUT/list_eval_partition.txt               the official partition, by file number
    OUT/identity_CelebA.txt
    OUT/list_landmarks_align_celeba.txt       count line, header line, integer landmarks

The official partition is CelebA's: files 000001-162770 train (0), 162771-182637 val (1),
182638-202599 test (2). CelebA's partition is identity-disjoint, so the subset's is too.

Usage: python scripts/celeba_tree.py MANIFEST_DIR OUT
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
from pathlib import Path

LANDMARK_HEADER = ("lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y "
                   "leftmouth_x leftmouth_y rightmouth_x rightmouth_y")


def partition(celeba_file: str) -> int:
    """CelebA's official split of an image: 0 train, 1 val, 2 test (by file number)."""
    n = int(Path(celeba_file).stem)
    return 0 if n <= 162_770 else 1 if n <= 182_637 else 2


def main(src: Path, out: Path) -> None:
    with open(src / "manifest.csv", newline="") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: r["celeba_file"])
    images = out / "img_align_celeba"
    images.mkdir(parents=True, exist_ok=True)
    for r in rows:
        dest = images / r["celeba_file"]
        if not dest.exists():
            try:
                os.link(src / r["file"], dest)
            except OSError:
                shutil.copy2(src / r["file"], dest)
    (out / "list_eval_partition.txt").write_text(
        "".join(f"{r['celeba_file']} {partition(r['celeba_file'])}\n" for r in rows))
    (out / "identity_CelebA.txt").write_text(
        "".join(f"{r['celeba_file']} {r['celeba_identity']}\n" for r in rows))
    lines = [str(len(rows)), LANDMARK_HEADER]
    for r in rows:
        pts = [round(float(v)) for p in r["lm5_crop"].split(";") for v in p.split(",")]
        lines.append(r["celeba_file"] + " " + " ".join(str(v) for v in pts))
    (out / "list_landmarks_align_celeba.txt").write_text("\n".join(lines) + "\n")
    counts = [sum(partition(r["celeba_file"]) == k for r in rows) for k in range(3)]
    print(f"wrote {out}: {len(rows)} images (train {counts[0]}, val {counts[1]}, test {counts[2]})")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("Usage: ")[1].strip())
    main(Path(sys.argv[1]), Path(sys.argv[2]))
