"""The packed dataset: aligned faces decoded once, stored as plain arrays (DESIGN section 2).

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

Writing is atomic: everything is written into a hidden temp folder beside the destination
and renamed into place, so the destination never holds half a dataset. :func:`write_packed`
writes splits held in memory; :class:`PackedWriter` streams them image by image (for
datasets larger than memory, e.g. all of CelebA), with the same atomicity and ``--force``
rules.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facegan import __version__
from facegan.errors import FaceganError
from facegan.geometry import TEMPLATE, TEMPLATE_NAME

FORMAT = "facegan-packed"
FORMAT_VERSION = 1
SPLIT_ORDER = ("train", "val", "test")
CSV_HEADER = ["file", "identity"] + [f"lm{i}_{c}" for i in range(5) for c in ("x", "y")]
_REQUIRED_META = ("format", "format_version", "source", "size", "template", "splits")
_HASH_CHUNK = 16 * 1024 * 1024


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


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


class _HashingWriter:
    """A write-only file wrapper that feeds everything written into a sha256."""

    def __init__(self, fh) -> None:
        self.fh = fh
        self.sha = hashlib.sha256()

    def write(self, data) -> int:
        self.sha.update(data)
        return self.fh.write(data)


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


def _write_npy(path: Path, images: np.ndarray) -> str:
    """Write ``images`` as .npy (fsynced) and return the file's sha256."""
    with open(path, "wb") as fh:
        writer = _HashingWriter(fh)
        np.lib.format.write_array(writer, np.ascontiguousarray(images), allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    return writer.sha.hexdigest()


def _write_csv(path: Path, split: SplitArrays) -> None:
    """Write the per-image table: file, identity, 10 landmark coordinates (3 decimals)."""
    landmarks = np.asarray(split.landmarks, dtype=np.float64).reshape(-1, 10)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_HEADER)
        for file, identity, lm in zip(split.files, split.identities, landmarks):
            writer.writerow(_csv_row(file, identity, lm))
        fh.flush()
        os.fsync(fh.fileno())


def _csv_row(file: str, identity: str, landmarks: np.ndarray) -> list[str]:
    """One row of a split's table (landmarks with 3 decimals)."""
    return [file, identity] + [f"{v:.3f}" for v in np.asarray(landmarks, np.float64).reshape(10)]


def _is_packed_dir(path: Path) -> bool:
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


def write_packed(
    out: str | Path, splits: dict[str, SplitArrays], meta: dict, force: bool = False
) -> Path:
    """Write a packed dataset to ``out`` atomically and return its path.

    ``meta`` must hold ``source`` and ``crop`` and should hold ``inputs_sha256``; anything
    else in it is kept. ``format``, ``format_version``, ``facegan_version``, ``size``,
    ``splits`` and ``created`` are filled in here; ``template`` defaults to facegan's.

    If ``out`` exists: without ``force`` a :class:`FaceganError` is raised; with ``force`` an
    existing packed dataset (or an empty folder) is replaced, anything else is refused. The
    replacement moves the old dataset aside, renames the new one in, then deletes the old
    one. On any error the temp folder is removed and ``out`` is left as it was.
    """
    out = Path(out)
    if not splits:
        raise ValueError("write_packed needs at least one split")
    for key in ("source", "crop"):
        if key not in meta:
            raise ValueError(f"write_packed: meta lacks {key!r}")
    sizes = set()
    for name, split in splits.items():
        if not name or any(c in name for c in "/\\.") or name == "meta":
            raise ValueError(f"write_packed: bad split name {name!r}")
        split.check(name)
        sizes.add(split.images.shape[1])
    if len(sizes) != 1:
        raise ValueError(f"write_packed: splits have different image sizes {sorted(sizes)}")
    size = sizes.pop()
    if meta.get("size", size) != size:
        raise ValueError(f"write_packed: meta says size {meta['size']} but images are {size}")

    _check_destination(out, force)
    tmp = _make_tmp(out)
    try:
        full_meta = _full_meta(meta, size)
        for name, split in splits.items():
            digest = _write_npy(tmp / f"{name}.npy", split.images)
            _write_csv(tmp / f"{name}.csv", split)
            full_meta["splits"][name] = {
                "count": len(split.images),
                "identities": len({i for i in split.identities if i}),
                "sha256": digest,
            }
        _write_examples(tmp, {name: split.images for name, split in splits.items()})
        _finish(tmp, out, full_meta)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _check_destination(out: Path, force: bool) -> None:
    """Refuse an existing ``out`` without ``force``, and anything but a dataset even with it."""
    if out.exists():
        if not force:
            raise FaceganError(f"{out} already exists; pass --force to replace it")
        if not (_is_packed_dir(out) or (out.is_dir() and not any(out.iterdir()))):
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


# --------------------------------------------------------------------------------------------
# Streaming writes
# --------------------------------------------------------------------------------------------


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
            sha = hashlib.sha256()
            with open(npy, "rb") as fh:
                while chunk := fh.read(_HASH_CHUNK):
                    sha.update(chunk)
            expected = self.meta["splits"][name].get("sha256")
            if sha.hexdigest() != expected:
                raise FaceganError(
                    f"{npy} does not match the sha256 in meta.json (the file changed or is "
                    "damaged); prepare the dataset again with --force"
                )

    def __repr__(self) -> str:
        counts = ", ".join(f"{n}={self.meta['splits'][n]['count']}" for n in self.split_names)
        return f"PackedDataset({str(self.path)!r}, size={self.size}, {counts})"
