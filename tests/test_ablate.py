"""`facegan ablate`: spec files and their errors, the paired summary, and a --quick study end
to end on the sample faces (train, resume/skip, evaluate with the judge, table and files)."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from facegan.cli import app
from facegan.core.errors import FaceganError
from facegan.study.result import RunScores
from facegan.study.run import summarize
from facegan.study.spec import load_study, run_overrides, run_recipe

from helpers import REPO, TINY

runner = CliRunner()
SPECS = sorted((REPO / "recipes").glob("ablate_*.yaml"))
HAS_DLIB = all(importlib.util.find_spec(m) is not None for m in ("dlib", "face_recognition_models"))
WIDE = {"COLUMNS": "250"}


def test_both_studies_ship():
    assert {p.stem for p in SPECS} >= {"ablate_inpaint", "ablate_sr"}


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_every_shipped_spec_loads(path: Path):
    raw_base = path.read_text().split("base:", 1)[1].split()[0]
    if not (path.parent / raw_base).is_file():
        pytest.skip(f"{path.name}: its base recipe {raw_base} is not in this checkout yet")
    study = load_study(path)
    assert study.spec.baseline == study.spec.variants[0].name
    for quick in (False, True):
        recipes = [run_recipe(study, v.name, 0, quick) for v in study.spec.variants]
        assert len({r.name for r in recipes}) == len(recipes)
        assert recipes[0].loss.identity == 0  # the baseline row has no identity loss
        assert all(r.loss.identity > 0 for r in recipes[1:])
    quick = run_recipe(study, study.spec.baseline, 2, quick=True)
    assert quick.train.seed == 2 and quick.data.path == "data/sample" and quick.train.steps <= 100


def test_source_tables():
    inpaint = load_study(REPO / "recipes" / "ablate_inpaint.yaml")
    assert [(v.name, v.set) for v in inpaint.spec.variants] == [
        ("baseline", ["loss.identity=0"]), ("identity", ["loss.identity=0.1"])]
    assert inpaint.base == REPO / "recipes" / "inpaint_identity.yaml"
    assert (inpaint.spec.eval.mask, inpaint.spec.eval.judge) == ("center", "dlib")
    sr_text = (REPO / "recipes" / "ablate_sr.yaml").read_text()
    for row in ("[loss.identity=0]", "[loss.content=0.006, loss.identity=0.006]", "[loss.content=0.005, loss.identity=0.6]"):
        assert row in sr_text


def _spec(tmp_path: Path, body: str) -> Path:
    (tmp_path / "base.yaml").write_text("task: inpaint\ntrain: {steps: 5}\n")
    path = tmp_path / "study.yaml"
    path.write_text("base: base.yaml\n" + body)
    return path


@pytest.mark.parametrize(
    "body, expected",
    [
        ("variants: [{name: a}, {name: b, sett: []}]\n", "variants.1.sett: unknown key (expected one of: name, set, description)"),
        ("variants: [{name: a}, {name: a}]\n", "variant names must be unique, a repeats"),
        ("variants: [{name: a}, {name: b}]\nbaseline: c\n", "baseline 'c' is not a variant (a, b)"),
        ("variants: [{name: a}]\n", "variants: List should have at least 2 items"),
        ("variants: [{name: a}, {name: 'b/c'}]\n", "variants.1.name: must be a folder name"),
        ("variants: [{name: a, set: [loss.identity]}, {name: b}]\n", "variants.0.set: expected KEY=VALUE overrides"),
        ("variants: [{name: a}, {name: b}]\nseeds: 0\n", "seeds: Input should be greater than or equal to 1"),
        ("variants: [{name: a}, {name: b}]\neval: {judge: dlib, mask: eyes, holes: 3}\n", "eval.holes: unknown key"),
    ],
)
def test_spec_errors_name_the_yaml_path(tmp_path: Path, body: str, expected: str):
    with pytest.raises(FaceganError) as err:
        load_study(_spec(tmp_path, body))
    assert expected in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith(str(tmp_path / "study.yaml"))


def test_variant_overrides_and_their_errors(tmp_path: Path):
    study = load_study(_spec(tmp_path, "variants: [{name: a, set: [loss.identity=0]}, {name: b, set: [loss.idnetity=1]}]\n"
                                       "quick: {set: [train.steps=2]}\n"))
    sets = run_overrides(study, "a", 3, quick=True, extra=["train.steps=4"])
    assert sets == ["loss.identity=0", "train.steps=2", "train.steps=4", "train.seed=3", "name=study-a-seed3"]
    recipe = run_recipe(study, "a", 3, quick=True, extra=["train.steps=4"])
    assert (recipe.loss.identity, recipe.train.steps, recipe.train.seed) == (0, 4, 3)
    with pytest.raises(FaceganError, match="variant 'b': .*loss.idnetity: unknown key"):
        run_recipe(study, "b", 0)
    missing = tmp_path / "other.yaml"
    missing.write_text("base: nowhere.yaml\nvariants: [{name: a}, {name: b}]\n")
    with pytest.raises(FaceganError, match="base: recipe nowhere.yaml not found"):
        load_study(missing)


def test_summary_pairs_images_and_averages_seeds(tmp_path: Path):
    """Synthetic per-image scores: the variant is +0.5 on every image (seed noise cancels in
    the seed average), so the paired difference is 0.5 with a tight CI."""
    study = load_study(_spec(tmp_path, "variants: [{name: base}, {name: better}]\n"))
    rng = np.random.default_rng(0)
    files = [f"img{i}.png" for i in range(50)]
    level = 20 + 4 * rng.standard_normal(50)
    noise = 0.2 * rng.standard_normal(50)

    def run(variant: str, seed: int, values: np.ndarray) -> RunScores:
        return RunScores(variant, seed, tmp_path / variant / f"seed{seed}", 10, files, {"psnr": values}, tmp_path / "x.csv")

    runs = {"base": [run("base", 0, level + noise), run("base", 1, level - noise)],
            "better": [run("better", 0, level + 0.5 - noise), run("better", 1, level + 0.5 + noise)]}
    variants, common = summarize(study, runs, n_resamples=2000)
    assert common == ["psnr"]
    base, better = (v.metrics["psnr"] for v in variants)
    assert base.diff is None and better.diff is not None
    assert better.diff.diff == pytest.approx(0.5) and better.diff.hi - better.diff.lo < 1e-9
    assert better.diff.p < 0.001 and better.diff.n == 50
    assert better.estimate.mean == pytest.approx(level.mean() + 0.5)
    assert better.seeds.n == 2 and better.seeds.mean == pytest.approx(level.mean() + 0.5)
    runs["better"][1].files = files[::-1]
    with pytest.raises(FaceganError, match="scored on different images"):
        summarize(study, runs, n_resamples=100)


def _quick_args(sample_data: Path, out: Path, *extra: str) -> list[str]:
    """The shipped inpainting study with --quick, shrunk further to 2 steps on the 64 px sample."""
    tiny = [s for s in TINY if not s.startswith(("loss.identity=", "loss.identity_net", "train."))]
    tiny += ["train.batch=4", "train.steps=2", "train.log_every=1", "train.sample_every=2", "train.checkpoint_every=2"]
    sets = [a for s in [*tiny, f"data.path={sample_data}"] for a in ("--set", s)]
    return ["ablate", str(REPO / "recipes" / "ablate_inpaint.yaml"), "--quick", *sets, "--out", str(out), *extra]


def test_judge_that_a_variant_trains_with_is_refused(sample_data: Path, tmp_path: Path):
    result = runner.invoke(app, _quick_args(sample_data, tmp_path / "s", "--judge-net", "mobilefacenet"))
    assert result.exit_code == 2, result.output
    assert "some variants train with" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "s").exists()  # refused before any training


@pytest.mark.slow
@pytest.mark.skipif(not HAS_DLIB, reason="the dlib judge needs pip install 'facegan[judge]'")
def test_quick_study_end_to_end(sample_data: Path, tmp_path: Path, monkeypatch):
    out = tmp_path / "study"
    first = runner.invoke(app, _quick_args(sample_data, out), env=WIDE)
    assert first.exit_code == 0, first.output
    for column in ("PSNR (dB)", "SSIM", "detail", "LMD (px)", "identity cos (mobilefacenet)", "judge cos (dlib)",
                   "verified by dlib", "Δ vs baseline", "p=", "±"):
        assert column in first.output, column
    assert "judge dlib (never used in training)" in first.output
    for name in ("results.md", "results.csv", "results.png"):
        assert (out / name).is_file()
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "results.md").read_text()
    assert ("| Variant | PSNR (dB) | SSIM | detail | LMD (px) | identity cos (mobilefacenet) | judge cos (dlib) "
            "| verified by dlib |") in md
    assert "| identity | " in md and "p=" in md
    with open(out / "results.csv", newline="") as f:
        rows = {(r["variant"], r["metric"]): r for r in csv.DictReader(f)}
    for variant in ("baseline", "identity"):
        for metric in ("psnr", "ssim", "detail", "lmd", "id_cos", "judge_cos", "judge_verified", "hole_l1"):
            row = rows[(variant, metric)]
            assert row["mean"] and row["ci95_lo"] and row["n_images"] == "6", (variant, metric)
            assert (row["diff"] == "") == (variant == "baseline")
    assert rows[("identity", "judge_cos")]["scored_by"] == "dlib"
    assert float(rows[("identity", "psnr")]["p_sign_flip"]) > 0
    ckpt = out / "identity" / "seed0" / "checkpoints" / "last.pt"
    stamp = ckpt.stat().st_mtime_ns

    # a second call trains and scores nothing again, and prints the same table
    again = runner.invoke(app, _quick_args(sample_data, out), env=WIDE)
    assert again.exit_code == 0, again.output
    assert again.output.count("not trained again") == 2 and again.output.count("not evaluated again") == 2
    assert ckpt.stat().st_mtime_ns == stamp
    assert (out / "results.md").read_text() == md

    # without dlib the judge columns say why instead of crashing
    monkeypatch.setitem(sys.modules, "dlib", None)
    missing = runner.invoke(app, _quick_args(sample_data, out), env=WIDE)
    assert missing.exit_code == 0, missing.output
    assert "note: judge dlib unavailable" in missing.output and "pip install 'facegan[judge]'" in missing.output
    assert "n/a" in missing.output
    assert "Traceback" not in missing.output


def test_help_and_dry_run(tmp_path: Path):
    shown = runner.invoke(app, ["ablate", "--help"], env=WIDE)
    assert shown.exit_code == 0 and "Example" in shown.output and "--quick" in shown.output
    plan = runner.invoke(app, ["ablate", str(REPO / "recipes" / "ablate_inpaint.yaml"), "--quick", "--seeds", "2",
                               "--out", str(tmp_path / "s"), "--dry-run"], env=WIDE)
    assert plan.exit_code == 0, plan.output
    for variant in ("baseline", "identity"):
        for seed in (0, 1):
            assert f"{variant} seed {seed} -> {tmp_path / 's' / variant / f'seed{seed}'}" in plan.output
    assert not (tmp_path / "s").exists()
