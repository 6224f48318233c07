"""`facegan bench restore`: milliseconds per face of `facegan restore`, stage by stage.

Each bundled model (or the checkpoints named) restores the same photos the way ``restore``
does (:class:`facegan.restoring.photo.PhotoRestorer`): read, detect and align (``prepare``), the
model on every face in one batch per photo (``model``), paste back (``paste``). Writing the
files is left out (it depends on the disk, not on facegan). Every photo is restored once to
warm up, then ``repeats`` times; a stage's time is its median over the repeats, divided by the
photo's faces, and the median over photos is reported.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

#: The stages timed, in the order restore runs them.
STAGES = ("prepare", "model", "paste")


@dataclass
class RestoreTiming:
    """One model's milliseconds per face, per stage and in all (medians over the photos)."""

    model: str
    task: str
    detail: str
    """What the model was asked (``mask eyes``, ``x4``)."""
    photos: int
    faces: int
    ms_per_face: dict[str, float]
    """Per stage of :data:`STAGES`, and ``total``."""


def sample_photos() -> list[Path]:
    """The bundled sample photos (one face each)."""
    from facegan.data.prepare import SAMPLE_DIR
    from facegan.restoring.planning import PHOTO_SUFFIXES

    return sorted(p for p in SAMPLE_DIR.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)


def bench_restore(models: list[str], photos: list[Path], repeats: int = 3, mask: str = "eyes",
                  threads: int | None = None, on_done=None) -> list[RestoreTiming]:
    """Time ``facegan restore`` of ``photos`` with each of ``models`` (bundled names or
    checkpoint paths) on the CPU; ``on_done(timing)`` after each model."""
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _bench_models(models, photos, repeats, mask, on_done)
    finally:
        torch.set_num_threads(before)


def _bench_models(models: list[str], photos: list[Path], repeats: int, mask: str, on_done) -> list[RestoreTiming]:
    from facegan.checkpoints.checkpoint import Checkpoint
    from facegan.checkpoints.fidelity import at_fidelity
    from facegan.restoring.planning import PhotoItem, RestoreOptions
    from facegan.restoring.torch_restorer import TorchRestorer

    results = []
    for name in models:
        ckpt = at_fidelity(Checkpoint.load(name), None)  # as restore runs it: a GAN model at its default
        restorer = TorchRestorer(ckpt, "cpu")
        takes_hole = restorer.task.takes_hole
        options = RestoreOptions(task=restorer.task.name, mask=mask, batch_size=64)
        items = [PhotoItem(p, mask if takes_hole else None) for p in photos]
        per_photo, faces = _time_photos(restorer, options, items, repeats)
        ms = {stage: statistics.median(t[stage] for t in per_photo) for stage in STAGES}
        ms["total"] = statistics.median(sum(t.values()) for t in per_photo)
        detail = f"mask {mask}" if takes_hole else f"x{restorer.task.scale}"
        timing = RestoreTiming(ckpt.name, restorer.task.name, detail, len(per_photo), faces, ms)
        results.append(timing)
        if on_done is not None:
            on_done(timing)
    return results


def _time_photos(restorer, options, items, repeats: int) -> tuple[list[dict[str, float]], int]:
    """Per photo with a face: each stage's median milliseconds per restored face (per photo when
    the model restored none) over ``repeats``."""
    from facegan.core.errors import NoFaceError
    from facegan.restoring.photo import PhotoRestorer

    engine = PhotoRestorer(restorer, options)
    out, faces = [], 0
    for item in items:
        runs: dict[str, list[float]] = {stage: [] for stage in STAGES}
        for attempt in range(repeats + 1):  # the first is the warm-up
            try:
                t0 = time.perf_counter()
                job = engine.prepare(item)
            except NoFaceError:
                break
            t1 = time.perf_counter()
            engine.run(job.faces)
            t2 = time.perf_counter()
            engine.finish(job)
            t3 = time.perf_counter()
            if attempt:
                # per restored face; per photo when the model took none (an SR photo whose faces are
                # not at a face model's size is upscaled by the background alone)
                n = max(len(job.faces), 1)
                for stage, seconds in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2)):
                    runs[stage].append(seconds * 1e3 / n)
        if runs["model"]:
            out.append({stage: statistics.median(v) for stage, v in runs.items()})
            faces += len(job.faces)
    return out, faces
