"""The one writer of packed datasets (:mod:`facegan.data.packed` is the format and reader).

:class:`PackedWriter` streams faces split by split and image by image into a hidden temp
folder beside the destination (each split's ``.npy`` header count is filled in when the split
ends, so memory does not grow with the dataset: all of CelebA is 10 GB at 128 px), then writes
``meta.json`` last and renames the folder into place, so the destination never holds half a
dataset. :func:`write_packed` writes splits held in memory through the same writer.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facegan import __version__
from facegan.core.errors import FaceganError
from facegan.core.locks import exclusive, remove_stale
from facegan.data.packed import CSV_HEADER, FORMAT, FORMAT_VERSION, HASH_CHUNK, is_packed_dir
from facegan.faces.geometry import TEMPLATE, TEMPLATE_NAME


@dataclass
class SplitArrays:
    """One split as a writer fills it."""

    images: np.ndarray
    """(N, S, S, 3) uint8 aligned faces (a memory map works too)."""
    files: list[str]
    """N source file names (relative paths), as shown to users."""
    identities: list[str]
    """N identity labels ("" where unknown)."""
    landmarks: np.ndarray
    """(N, 5, 2) float32 landmarks in output pixel-index coordinates."""

    def check(self, name: str) -> None:
        """Raise ValueError when the arrays disagree with each other."""
        n = len(self.images)
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[3] != 3:
            raise ValueError(f"split {name}: images must be uint8 (N, S, S, 3), got "
                             f"{self.images.dtype} {self.images.shape}")
        if self.images.shape[1] != self.images.shape[2]:
            raise ValueError(f"split {name}: images must be square, got {self.images.shape}")
        if len(self.files) != n or len(self.identities) != n:
            raise ValueError(f"split {name}: {n} images but {len(self.files)} files and "
                             f"{len(self.identities)} identities")
        if np.asarray(self.landmarks).shape != (n, 5, 2):
            raise ValueError(f"split {name}: landmarks must be ({n}, 5, 2), got "
                             f"{np.asarray(self.landmarks).shape}")


def _fsync_dir(path: Path) -> None:
    """Flush a directory entry to disk where the OS allows it (no-op elsewhere)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)



def csv_row(file: str, identity: str, landmarks: np.ndarray) -> list[str]:
    """One row of a split's table (landmarks with 3 decimals)."""
    return [file, identity] + [f"{v:.3f}" for v in np.asarray(landmarks, np.float64).reshape(10)]



def _check_destination(out: Path, force: bool) -> None:
    """Refuse an existing ``out`` without ``force``, and anything but a dataset even with it."""
    if out.exists():
        if not force:
            raise FaceganError(f"{out} already exists; pass --force to replace it")
        if not (is_packed_dir(out) or (out.is_dir() and not any(out.iterdir()))):
            raise FaceganError(
                f"{out} exists and is not a facegan dataset; refusing to replace it, "
                "choose another output path"
            )



def _make_tmp(out: Path) -> Path:
    """A fresh hidden temp folder beside ``out`` (named after this process)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp



def _full_meta(meta: dict, size: int) -> dict:
    """``meta`` with the fields every packed dataset carries (splits filled in later)."""
    full_meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "facegan_version": __version__,
        **{k: v for k, v in meta.items() if k not in ("format", "format_version")},
    }
    full_meta.setdefault("template", {"name": TEMPLATE_NAME, "points": TEMPLATE.tolist()})
    full_meta["size"] = size
    full_meta["splits"] = {}
    return full_meta



def _finish(tmp: Path, out: Path, full_meta: dict) -> None:
    """Write meta.json last (it is what makes a folder a dataset), then move ``tmp`` to ``out``."""
    full_meta["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    with open(tmp / "meta.json", "w", encoding="utf-8") as fh:
        json.dump(full_meta, fh, indent=2)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_dir(tmp)
    _move_into_place(tmp, out)



def _write_examples(folder: Path, images: dict[str, np.ndarray], n: int = 4) -> None:
    """examples/<split>_NNN.png: the first aligned faces of the test split, to look at or restore."""
    from PIL import Image

    name = "test" if "test" in images else list(images)[-1]
    (folder / "examples").mkdir()
    for i, img in enumerate(images[name][:n]):
        Image.fromarray(np.asarray(img)).save(folder / "examples" / f"{name}_{i:03d}.png")



def _move_into_place(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out``; an existing ``out`` is moved aside first, then deleted."""
    if not out.exists():
        os.rename(tmp, out)
        _fsync_dir(out.parent)
        return
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if old.exists():
        shutil.rmtree(old)
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    _fsync_dir(out.parent)
    shutil.rmtree(old, ignore_errors=True)




