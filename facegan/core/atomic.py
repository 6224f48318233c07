"""Atomic file writes: a temp file beside the target, flushed to disk, then renamed over it.

A reader (or a crash) sees the old file or the new one, never half of one. The temp file is
``.<name>.<pid>.<random>.tmp`` (:data:`TEMP_PATTERN`), so files left by a killed writer can be
found and removed (:func:`facegan.core.locks.remove_stale`). The file gets the mode a plain
``open(path, "w")`` would give it: an existing file's own mode, else 0666 less the umask (the
temp file's private 0600 would otherwise leak into checkpoints, grids and restored photos).

Only the named output changes: a symbolic link is followed and its target replaced (the link
stays a link); a target that is not a regular file (``/dev/null``, a pipe such as ``/dev/stdout``
or a FIFO, a device) is written through, not replaced. A write that fails (a full disk, a
read-only folder) raises :class:`WriteError`, one line naming the path and the reason, and leaves
no temp file behind. :func:`check_writable` lets a command refuse an unwritable output before its
work starts.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from facegan.core.errors import FaceganError

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


class WriteError(FaceganError, OSError):
    """An output that could not be written: one line naming the path and the reason (a full
    disk says how much room the file needed). It is an ``OSError`` too, for callers that only
    lose time when a write fails (a cache). Exit code 1: the command stopped after its work
    began (outputs are refused before any work by :func:`check_writable`, exit code 2)."""

    exit_code = 1


def _reason(err: OSError) -> str:
    return (err.strerror or str(err)).lower() if isinstance(err, OSError) else str(err)


def _write_error(path: Path, err: OSError, written: int) -> WriteError:
    import errno

    reason = _reason(err)
    if getattr(err, "errno", None) == errno.ENOSPC:
        try:
            before = path.stat().st_size if path.is_file() else 0
        except OSError:
            before = 0
        needed = max(written, before)
        if needed:
            reason += f" (needed about {max(needed / 2**20, 0.1):.1f} MB at {path.parent})"
    return WriteError(f"cannot write {path}: {reason}")


def _target(path: Path) -> Path:
    """What writing ``path`` changes: the file a symbolic link points at, else ``path``."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _write_through(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write into an existing non-regular file (a device, a pipe) as it is: nothing to rename."""
    try:
        with open(path, "wb") as f:
            write(f)
            f.flush()
    except OSError as err:
        raise _write_error(path, err, 0) from None


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(f)`` on a temp file beside ``path``, fsync it, give it ``path``'s mode and
    rename it over ``path``; on any error the temp file is removed and ``path`` is untouched.
    (Symbolic links and non-regular targets: see the module docstring.)"""
    path = _target(Path(path))
    if path.exists() and not path.is_file():
        if path.is_dir():
            raise WriteError(f"cannot write {path}: it is a folder")
        _write_through(path, write)
        return
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, new_file_mode(path))
        os.replace(tmp, path)
    except BaseException as err:
        written = _size(tmp)
        if isinstance(err, RuntimeError) and _disk_full(path.parent):
            err = OSError(28, "No space left on device")
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and not isinstance(err, WriteError):
            raise _write_error(path, err, written) from None
        raise


def _disk_full(folder: Path) -> bool:
    """Whether the file system of ``folder`` has (next to) no room left (checked while the
    failed temp file still holds its share)."""
    import shutil

    try:
        return shutil.disk_usage(folder).free < 1 << 20
    except OSError:
        return False


def _size(tmp: str | None) -> int:
    try:
        return os.path.getsize(tmp) if tmp else 0
    except OSError:
        return 0


def check_writable(path: Path, what: str = "output") -> None:
    """FaceganError now, before any work, when ``path`` could not be written later: a folder
    where a file is wanted, or no permission in the nearest existing folder above it."""
    path = _target(Path(path))
    if path.is_dir():
        raise FaceganError(f"{what} {path} is a folder; pass a file name")
    if path.exists():
        if path.is_file() and not os.access(path.parent, os.W_OK):
            raise FaceganError(f"cannot write {what} {path}: its folder {path.parent} is not writable")
        if not path.is_file() and not os.access(path, os.W_OK):
            raise FaceganError(f"cannot write {what} {path}: permission denied")
        return
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise FaceganError(f"cannot write {what} {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise FaceganError(f"cannot write {what} {path}: {folder} is not writable")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_write`)."""
    atomic_write(path, lambda f: f.write(data))
