"""What every command shares: one-line user errors, the rich console."""

from __future__ import annotations

import functools
import sys

import typer


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def user_errors(fn):
    """Report FaceganError as one line on stderr with its exit code; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from facegan.errors import FaceganError

        try:
            return fn(*args, **kwargs)
        except FaceganError as err:
            print(f"error: {err}", file=sys.stderr)
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise typer.Exit(130) from None

    return wrapper
