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
