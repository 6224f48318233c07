"""The `facegan` command: the app and its subcommands, listed explicitly.

Each subcommand lives in its own module under :mod:`facegan.commands`; those modules import
only typer at import time (torch and friends are imported inside the commands), so
`facegan --help` and `facegan --version` answer instantly.
"""

from __future__ import annotations

import sys

import typer
from typer.core import TyperGroup

from facegan import __version__
from facegan.commands import ablate, bench, evaluate, export, keys, models, prepare, restore, train

class FaceganGroup(TyperGroup):
    """The command group, reporting usage errors (a bad option value, an unknown option, a
    missing argument) as one ``error:`` line with exit code 2, like every other user error."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except typer.BadParameter.__mro__[1] as err:  # click's UsageError
            message = err.format_message().strip()
            if message:  # (none when a bare group printed its help)
                where = f" (see `{err.ctx.command_path} --help`)" if err.ctx is not None else ""
                print(f"error: {message}{where}", file=sys.stderr)
            code = 2
        except typer.Abort:
            print("interrupted", file=sys.stderr)
            code = 130
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


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
