"""Streaming writes of a packed dataset: :class:`PackedWriter`.

For datasets too big to hold in memory (all of CelebA is 10 GB at 128 px): each split's
``.npy`` is written image by image into the hidden temp folder of
:mod:`facegan.data.packed` (its header count is filled in at the end) and the folder is
renamed into place by the same atomic ``finish`` as :func:`facegan.data.packed.write_packed`.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
from pathlib import Path

import numpy as np

from facegan.data.packed import (
    _HASH_CHUNK,
    CSV_HEADER,
    _check_destination,
    _csv_row,
    _finish,
    _full_meta,
    _make_tmp,
    _write_examples,
)


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
        self.csv.writerow(_csv_row(file, identity, landmarks))
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
            while chunk := fh.read(_HASH_CHUNK):
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
    dataset. ``out`` is checked when the writer opens (before any work) and again when it
    finishes; :meth:`finish` writes meta.json and renames the folder into place. Leaving the
    block without :meth:`finish` (an error, Ctrl-C) removes the temp folder and leaves
    ``out`` as it was. ``meta`` follows the rules of :func:`write_packed`.
    """

    def __init__(self, out: str | Path, size: int, force: bool = False) -> None:
        self.out = Path(out)
        self.size = int(size)
        self.force = force
        if self.size < 1:
            raise ValueError(f"PackedWriter: bad size {size}")
        _check_destination(self.out, force)
        self.tmp = _make_tmp(self.out)
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
        if not name or any(c in name for c in "/\\.") or name == "meta":
            raise ValueError(f"PackedWriter: bad split name {name!r}")
        if name in self._done or (self._current is not None and self._current.name == name):
            raise ValueError(f"PackedWriter: split {name!r} was already written")
        self._end_split()
        self._current = _SplitStream(self.tmp, name, self.size)

    def add(self, image: np.ndarray, file: str, identity: str, landmarks: np.ndarray) -> None:
        """Append one face (uint8 (S, S, 3)) with its file name, identity and landmarks."""
        if self._current is None:
            raise ValueError("PackedWriter.add before start_split")
        self._current.add(image, file, identity, landmarks)

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
        for key in ("source", "crop"):
            if key not in meta:
                raise ValueError(f"PackedWriter: meta lacks {key!r}")
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
        return self.out

    def abort(self) -> None:
        """Drop everything written so far (``out`` is left as it was)."""
        if self._current is not None:
            self._current.abandon()
            self._current = None
        shutil.rmtree(self.tmp, ignore_errors=True)
        self._closed = True
