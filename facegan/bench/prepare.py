"""Benchmarks: how fast facegan's pipelines run on this machine.

:func:`bench_prepare` builds a synthetic CelebA-format tree (``img_align_celeba/`` of 178x218
JPEGs made from jittered, re-encoded copies of the photos bundled with facegan, plus
``Eval/list_eval_partition.txt`` and ``Anno/`` files in the official formats), then times the
whole ``facegan prepare celeba`` on it (listing, hashing, parallel decode + crop + resize,
writing, sha256) for each worker count, and projects the time for all 202,599 CelebA images.
"""

from __future__ import annotations

import io
import os
import resource
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from facegan.data.annotations import LANDMARK_HEADER
from facegan.data.build import human_rate
from facegan.faces.geometry import CELEBA_ALIGNED_LANDMARKS, CELEBA_ALIGNED_SIZE

CELEBA_IMAGES = 202_599
#: CelebA's official split sizes, used to split the synthetic tree in the same proportions.
CELEBA_SPLITS = (162_770, 19_867, 19_962)


@dataclass
class BenchRow:
    """One timed run."""

    workers: int
    images: int
    seconds: float
    """Wall-clock time of the whole prepare."""
    cpu_main: float = 0.0
    """CPU seconds of this (the writing) process."""
    cpu_workers: float = 0.0
    """CPU seconds of the worker processes (0 with one worker: it runs in this process)."""

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds


