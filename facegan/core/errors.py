"""User-facing errors.

Anything a user can cause (a bad recipe, a folder that is not a dataset, an image that is not
an image, a checkpoint of the wrong task) raises :class:`FaceganError` with one clear line.
The CLI prints that line and exits with ``exit_code``; it never shows a traceback for these.
"""

from __future__ import annotations


class FaceganError(Exception):
    """An error caused by the user's input, reported as one line with a non-zero exit."""

    exit_code: int = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class NoFaceError(FaceganError):
    """No face was found where one was needed (exit code 3)."""

    exit_code = 3


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C, so every clean-up that runs for Ctrl-C
    (temp files removed, locks released) runs for it too; the command exits 143.

    Raised inside some library code (an extension module being imported), it can come out as
    another exception; :data:`SIGTERM_SEEN` remembers that the signal came, so the command still
    reports "terminated", not what that other exception says."""


#: Set by the SIGTERM handler (:mod:`facegan.cli`): the process was asked to stop.
SIGTERM_SEEN: list[bool] = []


#: Every exit code of every command, and what it means (README, ``--help``).
EXIT_CODES: dict[int, str] = {
    0: "done",
    1: "stopped or partly done (a training diverged or its disk filled up; some photos of a folder skipped)",
    2: "bad input or options, refused (no output was written)",
    3: "no face found in any photo",
    70: "internal error: a bug in facegan (FACEGAN_DEBUG=1 shows the traceback)",
    130: "interrupted (Ctrl-C)",
    143: "terminated (SIGTERM)",
}


def quote(value: object, limit: int = 80) -> str:
    """A user's value as an error message quotes it: its repr, cut to about ``limit`` characters
    (nested containers shown a few items and levels deep), so a huge value never makes a huge line."""
    import reprlib

    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxtuple, short.maxdict, short.maxset = 3, 4, 4, 4, 4
    short.maxstring = short.maxother = short.maxlong = max(12, limit - 8)
    text = short.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def not_found(path) -> str:
    """Why ``path`` cannot be opened, in words: "does not exist", or "is a symbolic link loop"."""
    import errno
    import os

    try:
        os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "is a symbolic link loop"
        if err.errno == errno.EACCES:
            return "cannot be reached (permission denied)"
    return "does not exist"