def _npy_header(shape: tuple[int, ...], length: int | None = None) -> bytes:
    """A version 1.0 .npy header for uint8 C-order ``shape``, space-padded to ``length`` bytes.

    Without ``length`` the header is padded to the next multiple of 64 (as numpy does).
    """
    text = repr({"descr": "|u1", "fortran_order": False, "shape": tuple(shape)})
    prefix = 10  # magic (6) + version (2) + header length (2)
    if length is None:
        length = -(-(prefix + len(text) + 1) // 64) * 64
    pad = length - prefix - len(text) - 1
    if pad < 0 or length % 64:
        raise ValueError(f"an .npy header for {shape} does not fit in {length} bytes")
    body = (text + " " * pad + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body


class _SplitStream:
    """One split being written: its .npy (header fixed at the end) and its CSV."""

    def __init__(self, folder: Path, name: str, size: int) -> None:
        self.name = name
        self.npy_path = folder / f"{name}.npy"
        self.shape = (size, size, 3)
        # Room for any count: the real header is written over this one at the end.
        self.header_len = len(_npy_header((10**15, *self.shape)))
        self.npy = open(self.npy_path, "wb")
        self.npy.write(b"\0" * self.header_len)
        self.csv_fh = open(folder / f"{name}.csv", "w", newline="", encoding="utf-8")
        self.csv = csv.writer(self.csv_fh)
        self.csv.writerow(CSV_HEADER)
        self.count = 0
        self.identities: set[str] = set()

    def add(self, image: np.ndarray, file: str, identity: str, landmarks: np.ndarray) -> None:
        if image.dtype != np.uint8 or image.shape != self.shape:
            raise ValueError(f"split {self.name}: image must be uint8 {self.shape}, got "
                             f"{image.dtype} {image.shape}")
        self.npy.write(np.ascontiguousarray(image).data)
        self.csv.writerow(csv_row(file, identity, landmarks))
        self.count += 1
        if identity:
            self.identities.add(identity)

    def close(self) -> dict:
        """Fix the header, flush both files to disk, and return the split's meta entry."""
        self.npy.seek(0)
        self.npy.write(_npy_header((self.count, *self.shape), self.header_len))
        for fh in (self.npy, self.csv_fh):
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        sha = hashlib.sha256()
        with open(self.npy_path, "rb") as fh:
            while chunk := fh.read(HASH_CHUNK):
                sha.update(chunk)
        return {"count": self.count, "identities": len(self.identities), "sha256": sha.hexdigest()}

    def abandon(self) -> None:
        for fh in (self.npy, self.csv_fh):
            fh.close()


class PackedWriter:
    """Write a packed dataset split by split and image by image, atomically.

    Use it as a context manager::

        with PackedWriter(out, size=128, force=False) as writer:
            writer.start_split("train")
            writer.add(image, "000001.jpg", "2880", landmarks)   # uint8 (S, S, 3), (5, 2)
            ...
            writer.start_split("val")
            ...
            writer.finish(meta)

    Images go straight to ``<split>.npy`` in a hidden temp folder beside ``out`` (the
    header's count is written when the split ends), so memory use does not grow with the
    dataset. The destination is locked while the writer is open (a second writer of the same
    ``out`` is refused at once), and temp folders that killed writers left beside it are
    removed. ``out`` is checked when the writer opens (before any work) and again when it
    finishes; :meth:`finish` writes meta.json and renames the folder into place. Leaving the
    block without :meth:`finish` (an error, Ctrl-C) removes the temp folder and leaves
    ``out`` as it was.

    ``meta`` must hold ``source`` and ``crop`` and should hold ``inputs_sha256``; anything
    else in it is kept. ``format``, ``format_version``, ``facegan_version``, ``size``,
    ``splits`` and ``created`` are filled in here; ``template`` defaults to facegan's. If
    ``out`` exists: without ``force`` a :class:`FaceganError` is raised; with ``force`` an
    existing packed dataset (or an empty folder) is replaced, anything else is refused. The
    replacement moves the old dataset aside, renames the new one in, then deletes the old one.
    """

    def __init__(self, out: str | Path, size: int, force: bool = False) -> None:
        self.out = Path(out)
        self.size = int(size)
        self.force = force
        if self.size < 1:
            raise ValueError(f"PackedWriter: bad size {size}")
        self._lock = contextlib.ExitStack()
        self._lock.enter_context(exclusive(self.out.parent / f".{self.out.name}.lock", f"dataset folder {self.out}"))
        try:
            _check_destination(self.out, force)
            remove_stale(self.out.parent, rf"\.{re.escape(self.out.name)}\.(tmp|old)-(?P<pid>\d+)")
            self.tmp = _make_tmp(self.out)
        except BaseException:
            self._lock.close()
            raise
        self._current: _SplitStream | None = None
        self._done: dict[str, dict] = {}
        self._closed = False

    def __enter__(self) -> "PackedWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._closed:
            self.abort()

    def start_split(self, name: str) -> None:
        """End the current split (if any) and start writing ``name``."""
        check_split_name(name, "PackedWriter")
        if name in self._done or (self._current is not None and self._current.name == name):
            raise ValueError(f"PackedWriter: split {name!r} was already written")
        self._end_split()
        self._current = _SplitStream(self.tmp, name, self.size)

    def add(self, image: np.ndarray, file: str, identity: str, landmarks: np.ndarray) -> None:
        """Append one face (uint8 (S, S, 3)) with its file name, identity and landmarks."""
        if self._current is None:
            raise ValueError("PackedWriter.add before start_split")
        self._current.add(image, file, identity, landmarks)

    def add_split(self, name: str, split: SplitArrays) -> None:
        """Write a whole split held in memory (or memory-mapped)."""
        self.start_split(name)
        for image, file, identity, lm in zip(split.images, split.files, split.identities, split.landmarks):
            self.add(np.asarray(image), file, identity, lm)

    @property
    def counts(self) -> dict[str, int]:
        """Images written so far, per split."""
        counts = {name: info["count"] for name, info in self._done.items()}
        if self._current is not None:
            counts[self._current.name] = self._current.count
        return counts

    def _end_split(self) -> None:
        if self._current is not None:
            self._done[self._current.name] = self._current.close()
            self._current = None

    def finish(self, meta: dict) -> Path:
        """Close the last split, write examples and meta.json, and move the dataset to ``out``."""
        check_meta(meta, "PackedWriter")
        self._end_split()
        if not self._done:
            raise ValueError("PackedWriter.finish needs at least one split")
        full_meta = _full_meta(meta, self.size)
        full_meta["splits"] = dict(self._done)
        images = {name: np.load(self.tmp / f"{name}.npy", mmap_mode="r") for name in self._done}
        _write_examples(self.tmp, images)
        del images
        _check_destination(self.out, self.force)  # the world may have changed meanwhile
        _finish(self.tmp, self.out, full_meta)
        self._closed = True
        self._lock.close()
        return self.out

    def abort(self) -> None:
        """Drop everything written so far (``out`` is left as it was)."""
        if self._current is not None:
            self._current.abandon()
            self._current = None
        shutil.rmtree(self.tmp, ignore_errors=True)
        self._closed = True
        self._lock.close()


def check_meta(meta: dict, who: str) -> None:
    """ValueError unless ``meta`` holds what every dataset's meta.json needs from its preparer."""
    for key in ("source", "crop"):
        if key not in meta:
            raise ValueError(f"{who}: meta lacks {key!r}")


def check_split_name(name: str, who: str) -> None:
    """ValueError for a split name that cannot be a file stem of the dataset."""
    if not name or any(c in name for c in "/\\.") or name == "meta":
        raise ValueError(f"{who}: bad split name {name!r}")


def write_packed(
    out: str | Path, splits: dict[str, SplitArrays], meta: dict, force: bool = False
) -> Path:
    """Write splits held in memory as a packed dataset at ``out`` (atomically); returns ``out``.

    Everything is checked before anything is written; the rules for ``meta``, ``force`` and
    an existing ``out`` are :class:`PackedWriter`'s. On any error ``out`` is left as it was.
    """
    out = Path(out)
    if not splits:
        raise ValueError("write_packed needs at least one split")
    check_meta(meta, "write_packed")
    sizes = set()
    for name, split in splits.items():
        check_split_name(name, "write_packed")
        split.check(name)
        sizes.add(split.images.shape[1])
    if len(sizes) != 1:
        raise ValueError(f"write_packed: splits have different image sizes {sorted(sizes)}")
    size = sizes.pop()
    if meta.get("size", size) != size:
        raise ValueError(f"write_packed: meta says size {meta['size']} but images are {size}")
    with PackedWriter(out, size, force=force) as writer:
        for name, split in splits.items():
            writer.add_split(name, split)
        return writer.finish(meta)