def _cpu_seconds() -> tuple[float, float]:
    """(this process, its finished children): user + system CPU seconds."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def _base_faces() -> list[Image.Image]:
    """The bundled sample photos, centre-cropped to 178:218 and a little larger than 178x218."""
    from facegan.data.prepare import SAMPLE_DIR, read_sample_manifest
    from facegan.faces.images import load_image

    faces = []
    w, h = CELEBA_ALIGNED_SIZE
    for row in read_sample_manifest():
        img = load_image(SAMPLE_DIR / row["file"])
        scale = min(img.width / w, img.height / h)
        cw, ch = w * scale, h * scale
        left, top = max(0.0, (img.width - cw) / 2), max(0.0, (img.height - ch) / 2)
        box = (left, top, min(img.width, left + cw), min(img.height, top + ch))
        faces.append(img.resize((w + 12, h + 12), Image.Resampling.LANCZOS, box=box))
    return faces


def make_synthetic_celeba(root: str | Path, n: int, seed: int = 0) -> Path:
    """Write an ``n``-image CelebA-format tree at ``root`` (official file formats, names, split).

    Images are jittered copies of the bundled sample faces (random shift, flip, brightness,
    JPEG quality 85..95), so decoding costs what real CelebA JPEGs cost. Landmarks are the
    mean CelebA landmarks plus jitter; identities change every 20 images.
    """
    root = Path(root)
    img_dir = root / "img_align_celeba"
    img_dir.mkdir(parents=True, exist_ok=True)
    (root / "Anno").mkdir(exist_ok=True)
    (root / "Eval").mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    bases = _base_faces()
    w, h = CELEBA_ALIGNED_SIZE
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    for i, name in enumerate(names):
        dx, dy = rng.integers(0, 13, 2)
        img = bases[i % len(bases)].crop((int(dx), int(dy), int(dx) + w, int(dy) + h))
        if rng.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        pixels = np.asarray(img, np.float32) * rng.uniform(0.85, 1.15)
        buf = io.BytesIO()
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
            buf, "JPEG", quality=int(rng.integers(85, 96)))
        (img_dir / name).write_bytes(buf.getvalue())
    cuts = np.cumsum(CELEBA_SPLITS)[:2] / CELEBA_IMAGES * n
    parts = [0 if i < cuts[0] else 1 if i < cuts[1] else 2 for i in range(n)]
    (root / "Eval" / "list_eval_partition.txt").write_text(
        "".join(f"{name} {p}\n" for name, p in zip(names, parts)))
    (root / "Anno" / "identity_CelebA.txt").write_text(
        "".join(f"{name} {i // 20 + 1}\n" for i, name in enumerate(names)))
    base = np.rint(CELEBA_ALIGNED_LANDMARKS).astype(int).reshape(10)
    rows = [f"{name} " + " ".join(str(v) for v in base + rng.integers(-2, 3, 10))
            for name in names]
    (root / "Anno" / "list_landmarks_align_celeba.txt").write_text(
        f"{n}\n{' '.join(LANDMARK_HEADER)}\n" + "\n".join(rows) + "\n")
    return root


def bench_prepare(
    n_images: int = 3000,
    workers: tuple[int, ...] = (1, 2),
    size: int = 128,
    folder: str | Path | None = None,
    console=None,
    root: str | Path | None = None,
) -> list[BenchRow]:
    """Time ``prepare_celeba`` once per worker count, on a synthetic ``n_images`` tree, or on
    the real CelebA-format tree at ``root`` (every image it lists; ``n_images`` is ignored)."""
    from facegan.data.celeba import prepare_celeba, scan_celeba

    own = folder is None
    base = Path(tempfile.mkdtemp(prefix="facegan-bench-")) if own else Path(folder)
    try:
        if root is None:
            root = base / "celeba"
            if console is not None:
                console.print(f"writing {n_images:,} synthetic CelebA JPEGs to {root} ...")
            make_synthetic_celeba(root, n_images)
        else:
            root = Path(root)
            n_images = sum(len(v) for v in scan_celeba(root).sources.values())
        rows = []
        for w in workers:
            cpu0, started = _cpu_seconds(), time.perf_counter()
            prepare_celeba(root, base / f"out-{w}", size=size, workers=w, force=True)
            seconds, cpu1 = time.perf_counter() - started, _cpu_seconds()
            rows.append(BenchRow(w, n_images, seconds, cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]))
            if console is not None:
                console.print(f"  {w} worker(s): {human_rate(rows[-1].images_per_second)} images/s")
            shutil.rmtree(base / f"out-{w}", ignore_errors=True)
        return rows
    finally:
        if own:
            shutil.rmtree(base, ignore_errors=True)


def projection(rows: list[BenchRow], cores: int = 16, total: int = CELEBA_IMAGES) -> str:
    """Projected time for ``total`` images on ``cores`` cores, from the measured rows.

    Three figures: (1) linear scaling of the one-worker rate; (2) that divided by the
    parallel efficiency measured at the largest worker count (pessimistic on a busy machine,
    where other processes' load counts against it); (3) from CPU time, which load does not
    inflate much: ``cores - 1`` workers each needing the measured worker CPU per image, capped
    by the single writing process's CPU per image (the serial part).
    """
    one = next((r for r in rows if r.workers == 1), None)
    if one is None:
        return ""
    top = max(rows, key=lambda r: r.workers)
    linear = total / (one.images_per_second * cores)
    text = (f"projection for {total:,} images on {cores} cores: {linear / 60:.1f} min at "
            f"linear scaling of the 1-worker rate ({human_rate(one.images_per_second)} images/s)")
    if top.workers > 1:
        eff = top.images_per_second / (top.workers * one.images_per_second)
        text += (f"; {linear / eff / 60:.1f} min at the {eff:.0%} efficiency measured with "
                 f"{top.workers} workers")
        if top.cpu_workers > 0 and top.cpu_main > 0:
            per_worker = top.cpu_workers / top.images  # CPU s per image in a worker
            per_main = top.cpu_main / top.images  # CPU s per image in the writer
            rate = min((cores - 1) / per_worker, 1.0 / per_main)
            text += (f"; {total / rate / 60:.1f} min from CPU time ({per_worker * 1e3:.2f} ms "
                     f"per image in a worker, {per_main * 1e3:.2f} ms in the writer: at most "
                     f"{human_rate(1 / per_main)} images/s)")
    return text


def cores() -> int:
    """CPU cores available to this process."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
