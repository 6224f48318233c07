"""The models that ship with facegan: safe loading, their scores on real faces, restore's fallback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from facegan.checkpoints import bundled
from facegan.checkpoints.checkpoint import Checkpoint
from facegan.cli import app
from facegan.core.errors import FaceganError
from facegan.data.prepare import SAMPLE_DIR

runner = CliRunner()
MODELS = bundled.list_models()
NAMES = [m.name for m in MODELS]


def test_the_package_ships_the_three_models():
    assert {"inpaint-128", "sr4-128", "sr8-128"} <= set(NAMES)
    total = sum(m.size_bytes for m in MODELS)
    assert total < 25 * 2**20, f"bundled models take {total / 2**20:.1f} MiB"


@pytest.mark.parametrize("name", NAMES)
def test_a_bundled_model_loads_safely_and_is_checked(name, tmp_path, monkeypatch):
    model = bundled.find_model(name)
    assert model.weights.suffix == ".safetensors"
    with open(model.weights, "rb") as f:  # safetensors: a length, then a JSON header; no pickle
        head = f.read(9)
    assert head[8:9] == b"{"
    card = model.card
    for key in ("task", "size", "template", "recipe", "training_data", "steps", "licence", "sha256", "eval"):
        assert key in card, key
    ckpt = Checkpoint.from_bundled(model)
    assert ckpt.task_name == card["task"] and all(v.dtype == torch.float32 for v in ckpt.weights.values() if v.is_floating_point())
    bad = tmp_path / "models"
    bad.mkdir()
    shutil.copy(model.weights.with_suffix(".json"), bad)
    data = bytearray(model.weights.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in the weights
    (bad / model.weights.name).write_bytes(bytes(data))
    broken = bundled.find_model(name, bad)
    with pytest.raises(FaceganError, match="is corrupted.*reinstall"):
        Checkpoint.from_bundled(broken)


def _sample_faces(task, n: int = 4):
    """Four bundled sample photos, detected and aligned at the model's size (the real pipeline)."""
    from facegan.faces.align import align_face
    from facegan.faces.detect import find_faces
    from facegan.faces.images import load_photo

    faces = []
    for path in sorted((SAMPLE_DIR / "deepface").glob("*.jpg")):
        photo = load_photo(path)
        found = find_faces(photo)
        if found:
            faces.append(align_face(np.asarray(photo), found[0].landmarks, task.size)[0])
        if len(faces) == n:
            return np.stack(faces)
    raise AssertionError("not enough sample faces")


@pytest.mark.parametrize("name", NAMES)
def test_the_shipped_weights_beat_their_reference_on_sample_faces(name):
    """A fast check that the file holds the trained weights: on 4 bundled sample faces, the
    model's output scores above its no-model reference row (biharmonic fill; bicubic)."""
    from facegan.data.loader import to_model_range
    from facegan.faces.geometry import template_points
    from facegan.metrics import quality as metrics
    from facegan.restoring.torch_restorer import TorchRestorer

    restorer = TorchRestorer(Checkpoint.from_bundled(name), "cpu")
    task = restorer.task
    gt = _sample_faces(task)
    images = to_model_range(torch.from_numpy(gt))
    lms = torch.tensor(np.stack([template_points(task.size)] * len(gt)), dtype=torch.float32)
    settings = task.eval_settings(size=task.size)
    batch = task.eval_batch(images, lms, range(len(gt)), settings)
    with torch.no_grad():
        _, result = task.run(restorer.gen, batch)
        refs = task.reference_outputs(batch, tuple(r.key for r in task.available_references()))
    best = next(r for r in task.references if r.key in ("biharmonic", "bicubic"))  # the classical reference
    key = "psnr_y" if any(c.key == "psnr_y" for c in task.metric_columns) else "psnr"
    model = task.score(metrics.to_uint8(result), gt, batch)[key].mean()
    reference = task.score(metrics.to_uint8(refs[best.key]), gt, batch)[key].mean()
    assert model > reference, f"{name}: {key} {model:.2f} vs {best.name} {reference:.2f}"


@pytest.mark.parametrize("task, extra, model", [("inpaint", ["--mask", "eyes"], "inpaint-128"),
                                                ("sr", ["--scale", "8"], "sr8-128"),
                                                ("sr", [], "sr4-128"),
                                                ("sr", ["--scale", "2"], "sr2-128")])
