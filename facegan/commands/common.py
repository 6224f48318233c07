"""What every command shares: one-line user errors, the rich console."""

from __future__ import annotations

import functools
import os
import sys

import typer


#: Help of ``--mirror/--no-mirror`` on `eval` and `restore` (facegan.models.mirror).
MIRROR_HELP = ("Mirror self-ensemble: also run the generator on the mirrored face and average (twice the time; "
               "+0.07 to +0.16 dB PSNR on the bundled models, a little less identity for inpainting: docs/models.md) "
               "\\[default: the recipe's model.mirror_ensemble; off for the bundled models].")

#: Columns of the console when output goes to a file or a pipe (a log, ``| tee``) and COLUMNS is
#: unset: rich's default of 80 would cut digits out of the wide metric tables.
PIPE_WIDTH = 160


def console(stderr: bool = False):
    """The rich console of a command; as wide as the terminal, or PIPE_WIDTH when not a terminal."""
    from rich.console import Console

    out = Console(stderr=stderr, highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = PIPE_WIDTH
    return out


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
