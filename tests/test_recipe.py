"""Recipes: every shipped file validates; errors name the YAML path; --set and --dry-run; both tasks."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from facegan.cli import app
from facegan.core.errors import FaceganError
from facegan.tasks.inpaint import InpaintRecipe
from facegan.tasks.recipes import (
    apply_overrides, describe_keys, describe_keys_by_task, load_recipe, recipe_to_yaml, validate_recipe,
)
from facegan.tasks.sr import SRRecipe

RECIPES = sorted(p for p in (Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml") if not p.name.startswith("ablate_"))  # ablate_*: specs (test_ablate.py)
runner = CliRunner()


def test_recipes_folder_is_not_empty():
    names = {p.stem for p in RECIPES}
    assert {"quickstart_inpaint", "inpaint_baseline", "inpaint_identity"} <= names
    assert {"quickstart_sr", "sr_baseline", "sr_identity", "sr_identity_strong"} <= names


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


@pytest.mark.parametrize(
    "name, content, identity",
    [("sr_baseline", 0.006, 0.0), ("sr_identity", 0.006, 0.006), ("sr_identity_strong", 0.005, 0.6)],
)
def test_sr_source_design_values(name, content, identity):
    r = load_recipe(RECIPES[0].parent / f"{name}.yaml")
    assert isinstance(r, SRRecipe) and r.task == "sr"
    assert (r.model.scale, r.data.size, r.model.num_blocks) == (8, 128, 5)
    assert (r.loss.content, r.loss.identity, r.loss.adversarial, r.loss.tv) == (content, identity, 0.001, 2e-8)
    assert (r.loss.pixel, r.loss.pixel_type, r.loss.content_layer) == (1.0, "mse", "conv5_4")
    assert (r.train.lr_g, r.train.lr_d, r.train.batch) == (1e-4, 1e-4, 32)
    assert r.train.warmup_steps > 0  # the fix for the source's collapsed discriminator


def test_sr_quickstart_needs_no_download():
    r = load_recipe(RECIPES[0].parent / "quickstart_sr.yaml")
    assert r.loss.content == 0 and (r.loss.identity == 0 or r.loss.identity_net == "mobilefacenet")
    assert r.data.path == "data/sample" and r.data.size == 128


def test_task_picks_the_schema():
    sr = validate_recipe({"task": "sr", "train": {"steps": 5}})
    inpaint = validate_recipe({"task": "inpaint", "train": {"steps": 5}})
    assert isinstance(sr, SRRecipe) and isinstance(inpaint, InpaintRecipe)
    assert sr.model.generator == "srresnet" and inpaint.model.generator == "context_encoder"
    assert sr.loss.adversarial == 0.001 and inpaint.loss.adversarial == 0.1
    assert not hasattr(sr.data, "masks") and not hasattr(inpaint.data, "degradation")
    assert not hasattr(sr.eval, "mask") and inpaint.eval.mask == "center"


def _write(tmp_path, text):
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text, expected",
    [
        ("task: inpaint\nloss:\n  identty: 0.1\ntrain: {steps: 5}\n", "loss.identty: unknown key (expected one of: adversarial, adversarial_loss, identity, identity_net, identity_weights, identity_blur, reconstruction)"),
        ("task: inpaint\ntrain: {batch: many, steps: 5}\n", "train.batch: Input should be a valid integer"),
        ("task: inpaint\ntrain: {steps: 5, epochs: 2}\n", "exactly one of train.steps or train.epochs"),
        ("task: paint\ntrain: {steps: 5}\n", "task: unknown task (expected one of: inpaint, sr) (got 'paint')"),
        ("train: {steps: 5}\n", "task: required key is missing"),
        ("task: sr\nloss:\n  identty: 0.1\ntrain: {steps: 5}\n", "loss.identty: unknown key (expected one of: adversarial, adversarial_loss, identity, identity_net, identity_weights, identity_blur, pixel"),
        ("task: sr\nloss: {reconstruction: 0.8}\ntrain: {steps: 5}\n", "loss.reconstruction: unknown key"),
        ("task: inpaint\nloss: {content: 0.006}\ntrain: {steps: 5}\n", "loss.content: unknown key (expected one of: adversarial, adversarial_loss, identity, identity_net, identity_weights, identity_blur, reconstruction)"),
        ("task: sr\nmodel: {scale: 3}\ntrain: {steps: 5}\n", "model.scale: Input should be 2, 4 or 8 (got 3)"),
        ("task: sr\ndata: {masks: [eyes]}\ntrain: {steps: 5}\n", "data.masks: unknown key"),
        ("task: sr\nloss: {pixel_type: l2}\ntrain: {steps: 5}\n", "loss.pixel_type: Input should be 'mse' or 'l1'"),
        ("task: sr\ntrain: {steps: 5, warmup_steps: -1}\n", "train.warmup_steps: Input should be greater than or equal to 0"),
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
    sr = runner.invoke(app, ["train", str(RECIPES[0].parent / "sr_identity.yaml"), "--set", "model.scale=4", "--dry-run"])
    assert sr.exit_code == 0, sr.output
    assert "task: sr" in sr.output and "scale: 4" in sr.output and "warmup_steps: 5000" in sr.output
    bad_sr = runner.invoke(app, ["train", str(RECIPES[0].parent / "sr_identity.yaml"), "--set", "loss.reconstruction=1", "--dry-run"])
    assert bad_sr.exit_code == 2 and "loss.reconstruction: unknown key" in bad_sr.output


def test_keys_lists_documented_fields():
    rows = {k: (d, doc) for k, d, doc in describe_keys()}
    assert "loss.identity" in rows and "train.amp" in rows and "data.path" in rows
    assert all(doc for _, doc in rows.values()), [k for k, (_, doc) in rows.items() if not doc]
    out = runner.invoke(app, ["keys", "loss"])
    assert out.exit_code == 0 and "identity_net" in out.output


def test_keys_of_each_task():
    sr = {k: (d, doc) for k, d, doc in describe_keys("sr")}
    inpaint = {k: (d, doc) for k, d, doc in describe_keys("inpaint")}
    for key in ("model.scale", "model.num_blocks", "model.d_head", "loss.pixel", "loss.pixel_type", "loss.content",
                "loss.content_layer", "loss.tv", "loss.vgg_weights", "data.degradation.blur_sigma",
                "data.degradation.jpeg_quality", "train.warmup_steps"):
        assert key in sr and sr[key][1], key
    assert "loss.reconstruction" not in sr and "data.masks" not in sr and "eval.mask" not in sr
    assert "loss.content" not in inpaint and "train.warmup_steps" in inpaint
    assert sr["loss.adversarial"][0] == "0.001" and inpaint["loss.adversarial"][0] == "0.1"
    tasks = {(k, t) for k, t, _, _ in describe_keys_by_task()}
    assert ("train.batch", "all") in tasks and ("loss.content", "sr") in tasks and ("data.masks", "inpaint") in tasks
    out = runner.invoke(app, ["keys", "model", "--task", "sr"])
    assert out.exit_code == 0 and "scale" in out.output and "bottleneck" not in out.output
    both = runner.invoke(app, ["keys", "loss"], terminal_width=200)
    assert "reconstruction" in both.output and "content_layer" in both.output and "inpaint" in both.output
    bad = runner.invoke(app, ["keys", "--task", "paint"])
    assert bad.exit_code == 2 and "unknown task 'paint'" in bad.output
