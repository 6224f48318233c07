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
