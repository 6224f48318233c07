"""Reference rows that ``facegan eval`` has scored before, kept on disk and reused.

Beside the model, ``facegan eval`` scores the task's no-model references (inpainting: the
hole left grey and scikit-image's biharmonic fill; super-resolution: bicubic) by the same
code. Their scores depend on the evaluation faces and inputs, never on the checkpoint, yet on
a CPU they are a large part of an inpainting eval with the judge (the biharmonic fill, and the
judge's and the identity network's pass over each reference row; CHANGELOG.md has the
measurement). Scoring several checkpoints on the same faces, or a model again after training it
further, would compute the same numbers again.

:class:`ReferenceCache` keeps each evaluation batch's reference metrics in one file, named by
two digests:

* **the scorer** (:func:`scorer_digest`, the folder): every source file of the facegan
  package (any change to facegan's code starts a new cache), the versions of Python, torch,
  numpy, scikit-image and dlib, the device type, the identity network's weights and buffers,
  the judge's model files or weights, FID's Inception weights (``--fid-weights``: its rows then
  hold each image's Inception features), and the task's reference keys;
* **the batch** (:func:`batch_digest`, the file): every tensor of the batch (ground truth,
  the generator's inputs, the hole mask), dtype, shape and bytes. A different dataset, split,
  mask, seed, scale, size or batch boundary is a different file.

A hit therefore holds what the same code, weights and software computed for exactly that
batch. Each file is written atomically; an unreadable or incomplete one counts as a miss and
is replaced. Location: ``$FACEGAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/facegan``, else
``~/.cache/facegan``, under ``eval-references/``; the folder can be deleted at any time.
``facegan eval --rescore-references`` neither reads nor writes it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import sys
from dataclasses import fields, is_dataclass
from pathlib import Path

import numpy as np
import torch

from facegan.models.digest import hash_tensor, weights_digest

#: Folder under the cache root.
SUBDIR = "eval-references"


def cache_root() -> Path:
    """facegan's cache folder: ``$FACEGAN_CACHE_DIR``, ``$XDG_CACHE_HOME/facegan`` or
    ``~/.cache/facegan``."""
    if os.environ.get("FACEGAN_CACHE_DIR"):
        return Path(os.environ["FACEGAN_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "facegan"


@functools.lru_cache(maxsize=1)
def source_digest() -> str:
    """SHA-256 over every ``.py`` file of the installed facegan package (path and bytes)."""
    root = Path(__file__).resolve().parent.parent
    sha = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        sha.update(str(path.relative_to(root)).encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()


def _versions() -> str:
    """The versions of the software the reference rows' numbers come from."""
    import skimage

    try:
        import dlib

        dlib_version = dlib.__version__
    except ImportError:
        dlib_version = "none"
    try:
        import cv2

        opencv_version = cv2.__version__
    except ImportError:
        opencv_version = "none"
    return (f"python {platform.python_version()} {sys.platform} {platform.machine()}; torch {torch.__version__}; "
            f"numpy {np.__version__}; scikit-image {skimage.__version__}; dlib {dlib_version}; opencv {opencv_version}")


def scorer_digest(task_name: str, reference_keys: tuple[str, ...], device: torch.device | str,
                  id_net: torch.nn.Module, judge=None, peers=None, fid=None) -> str:
    """Digest of everything besides the batch that the reference rows' metrics depend on (with
    the files of the opt-in peers in ``peers``, a :class:`facegan.tasks.base.PeerModels`, and
    FID's Inception network ``fid``, whose features the rows then hold)."""
    parts = [
        *_peer_files(peers),
        f"task {task_name}; references {','.join(reference_keys)}",
        f"device {torch.device(device).type}",
        f"source {source_digest()}",
        _versions(),
        f"identity {getattr(id_net, 'name', type(id_net).__name__)} {weights_digest([id_net], buffers=True)}",
        f"judge {judge.name} {judge.fingerprint()}" if judge is not None else "judge none",
    ]
    if fid is not None:  # no line without it: the digests of evaluations without FID stay as they were
        parts.append(f"fid {weights_digest([fid], buffers=True)}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def _peer_files(peers) -> list[str]:
    """One line per opt-in peer asked for: its files' hashes and the ncnn version running them."""
    from facegan.core.hashing import sha256_file

    lines = [f"peer {key} " + " ".join(f"{p.name}:{sha256_file(p)}" for p in files)
             for key, files in (peers.files() if peers is not None else {}).items()]
    if lines:
        import ncnn

        lines.append(f"ncnn {getattr(ncnn, '__version__', '?')}")
    return lines


def batch_digest(batch) -> str:
    """Digest of every tensor of an evaluation batch (a task's batch dataclass): field name,
    dtype, shape and bytes."""
    sha = hashlib.sha256()
    tensors: list[tuple[str, torch.Tensor]] = []
    for f in fields(batch) if is_dataclass(batch) else ():
        value = getattr(batch, f.name)
        items = value if isinstance(value, (tuple, list)) else (value,)
        tensors += [(f"{f.name}[{i}]", t) for i, t in enumerate(items) if isinstance(t, torch.Tensor)]
    if not tensors:
        raise ValueError(f"{type(batch).__name__} holds no tensors to key a reference cache by")
    for name, t in tensors:
        hash_tensor(sha, f"{name} {t.dtype} {tuple(t.shape)}", t)
    return sha.hexdigest()[:40]


class ReferenceCache:
    """Per-batch reference metrics ``{reference key: {metric: (B,) float64}}`` under one scorer."""

    def __init__(self, scorer: str) -> None:
        self.folder = cache_root() / SUBDIR / scorer
        self.hits = 0
        self.misses = 0
        self.write_error: str | None = None

    def file_for(self, batch) -> Path:
        """The file that holds (or will hold) ``batch``'s reference metrics."""
        return self.folder / f"{batch_digest(batch)}.npz"

    def get(self, path: Path, reference_keys: tuple[str, ...], n: int) -> dict[str, dict[str, np.ndarray]] | None:
        """The reference metrics stored at ``path`` (:meth:`file_for`) for ``n`` images, or None
        (not cached, unreadable, or incomplete)."""
        rows = _read(path, reference_keys, n)
        if rows is None:
            self.misses += 1
        else:
            self.hits += 1
        return rows

    def put(self, path: Path, rows: dict[str, dict[str, np.ndarray]]) -> None:
        """Store reference metrics at ``path`` (:meth:`file_for`), atomically. A folder that cannot
        be written is reported once through :attr:`write_error`, never raised: the cache only saves time."""
        from facegan.core.atomic import atomic_write

        arrays = {f"{ref}/{metric}": np.asarray(v, dtype=np.float64)
                  for ref, metrics in rows.items() for metric, v in metrics.items()}
        try:
            atomic_write(path, lambda f: np.savez(f, **arrays))
        except OSError as err:
            self.write_error = self.write_error or f"{self.folder}: {err.strerror or err}"


def _read(path: Path, reference_keys: tuple[str, ...], n: int) -> dict[str, dict[str, np.ndarray]] | None:
    """The rows stored at ``path`` if every reference is there with ``n`` values (or rows) per metric."""
    import zipfile

    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            rows: dict[str, dict[str, np.ndarray]] = {}
            for name in stored.files:
                ref, _, metric = name.partition("/")
                rows.setdefault(ref, {})[metric] = np.array(stored[name], dtype=np.float64)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    if set(rows) != set(reference_keys):
        return None
    if any(v.shape[:1] != (n,) for metrics in rows.values() for v in metrics.values()):  # descriptors: (n, 128)
        return None
    return rows
