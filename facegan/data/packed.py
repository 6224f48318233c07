"""The packed dataset: aligned faces decoded once, stored as plain arrays (docs/design.md, "Packed datasets").

A packed dataset is a directory::

    meta.json      what it is: format, version, source, size, template, crop, splits, hashes
    train.npy      uint8 (N, S, S, 3) aligned faces, one file per split (memory-mapped on read)
    train.csv      file, identity, lm0_x, lm0_y, ..., lm4_x, lm4_y  (landmarks in the output
                   image's pixel-index coordinates, geometry.py order)
    val.npy / val.csv / test.npy / test.csv ...

``meta.json["splits"][name]["sha256"]`` is the sha256 of ``<name>.npy`` (checkable with
``sha256sum`` or :meth:`PackedDataset.verify`). ``meta.json["inputs_sha256"]`` is a hash of
the inputs the dataset was made from, chosen by the preparer, so re-running a preparation on
the same inputs can be a no-op (:func:`existing_inputs_hash`).

This module is the format and its reader (:class:`PackedDataset`); the one writer, which
streams faces into a hidden temp folder and renames it into place atomically, is
:mod:`facegan.data.packed_writer`.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facegan.core.errors import FaceganError
from facegan.core.hashing import sha256_file

FORMAT = "facegan-packed"
FORMAT_VERSION = 1
SPLIT_ORDER = ("train", "val", "test")
CSV_HEADER = ["file", "identity"] + [f"lm{i}_{c}" for i in range(5) for c in ("x", "y")]
_REQUIRED_META = ("format", "format_version", "source", "size", "template", "splits")
HASH_CHUNK = 16 * 1024 * 1024


# --------------------------------------------------------------------------------------------
# What is at a path
# --------------------------------------------------------------------------------------------


def is_packed_dir(path: Path) -> bool:
    """Whether ``path`` holds a meta.json that says it is a facegan packed dataset."""
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT



def existing_inputs_hash(out: str | Path) -> str | None:
    """The ``inputs_sha256`` of the packed dataset at ``out``, or None if there is none."""
    try:
        meta = json.loads((Path(out) / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        return None
    value = meta.get("inputs_sha256")
    return value if isinstance(value, str) else None



# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


@dataclass
class Split:
    """One split of a packed dataset, as a reader gets it."""

    name: str
    images: np.ndarray
    """(N, S, S, 3) uint8, memory-mapped read-only."""
    files: list[str]
    identities: list[str]
    landmarks: np.ndarray
    """(N, 5, 2) float32 in output pixel-index coordinates."""

    def __len__(self) -> int:
        return len(self.images)


class PackedDataset:
    """A packed dataset directory, validated on open.

    Opening checks ``meta.json`` and that each split's ``.npy`` has the shape and dtype that
    meta.json promises (cheap: only headers are read). Each split's CSV is parsed and checked
    on first :meth:`split` call. Hashes are checked only by :meth:`verify` (it reads
    everything).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.meta = self._read_meta()
        self.size: int = int(self.meta["size"])
        self.template: np.ndarray = self._read_template()
        splits = self.meta["splits"]
        self.split_names: list[str] = sorted(
            splits, key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else 99, s)
        )
        self._images = {name: self._open_npy(name) for name in self.split_names}
        self._splits: dict[str, Split] = {}

    # ---- validation helpers ----------------------------------------------------------------

    def _read_meta(self) -> dict:
        meta_path = self.path / "meta.json"
        if not meta_path.is_file():
            raise FaceganError(
                f"{self.path} is not a facegan dataset (no meta.json); create one with "
                "`facegan prepare sample` or `facegan prepare celeba`"
            )
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise FaceganError(f"{meta_path} is not valid JSON ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
            raise FaceganError(
                f"{self.path} is not a facegan dataset (meta.json format is {found!r}, "
                f"expected {FORMAT!r})"
            )
        if meta.get("format_version") != FORMAT_VERSION:
            raise FaceganError(
                f"{self.path} is packed format version {meta.get('format_version')!r}; this "
                f"facegan reads version {FORMAT_VERSION} (prepare it again with --force, or "
                "use a matching facegan)"
            )
        for key in _REQUIRED_META:
            if key not in meta:
                raise FaceganError(f"{meta_path} lacks {key!r}; prepare the dataset again")
        size = meta["size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise FaceganError(f"{meta_path} has a bad size {size!r}")
        splits = meta["splits"]
        if not isinstance(splits, dict) or not splits:
            raise FaceganError(f"{meta_path} lists no splits")
        for name, info in splits.items():
            count = info.get("count") if isinstance(info, dict) else None
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise FaceganError(f"{meta_path}: split {name!r} has no valid count")
        return meta

    def _read_template(self) -> np.ndarray:
        template = self.meta["template"]
        points = template.get("points") if isinstance(template, dict) else None
        try:
            arr = np.asarray(points, dtype=np.float64)
        except (TypeError, ValueError):
            arr = np.zeros(0)
        if arr.shape != (5, 2) or not np.all(np.isfinite(arr)):
            raise FaceganError(f"{self.path / 'meta.json'} has a bad template (need 5x2 points)")
        return arr

    def _open_npy(self, name: str) -> np.ndarray:
        npy = self.path / f"{name}.npy"
        if not npy.is_file():
            raise FaceganError(f"{npy} is missing (meta.json lists split {name!r})")
        try:
            images = np.load(npy, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise FaceganError(f"{npy} is not a valid .npy file ({reason})") from None
        count = self.meta["splits"][name]["count"]
        expected = (count, self.size, self.size, 3)
        if images.dtype != np.uint8 or images.shape != expected:
            raise FaceganError(
                f"{npy} holds {images.dtype} {tuple(images.shape)} but meta.json says "
                f"uint8 {expected}; prepare the dataset again with --force"
            )
        return images

    def _read_csv(self, name: str) -> Split:
        path = self.path / f"{name}.csv"
        count = self.meta["splits"][name]["count"]
        if not path.is_file():
            raise FaceganError(f"{path} is missing (meta.json lists split {name!r})")
        files: list[str] = []
        identities: list[str] = []
        landmarks = np.zeros((count, 10), dtype=np.float32)
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header != CSV_HEADER:
                raise FaceganError(
                    f"{path} has header {header}; expected {','.join(CSV_HEADER)}"
                )
            for row in reader:
                line = reader.line_num
                if len(row) != len(CSV_HEADER):
                    raise FaceganError(
                        f"{path} line {line}: {len(row)} columns, expected {len(CSV_HEADER)}"
                    )
                if len(files) >= count:
                    raise FaceganError(f"{path} has more rows than meta.json's count {count}")
                try:
                    landmarks[len(files)] = [float(v) for v in row[2:]]
                except ValueError:
                    raise FaceganError(f"{path} line {line}: a landmark is not a number") from None
                files.append(row[0])
                identities.append(row[1])
        if len(files) != count:
            raise FaceganError(f"{path} has {len(files)} rows but meta.json says {count}")
        return Split(name, self._images[name], files, identities, landmarks.reshape(-1, 5, 2))

    # ---- public API ------------------------------------------------------------------------

    def split(self, name: str) -> Split:
        """The split ``name`` (images memory-mapped; table parsed and checked once)."""
        if name not in self._images:
            raise FaceganError(
                f"split {name!r} not in {self.path}; it has {', '.join(self.split_names)}"
            )
        if name not in self._splits:
            self._splits[name] = self._read_csv(name)
        return self._splits[name]

    def verify(self) -> None:
        """Re-hash every split's .npy and compare with meta.json (reads the whole dataset)."""
        for name in self.split_names:
            npy = self.path / f"{name}.npy"
            expected = self.meta["splits"][name].get("sha256")
            if sha256_file(npy) != expected:
                raise FaceganError(
                    f"{npy} does not match the sha256 in meta.json (the file changed or is "
                    "damaged); prepare the dataset again with --force"
                )

    def __repr__(self) -> str:
        counts = ", ".join(f"{n}={self.meta['splits'][n]['count']}" for n in self.split_names)
        return f"PackedDataset({str(self.path)!r}, size={self.size}, {counts})"
