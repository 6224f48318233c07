"""The `facegan` command: fast help, examples in every help text, end-to-end CLI use."""

from __future__ import annotations

import io
import subprocess
import sys

from typer.testing import CliRunner

from facegan import __version__
from facegan.cli import app

from helpers import REPO, TINY

runner = CliRunner()


def test_help_does_not_import_torch():
    code = "import sys, facegan.cli; print('torch' in sys.modules, 'pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_version_and_help():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"facegan {__version__}"
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("prepare", "train", "eval", "restore", "keys", "ablate", "bench"):
        assert cmd in res.output


def test_every_command_has_an_example():
    for args in (["prepare", "sample"], ["prepare", "celeba"], ["prepare", "celeba-hq"], ["prepare", "folder"],
                 ["train"], ["eval"], ["restore"], ["keys"], ["ablate"], ["bench", "prepare"]):
        res = runner.invoke(app, [*args, "--help"])
        assert res.exit_code == 0, args
        assert "Example" in res.output, args


def test_prepare_train_via_cli(tmp_path):
    data = tmp_path / "sample"
    res = runner.invoke(app, ["prepare", "sample", "--out", str(data), "--size", "64"])
    assert res.exit_code == 0, res.output
    again = runner.invoke(app, ["prepare", "sample", "--out", str(data), "--size", "64"])
    assert again.exit_code == 0 and "already prepared" in " ".join(again.output.split())
    bad = runner.invoke(app, ["prepare", "sample", "--out", str(tmp_path / "x"), "--size", "100"])
    assert bad.exit_code == 2 and "multiple of 16" in bad.output
    sets = [a for s in [*TINY, f"data.path={data}", "train.steps=2"] for a in ("--set", s)]
    run = tmp_path / "runs" / "cli"
    res = runner.invoke(app, ["train", str(REPO / "recipes" / "quickstart_inpaint.yaml"), *sets, "--out", str(run)])
    assert res.exit_code == 0, res.output
    assert (run / "checkpoints" / "last.pt").is_file()
    assert "name: cli" in (run / "recipe.yaml").read_text()
    res = runner.invoke(app, ["train", str(run), "--resume", "--set", "train.steps=3"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["train", str(run)])
    assert res.exit_code == 2 and "--resume" in res.output


def test_console_is_wide_when_output_is_not_a_terminal(monkeypatch):
    from facegan.commands.common import PIPE_WIDTH, console

    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # a file, as in a log or `| tee` (also under pytest -s)
    assert not console().is_terminal
    assert console().width == PIPE_WIDTH  # rich alone would give 80 and cut digits from the tables
    monkeypatch.setenv("COLUMNS", "100")
    assert console().width == 100  # an explicit width wins


def test_eval_table_keeps_every_digit_in_a_log(tiny_run, tmp_path, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    res = runner.invoke(app, ["eval", str(tiny_run), "--mask", "eyes", "--device", "cpu", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "…" not in res.output  # no cell or header cut short at 80 columns