def test_restore_falls_back_to_the_bundled_model(task, extra, model, tmp_path, monkeypatch):
    if model not in NAMES:
        pytest.skip(f"{model} is not bundled in this checkout")
    monkeypatch.chdir(tmp_path)  # no runs/ here
    shutil.copy(SAMPLE_DIR / "deepface" / "img11.jpg", tmp_path / "photo.jpg")
    res = runner.invoke(app, ["restore", "photo.jpg", "--task", task, *extra, "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert f"using the bundled model {model}" in " ".join(res.output.split())
    assert (tmp_path / "restored" / "photo_restored.jpg").is_file()


def test_models_lists_them():
    res = runner.invoke(app, ["models"])
    assert res.exit_code == 0
    for name in NAMES:
        assert name in res.output
    data = json.loads(runner.invoke(app, ["models", "--json"]).output)
    assert set(data) == set(NAMES)


def test_models_puts_the_best_peer_and_the_best_classical_reference_beside_the_score():
    from facegan.commands.models import _scores

    evals = {"x4": {"metrics": {"psnr_y": 29.2, "judge_verified": 0.99}, "references": {
        "bicubic": {"name": "bicubic (no model)", "metrics": {"psnr_y": 26.2}},
        "span": {"name": "SPAN, generic SR (peer)", "metrics": {"psnr_y": 28.8}},
        "realesrgan": {"name": "Real-ESRGAN x4plus, GAN (peer)", "metrics": {"psnr_y": 24.5}}}}}
    assert _scores(evals) == "x4: 29.20 · SPAN 28.80 · bicubic 26.20, verified 99%"
    assert _scores({"eyes": {"metrics": {"psnr": 31.0}, "references": {
        "grey": {"name": "grey hole (no model)", "metrics": {"psnr": 17.0}}}}}) == "eyes: 31.00 · grey hole 17.00"


def test_write_and_load_a_bundle_round_trip(tiny_run, tmp_path):
    from facegan.checkpoints.bundle_writer import write_bundle

    ckpt = Checkpoint.load(tiny_run)
    model = write_bundle(ckpt, "tiny-64", tmp_path, "the bundled sample faces", "test only")
    back = Checkpoint.from_bundled(bundled.find_model("tiny-64", tmp_path))
    for k, v in ckpt.weights.items():
        if not v.is_floating_point():  # integer buffers (BatchNorm's step counter) travel as they are
            assert torch.equal(back.weights[k], v)
            continue
        assert torch.allclose(back.weights[k], v.float(), atol=1e-3 * max(1.0, float(v.abs().max())))
    assert back.stored_recipe == ckpt.stored_recipe and model.card["dtype"] == "float16"
    assert bundled.default_model("inpaint", folder=tmp_path).name == "tiny-64"
    assert bundled.default_model("sr", folder=tmp_path) is None


def test_a_scored_card_keeps_the_paired_differences_and_the_table_shows_them(tmp_path):
    import importlib.util

    for suffix in (".json", ".safetensors"):
        shutil.copy(bundled.MODELS_DIR / f"sr8-128{suffix}", tmp_path / f"sr8-128{suffix}")
    model = bundled.find_model("sr8-128", tmp_path)
    metrics = {"psnr_y": 23.73, "ssim_y": 0.6543, "psnr": 22.17, "judge_cos": 0.8975, "judge_verified": 0.196}
    ci = {k: 0.01 for k in metrics}
    paired = {"bicubic": {"psnr_y": {"diff": 1.135, "lo": 1.101, "hi": 1.172, "p": 0.0001, "n": 1125},
                          "judge_verified": {"diff": 0.044, "lo": 0.020, "hi": 0.070, "p": 0.0003, "n": 1125}}}
    summary = {"metrics": metrics, "ci95": ci, "n_images": 1125, "paired": paired, "per_image_csv": "x.csv",
               "references": {"bicubic": {"name": "bicubic", "metrics": metrics, "ci95": ci}}}
    from facegan.checkpoints.bundle_writer import set_eval

    set_eval(model, "x8", summary)
    card = bundled.find_model("sr8-128", tmp_path).card
    assert card["eval"]["x8"]["paired"] == paired and "per_image_csv" not in card["eval"]["x8"]

    spec = importlib.util.spec_from_file_location("bundle_model", Path(__file__).resolve().parents[1] / "scripts" / "bundle_model.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    row = next(line for line in script.markdown_scores(card).splitlines() if "paired |" in line)
    assert row.startswith("| x8 | sr8-128 − bicubic, paired | +1.14 [+1.10, +1.17] | – | – | – | +4.4 pp [+2.0, +7.0] |")
