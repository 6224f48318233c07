"""Atomic file writes: a temp file beside the target, flushed to disk, then renamed over it.

A reader (or a crash) sees the old file or the new one, never half of one. The temp file is
``.<name>.<pid>.<random>.tmp`` (:data:`TEMP_PATTERN`), so files left by a killed writer can be
found and removed (:func:`facegan.locks.remove_stale`). The file gets the mode a plain
``open(path, "w")`` would give it: an existing file's own mode, else 0666 less the umask (the
temp file's private 0600 would otherwise leak into checkpoints, grids and restored photos).
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

#: Temp files of atomic writes: ``.<name>.<pid>.<random>.tmp``.
TEMP_PATTERN = r"\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.tmp"

_umask: int | None = None


def new_file_mode(path: Path) -> int:
    """The permission bits ``open(path, "w")`` would leave: the existing file's, else 0666 & ~umask."""
    global _umask
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        pass
    if _umask is None:  # read once: os.umask can only be read by setting it
        _umask = os.umask(0o022)
        os.umask(_umask)
    return 0o666 & ~_umask


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(f)`` on a temp file beside ``path``, fsync it, give it ``path``'s mode and
    rename it over ``path``; on any error the temp file is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, new_file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_write`)."""
    atomic_write(path, lambda f: f.write(data))
