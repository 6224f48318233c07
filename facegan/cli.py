"""The `facegan` command: the app and its subcommands, listed explicitly.

Each subcommand lives in its own module under :mod:`facegan.commands`; those modules import
only typer at import time (torch and friends are imported inside the commands), so
`facegan --help` and `facegan --version` answer instantly.
"""

from __future__ import annotations

import os
import signal
import sys

import typer
from typer.core import TyperGroup

from facegan import __version__
from facegan.commands import ablate, bench, evaluate, export, keys, models, prepare, restore, train


class FaceganGroup(TyperGroup):
    """The command group: usage errors (a bad option value, an unknown option, a missing
    argument) are one ``error:`` line with exit code 2 like every other user error; SIGTERM is
    handled like Ctrl-C (clean-ups run) and exits 143; an unexpected exception (a bug) is one
    line and exit code 70, its traceback shown only with FACEGAN_DEBUG=1. Every command's help
    ends with the exit-code table (:data:`facegan.core.errors.EXIT_CODES`)."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        from facegan.core.errors import SIGTERM_SEEN

        _add_exit_codes(self)
        SIGTERM_SEEN.clear()  # (one process may run several commands: tests do)
        previous = _catch_sigterm()
        try:
            code = self._run(*args, **kwargs)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)

    def _run(self, *args, **kwargs) -> int:
        from facegan.core.errors import SIGTERM_SEEN, Terminated

        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
            return 143 if SIGTERM_SEEN else code
        except typer.BadParameter.__mro__[1] as err:  # click's UsageError
            message = err.format_message().strip()
            if message:  # (none when a bare group printed its help)
                where = f" (see `{err.ctx.command_path} --help`)" if err.ctx is not None else ""
                print(f"error: {message}{where}", file=sys.stderr)
            return 2
        except (typer.Abort, KeyboardInterrupt) as err:
            if SIGTERM_SEEN or isinstance(err, Terminated):
                print("terminated", file=sys.stderr)
                return 143
            print("interrupted", file=sys.stderr)
            return 130
        except Exception as err:  # a bug: one line, not a traceback (unless asked for)
            if SIGTERM_SEEN:
                print("terminated", file=sys.stderr)
                return 143
            if os.environ.get("FACEGAN_DEBUG"):
                raise
            text = str(err).strip().splitlines()
            print(f"error: internal error ({type(err).__name__}: {text[0][:200] if text else 'no message'}); "
                  "this is a bug in facegan: please report it with the command line "
                  "(FACEGAN_DEBUG=1 shows the traceback)", file=sys.stderr)
            return 70


def _raise_terminated(signum, frame) -> None:
    from facegan.core.errors import SIGTERM_SEEN, Terminated

    SIGTERM_SEEN.append(True)
    raise Terminated()


def _catch_sigterm():
    """SIGTERM raises :class:`facegan.core.errors.Terminated` in the main thread; the handler it
    replaces is returned (None when it cannot be set: not the main thread)."""
    try:
        return signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:
        return None


def _add_exit_codes(group) -> None:
    """Give every command under ``group`` (sub-groups included) the exit-code table as its epilog."""
    from facegan.commands.common import exit_codes_help

    for command in group.commands.values():
        if not command.epilog:
            command.epilog = exit_codes_help()
        if hasattr(command, "commands"):
            _add_exit_codes(command)


app = typer.Typer(
    cls=FaceganGroup,
    name="facegan",
    help="Identity-preserving GANs for faces: inpainting of occluded faces and super-resolution (x2, x4, x8).\n\n"
    "Quick start: facegan prepare sample && facegan train recipes/quickstart_inpaint.yaml",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"facegan {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """facegan: identity-preserving face inpainting and super-resolution GANs."""


app.add_typer(prepare.app, name="prepare")
app.add_typer(bench.app, name="bench")
app.command("train")(train.train)
app.command("eval", help=evaluate.HELP)(evaluate.eval_)
app.command("restore")(restore.restore)
app.command("keys")(keys.keys)
app.command("ablate")(ablate.ablate)
app.command("models")(models.models)
app.command("export")(export.export)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
