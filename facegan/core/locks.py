"""Who owns an output: OS-level locks, and the temp files of processes that are gone.

A training run folder and a dataset folder are written by one process at a time. The lock is
an ``flock`` on a small file beside what it guards: the operating system releases it when the
process ends, however it ends (``kill -9`` included), so a killed run never leaves a stale lock.
The lock file holds the owner's PID, for the message a second process gets, and is removed when
the lock is released normally (a killed process leaves the file, unlocked, to be reused).

Temp files and folders carry the PID of the process that writes them (``.last.pt.<pid>.<x>.tmp``,
``.<dataset>.tmp-<pid>``). A process that holds the lock removes those whose writer is no longer
alive: what a SIGKILL left behind, and nothing that anyone is still writing.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from facegan.core.errors import FaceganError


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (on this machine)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


@contextlib.contextmanager
def exclusive(lock_file: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (created if needed) while the block runs.

    Another process holding it makes this raise :class:`FaceganError` at once, naming
    ``what`` and the other process's PID. Where the OS has no ``flock`` the block runs unlocked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux or macOS
        yield
        return
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire(fcntl, lock_file, what)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_file)  # still locked: nobody can take a file that is being removed
        os.close(fd)  # releases the lock


def _acquire(fcntl, lock_file: Path, what: str) -> int:
    """Open and lock ``lock_file``; retried when the file was removed between the open and the
    lock (its owner released it), so that two processes never hold locks on different files."""
    for _ in range(100):
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise FaceganError(f"{what} is in use by another facegan process (pid {owner}); wait for it to finish, "
                               "or choose another output") from None
        try:
            if os.fstat(fd).st_ino == os.stat(lock_file).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)
    raise FaceganError(f"cannot lock {what}: {lock_file} keeps changing")


def remove_stale(folder: Path, pattern: str) -> list[Path]:
    """Remove the entries of ``folder`` whose names match ``pattern`` (a regular expression
    with a named group ``pid``) and whose writing process is gone; returns what was removed."""
    removed = []
    if not folder.is_dir():
        return removed
    rx = re.compile(pattern)
    for entry in folder.iterdir():
        m = rx.fullmatch(entry.name)
        if m is None or pid_alive(int(m.group("pid"))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed
