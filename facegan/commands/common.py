"""What every command shares: one-line user errors, the rich console."""

from __future__ import annotations

import functools
import inspect
import os
import sys

import typer

#: Help of ``--mirror/--no-mirror`` on `eval` and `restore` (facegan.models.mirror).
MIRROR_HELP = ("Mirror self-ensemble: also run the generator on the mirrored face and average (twice the time; "
               "a little more PSNR, a little less identity for inpainting: docs/models.md) "
               "\\[default: the recipe's model.mirror_ensemble; off for the bundled models].")
#: --fidelity on restore, eval and export (facegan.checkpoints.fidelity).
FIDELITY_HELP = ("Fidelity F in 0..1: 1 = the PSNR model (faithful, smooth), 0 = the GAN model (sharp, some detail "
                 "invented); between, their weights blended (ESRGAN's network interpolation) "
                 "\\[default: the GAN model's measured default (its card); a model without a GAN partner runs as it is].")

#: Columns of the console when output goes to a file or a pipe (a log, ``| tee``) and COLUMNS is
#: unset: rich's default of 80 would cut digits out of the wide metric tables.
PIPE_WIDTH = 160


def reflow(doc: str) -> str:
    """A docstring as help text that the terminal wraps: the lines of each paragraph joined into
    one, so rich re-wraps them at any width instead of breaking them mid-sentence. Indented lines
    (examples) and list items keep their own lines; a paragraph that starts with ``\\b`` is kept
    as written."""
    paragraphs = []
    for para in inspect.cleandoc(doc or "").split("\n\n"):
        if para.startswith("\b"):
            paragraphs.append(para)
            continue
        lines: list[str] = []
        for line in para.split("\n"):
            starts_own_line = line[:1].isspace() or line.lstrip().startswith(("- ", "* "))
            if lines and not starts_own_line and not lines[-1][:1].isspace():
                lines[-1] += " " + line.strip()
            else:
                lines.append(line.rstrip())
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def reflowed(fn):
    """Decorator: the command's docstring (its help) passed through :func:`reflow`."""
    fn.__doc__ = reflow(fn.__doc__)
    return fn


def exit_codes_help() -> str:
    """The exit-code table every command's help ends with."""
    from facegan.core.errors import EXIT_CODES

    return "Exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items()) + "."


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
        from facegan.core.errors import SIGTERM_SEEN, FaceganError, Terminated

        try:
            return fn(*args, **kwargs)
        except FaceganError as err:
            if SIGTERM_SEEN:  # the signal surfaced as another error: it is what happened
                print("terminated", file=sys.stderr)
                raise typer.Exit(143) from None
            print(f"error: {err}", file=sys.stderr)
            raise typer.Exit(err.exit_code) from None
        except Terminated:
            print("terminated", file=sys.stderr)
            raise typer.Exit(143) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise typer.Exit(130) from None

    return wrapper
