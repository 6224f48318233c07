"""Recipes: every shipped file validates; errors name the YAML path; --set and --dry-run."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from facegan.cli import app
from facegan.errors import FaceganError
from facegan.recipe import apply_overrides, describe_keys, load_recipe, recipe_to_yaml, validate_recipe

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))
runner = CliRunner()


def test_recipes_folder_is_not_empty():
    names = {p.stem for p in RECIPES}
    assert {"quickstart_inpaint", "inpaint_baseline", "inpaint_identity"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_every_shipped_recipe_loads(path):
    recipe = load_recipe(path)
    assert recipe.name == path.stem
    # the resolved YAML round-trips to the same recipe
    import yaml

    again = validate_recipe(yaml.safe_load(recipe_to_yaml(recipe)))
    assert again == recipe


def test_source_design_values():
    r = load_recipe(RECIPES[0].parent / "inpaint_identity.yaml")
    assert (r.loss.reconstruction, r.loss.adversarial, r.loss.identity) == (0.8, 0.1, 0.1)
    assert (r.train.lr_g, r.train.lr_d, r.train.batch, r.train.epochs, r.data.size) == (2e-4, 5e-5, 64, 25, 128)
    assert load_recipe(RECIPES[0].parent / "inpaint_baseline.yaml").loss.identity == 0


def _write(tmp_path, text):
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text, expected",
    [
        ("task: inpaint\nloss:\n  identty: 0.1\ntrain: {steps: 5}\n", "loss.identty: unknown key (expected one of: reconstruction"),
        ("task: inpaint\ntrain: {batch: many, steps: 5}\n", "train.batch: Input should be a valid integer"),
        ("task: inpaint\ntrain: {steps: 5, epochs: 2}\n", "exactly one of train.steps or train.epochs"),
        ("task: paint\ntrain: {steps: 5}\n", "task: Input should be 'inpaint'"),
        ("train: {steps: 5}\n", "task: required key is missing"),
        ("task: inpaint\ndata: {size: 100}\ntrain: {steps: 5}\n", "data.size: must be a multiple of 16"),
        ("task: inpaint\ndata: {masks: [eyes, nose]}\ntrain: {steps: 5}\n", "data.masks: unknown mask type(s) ['nose']"),
        ("- just\n- a list\n", "a recipe is a YAML mapping"),
        ("task: inpaint\ndata: [1, 2\n", "not valid YAML (line"),
    ],
)
def test_errors_name_the_yaml_path(tmp_path, text, expected):
    with pytest.raises(FaceganError) as err:
        load_recipe(_write(tmp_path, text))
    msg = str(err.value)
    assert expected in msg
    assert "\n" not in msg


def test_overrides_are_parsed_as_yaml_and_validated(tmp_path):
    p = _write(tmp_path, "task: inpaint\ntrain: {epochs: 3}\n")
    r = load_recipe(p, ["loss.identity=0", "train.steps=50", "train.amp=true", "data.masks=[center,eyes]", "train.betas=[0.0,0.99]"])
    assert r.loss.identity == 0 and r.train.steps == 50 and r.train.epochs is None
    assert r.train.amp is True and r.data.masks == ["center", "eyes"] and r.train.betas == (0.0, 0.99)
    with pytest.raises(FaceganError, match="loss.nope: unknown key"):
        load_recipe(p, ["loss.nope=1"])
    with pytest.raises(FaceganError, match="expected KEY=VALUE"):
        apply_overrides({}, ["loss.identity"])


def test_dry_run_prints_resolved_recipe_and_exit_codes(tmp_path):
    ok = runner.invoke(app, ["train", str(RECIPES[0].parent / "quickstart_inpaint.yaml"), "--set", "train.steps=7", "--dry-run"])
    assert ok.exit_code == 0, ok.output
    assert "steps: 7" in ok.output and "identity_net: mobilefacenet" in ok.output
    bad = runner.invoke(app, ["train", str(RECIPES[0].parent / "quickstart_inpaint.yaml"), "--set", "train.batch=x", "--dry-run"])
    assert bad.exit_code == 2
    assert "train.batch" in bad.output and "Traceback" not in bad.output
    missing = runner.invoke(app, ["train", str(tmp_path / "none.yaml"), "--dry-run"])
    assert missing.exit_code == 2 and "not found" in missing.output


def test_keys_lists_documented_fields():
    rows = {k: (d, doc) for k, d, doc in describe_keys()}
    assert "loss.identity" in rows and "train.amp" in rows and "data.path" in rows
    assert all(doc for _, doc in rows.values()), [k for k, (_, doc) in rows.items() if not doc]
    out = runner.invoke(app, ["keys", "loss"])
    assert out.exit_code == 0 and "identity_net" in out.output
