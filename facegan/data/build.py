"""The machinery every real-dataset preparer shares.

A preparer (:mod:`facegan.data.celeba`, :mod:`~facegan.data.celebahq`,
:mod:`~facegan.data.folder`) reads its annotation files, decides each image's split and
identity, and hands :func:`build` the sources of each split plus one
:class:`~facegan.data.extract.Operation`. :func:`build` decodes them in a
:class:`~facegan.data.pool.WorkerPool` and streams the faces, in order, into a
:class:`~facegan.data.packed_writer.PackedWriter` (so nothing grows with the dataset but the file
list), with a rich progress bar (images/s, ETA). Images that give no face are counted,
listed in ``meta.json["skipped"]`` and printed; they never stop the run.

Re-running on the same inputs is a no-op: :class:`InputsHash` hashes what a dataset was made
from, and :func:`already_prepared` compares it with the ``inputs_sha256`` of the dataset
already at ``out``. For image files the hash covers name, size and modification time, not
their bytes (hashing 10 GB of JPEGs on every re-run would take minutes); annotation files
are hashed by content.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facegan.core.errors import FaceganError
from facegan.core.hashing import sha256_file
from facegan.data.extract import ExtractJob, Operation, Problem, Source, run_job
from facegan.data.packed import FORMAT_VERSION, SPLIT_ORDER
from facegan.data.packed_writer import PackedWriter
from facegan.data.pool import WorkerPool
from facegan.faces.geometry import TEMPLATE, TEMPLATE_NAME

#: Sources per task handed to a worker, per operation (bigger = less overhead, coarser progress).
BATCH = {"crop": 64, "landmarks": 16, "detect": 4}
#: Problems printed at the end of a run (all of them are in meta.json).
SHOWN_PROBLEMS = 20
PROBLEM_LABELS = {"missing": "missing", "unreadable": "unreadable", "no_face": "without a face",
                  "bad_landmarks": "with unusable landmarks"}


# --------------------------------------------------------------------------------------------
# What a dataset is made from
# --------------------------------------------------------------------------------------------


class InputsHash:
    """sha256 over a preparer's settings, annotation files (bytes) and images (name, size, mtime)."""

    def __init__(self, **settings) -> None:
        self._sha = hashlib.sha256()
        header = {"packed_format_version": FORMAT_VERSION,
                  "template": [TEMPLATE_NAME, np.round(TEMPLATE, 8).tolist()], **settings}
        self._sha.update(json.dumps(header, sort_keys=True, default=str).encode())

    def add_file(self, label: str, path: Path) -> None:
        """Hash an annotation file by content."""
        digest = sha256_file(path)
        self._sha.update(f"file\0{label}\0{digest}\n".encode())

    def add_image(self, name: str, stat: os.stat_result) -> None:
        """Hash an image by name, size and modification time."""
        self._sha.update(f"img\0{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())

    def add_text(self, label: str, text: str) -> None:
        self._sha.update(f"text\0{label}\0{text}\n".encode())

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def list_files(folder: Path) -> dict[str, os.stat_result]:
    """{name: stat} of the regular files directly in ``folder`` (one directory scan)."""
    found: dict[str, os.stat_result] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_file():
                found[entry.name] = entry.stat()
    return found


def _existing_meta(out: Path) -> dict | None:
    try:
        meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == "facegan-packed" else None


def already_prepared(out: Path, inputs_hash: str, force: bool, console=None) -> bool:
    """True (and says so) when ``out`` already holds this very dataset; checks ``out`` otherwise.

    Without ``force``, an ``out`` holding another dataset or anything else is an error naming
    ``--force`` (an empty folder is fine). A dataset folder holds one size: preparing another
    size there needs ``--force`` (it replaces the old one).
    """
    out = Path(out)
    meta = _existing_meta(out)
    if not force and meta is not None and meta.get("inputs_sha256") == inputs_hash:
        if console is not None:
            console.print(f"{out} is already prepared from the same inputs and settings "
                          f"({meta.get('source')}, {meta.get('size')}x{meta.get('size')}); "
                          "nothing to do (use --force to rebuild it)")
        return True
    if force or not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return False
    if meta is None:
        raise FaceganError(f"{out} already exists and is not a facegan dataset; choose another "
                           "--out (--force only replaces facegan datasets)")
    raise FaceganError(
        f"{out} already holds a {meta.get('source')} dataset at {meta.get('size')}x"
        f"{meta.get('size')} made from other inputs or settings; pass --force to replace it "
        "(a dataset folder holds one size: use another --out to keep both)"
    )


# --------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------


@dataclass
class BuildResult:
    """What :func:`build` made."""

    out: Path
    counts: dict[str, int]
    """Faces written per split."""
    problems: list[Problem] = field(default_factory=list)
    """Sources that gave no face (including the missing ones the preparer passed in)."""
    sources: int = 0
    seconds: float = 0.0
    workers: int = 1
    faces_per_source: dict[str, int] = field(default_factory=dict)
    """Faces kept from each source that gave any (several with ``--all-faces``)."""

    @property
    def images_per_second(self) -> float:
        return self.sources / self.seconds if self.seconds > 0 else 0.0


def _jobs(sources: dict[str, list[Source]], op: Operation) -> Iterator[ExtractJob]:
    batch = BATCH[op.kind]
    for split, items in sources.items():
        for start in range(0, len(items), batch):
            yield ExtractJob(split, op, items[start : start + batch])


def skipped_meta(problems: list[Problem]) -> dict:
    """meta.json's ``skipped``: counts and every skipped source with its reason, by kind."""
    listed: dict[str, list[list[str]]] = {}
    for p in problems:
        listed.setdefault(p.kind, []).append([p.name, p.reason])
    return {"count": len(problems), **{kind: rows for kind, rows in sorted(listed.items())}}


def build(
    out: Path,
    sources: dict[str, list[Source]],
    op: Operation,
    meta: dict,
    workers: int,
    force: bool = False,
    console=None,
    description: str = "preparing",
    problems: list[Problem] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> BuildResult:
    """Extract every source of every split (in order) with ``op`` and write the dataset at ``out``.

    ``sources`` maps split name to its sources (splits in SPLIT_ORDER first; an empty list
    makes an empty split). ``problems`` are skipped sources the caller already knows of
    (files listed but missing). ``meta`` gets ``skipped`` and ``timing`` and is written with
    the dataset. ``on_progress(done, total)`` runs after each batch.
    """
    started = time.perf_counter()
    problems = list(problems or [])
    order = sorted(sources, key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else 9, s))
    sources = {name: sources[name] for name in order}
    total = sum(len(v) for v in sources.values())
    if total == 0:
        raise FaceganError("no images to prepare")
    workers = max(1, min(workers, -(-total // BATCH[op.kind])))
    with PackedWriter(out, op.size, force=force or _is_empty_dir(out)) as writer:
        started_splits: list[str] = []

        def advance_to(name: str) -> None:
            while len(started_splits) <= order.index(name):
                writer.start_split(order[len(started_splits)])
                started_splits.append(order[len(started_splits)])

        per_source: dict[str, int] = {}
        with WorkerPool(workers, uses_torch=op.uses_torch) as pool, \
                _progress(console, description, total) as advance:
            done = 0
            for res in pool.imap(run_job, _jobs(sources, op)):
                advance_to(res.split)
                for face in res.faces:
                    writer.add(face.image, face.name, face.identity, face.landmarks)
                    source = face.name.split("#", 1)[0]
                    per_source[source] = per_source.get(source, 0) + 1
                problems.extend(res.problems)
                done += res.sources
                advance(done)
                if on_progress is not None:
                    on_progress(done, total)
        advance_to(order[-1])
        seconds = time.perf_counter() - started
        result = BuildResult(Path(out), writer.counts, problems, total, seconds, workers, per_source)
        if sum(result.counts.values()) == 0:
            raise FaceganError(f"none of the {total} images gave a face "
                               f"({_problem_counts(problems)}); nothing was written")
        per_photo = {"faces_per_photo": faces_histogram(per_source)} if op.all_faces else {}
        meta = {**meta, **per_photo, "skipped": skipped_meta(problems),
                "timing": {"seconds": round(seconds, 1), "workers": workers,
                           "images_per_second": round(result.images_per_second, 1)}}
        writer.finish(meta)
    result.seconds = time.perf_counter() - started
    return result


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


class _progress:
    """A rich progress bar (M/N, images/s, elapsed, ETA), or nothing without a console."""

    def __init__(self, console, description: str, total: int) -> None:
        self.console, self.description, self.total = console, description, total
        self._bar = None

    def __enter__(self) -> Callable[[int], None]:
        if self.console is None:
            return lambda done: None
        from rich.progress import (
            BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
        )
        from rich.text import Text

        class Speed(ProgressColumn):
            def render(self, task) -> Text:
                speed = task.finished_speed or task.speed
                return Text("-- img/s" if speed is None else f"{human_rate(speed)} img/s")

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             Speed(), TimeElapsedColumn(), TextColumn("ETA"),
                             TimeRemainingColumn(), console=self.console, transient=True)
        self._bar.__enter__()
        task = self._bar.add_task(self.description, total=self.total)
        return lambda done: self._bar.update(task, completed=done)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def _problem_counts(problems: list[Problem]) -> str:
    counts: dict[str, int] = {}
    for p in problems:
        counts[p.kind] = counts.get(p.kind, 0) + 1
    return ", ".join(f"{n:,} {PROBLEM_LABELS.get(k, k)}" for k, n in sorted(counts.items()))


def print_problems(console, problems: list[Problem]) -> None:
    """Count the skipped sources and list the first few (meta.json lists them all)."""
    if console is None or not problems:
        return
    console.print(f"[yellow]skipped {len(problems):,} image(s)[/]: {_problem_counts(problems)}")
    for p in problems[:SHOWN_PROBLEMS]:
        console.print(f"  {p.name}: {p.reason}", markup=False, highlight=False)
    if len(problems) > SHOWN_PROBLEMS:
        console.print(f"  ... and {len(problems) - SHOWN_PROBLEMS:,} more "
                      "(all listed in meta.json under 'skipped')")


def check_settings(size: int, workers: int | None) -> int:
    """Refuse a size below 16 px; the number of worker processes (None = every core)."""
    from facegan.data.pool import check_workers

    if size < 16:
        raise FaceganError(f"--size must be at least 16, got {size}")
    return check_workers(workers)


def inputs_hash_to_build(out: Path, size: int, inputs: InputsHash, force: bool, console=None) -> str | None:
    """The inputs hash with ``size`` folded in, or None when ``out`` already holds that dataset."""
    inputs.add_text("size", str(size))
    digest = inputs.hexdigest()
    return None if already_prepared(out, digest, force, console) else digest


def build_and_report(
    out: Path,
    sources: dict[str, list[Source]],
    op: Operation,
    meta: dict,
    workers: int,
    *,
    force: bool,
    console,
    description: str,
    label: Callable[[BuildResult], str],
    problems: list[Problem] | None = None,
    on_progress=None,
) -> BuildResult:
    """:func:`build`, then the skipped inputs and the summary table (``label`` names what was packed)."""
    result = build(out, sources, op, meta, workers, force=force, console=console,
                   description=description, problems=problems, on_progress=on_progress)
    print_problems(console, result.problems)
    if op.all_faces:
        print_faces_per_photo(console, result.faces_per_source)
    warn_empty_splits(console, result.counts)
    print_summary(console, out, f"wrote {out}: {label(result)} at {op.size}x{op.size} in "
                  f"{result.seconds:.1f} s ({human_rate(result.images_per_second)} images/s, "
                  f"{result.workers} worker(s))")
    return result


def faces_histogram(per_source: dict[str, int]) -> dict[str, int]:
    """{faces kept: photos that gave that many}, for meta.json and the report."""
    counts: dict[int, int] = {}
    for n in per_source.values():
        counts[n] = counts.get(n, 0) + 1
    return {str(k): counts[k] for k in sorted(counts)}


#: A photo that gives more faces than this is named in the report (a crowd, or detector noise).
MANY_FACES = 5


def print_faces_per_photo(console, per_source: dict[str, int]) -> None:
    """``--all-faces``: how many faces each photo gave, and the photos that gave many."""
    if console is None or not per_source:
        return
    histogram = ", ".join(f"{k} face{'s' if k != '1' else ''}: {v} photo{'s' if v > 1 else ''}"
                          for k, v in faces_histogram(per_source).items())
    console.print(f"faces kept per photo: {histogram}")
    many = sorted(((n, name) for name, n in per_source.items() if n > MANY_FACES), reverse=True)
    if many:
        listed = ", ".join(f"{name} ({n})" for n, name in many[:5]) + (" ..." if len(many) > 5 else "")
        console.print(f"[yellow]warning:[/] {len(many)} photo(s) gave more than {MANY_FACES} faces: {listed}; "
                      "check them (a crowd, or a detector fooled by texture)")


#: What an empty split means for the user.
EMPTY_SPLIT_EFFECT = {"train": "nothing to train on", "val": "training shows no validation samples or scores",
                      "test": "`facegan eval` has nothing to score (pass --split)"}


def warn_empty_splits(console, counts: dict[str, int]) -> None:
    """Say which standard splits came out empty, and what that means."""
    if console is None:
        return
    for name in SPLIT_ORDER:
        if counts.get(name, 0) == 0:
            console.print(f"[yellow]warning:[/] split '{name}' is empty: {EMPTY_SPLIT_EFFECT[name]} "
                          "(more photos or other --split fractions give it some)")


def print_summary(console, out: Path, headline: str) -> None:
    """``headline``, then a table of the dataset at ``out``: split, images, identities, size."""
    if console is None:
        return
    from rich.table import Table

    meta = json.loads((Path(out) / "meta.json").read_text(encoding="utf-8"))
    console.print(headline)
    table = Table()
    for col in ("split", "images", "identities", "size on disk"):
        table.add_column(col, justify="left" if col == "split" else "right")
    total_images, total_bytes = 0, 0
    for name, info in meta["splits"].items():
        nbytes = sum((Path(out) / f"{name}{ext}").stat().st_size for ext in (".npy", ".csv"))
        total_images, total_bytes = total_images + info["count"], total_bytes + nbytes
        ids = info.get("identities", 0)
        table.add_row(name, f"{info['count']:,}", f"{ids:,}" if ids else "-", human_bytes(nbytes))
    table.add_row("all", f"{total_images:,}", "", human_bytes(total_bytes), style="bold")
    console.print(table)


def human_rate(per_second: float) -> str:
    """A rate with the digits that matter: 1,356 / 12.5 / 0.47 (never a bare 0)."""
    if per_second >= 100:
        return f"{per_second:,.0f}"
    if per_second >= 1:
        return f"{per_second:.1f}"
    return f"{per_second:.2g}"


def human_bytes(n: int) -> str:
    """1536 -> '1.5 KiB'."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
