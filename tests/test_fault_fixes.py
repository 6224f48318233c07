"""One test per fault fixed in facegan's reliability issue (CPU, seconds each)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from facegan.cli import app
from facegan.core.errors import FaceganError
from facegan.data.prepare import SAMPLE_DIR

from helpers import REPO, TINY, tiny_recipe

runner = CliRunner()
FACE = SAMPLE_DIR / "deepface" / "img11.jpg"


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


# ---- 1. tiny photos in a batch ------------------------------------------------------------


def test_a_one_pixel_photo_is_skipped_and_the_batch_goes_on(tiny_run, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.open(FACE).save(photos / "good.jpg")
    Image.new("RGB", (1, 1)).save(photos / "one_pixel.png")
    res = runner.invoke(app, ["restore", str(photos), "--checkpoint", str(tiny_run), "--out", str(tmp_path / "o"),
                              "--device", "cpu"])
    assert res.exit_code == 1, res.output  # partial: some skipped
    text = " ".join(res.output.split())
    assert "too small to hold a face (1×1)" in text and "Traceback" not in res.output
    assert (tmp_path / "o" / "good_restored.jpg").is_file()
    assert not (tmp_path / "o" / "one_pixel_restored.png").exists()


def test_prepare_folder_names_a_photo_too_small(tmp_path):
    from facegan.data.folder import prepare_folder
    from facegan.data.packed import PackedDataset

    (tmp_path / "p" / "a").mkdir(parents=True)
    Image.open(FACE).save(tmp_path / "p" / "a" / "good.jpg")
    Image.new("RGB", (1, 1)).save(tmp_path / "p" / "a" / "dot.png")
    out = prepare_folder(tmp_path / "p", tmp_path / "ds", size=64, workers=1, fractions=(1.0, 0.0, 0.0))
    skipped = PackedDataset(out).meta["skipped"]
    assert skipped["no_face"] == [["a/dot.png", "too small to hold a face (1×1)"]]


# ---- 2. divergence ------------------------------------------------------------------------


def test_a_nan_loss_stops_the_run_and_keeps_the_last_finite_checkpoint(sample_data, tmp_path, monkeypatch):
    from facegan.tasks import inpaint

    real, calls = inpaint.hole_l1_loss, []

    def poisoned(*args):
        calls.append(1)
        value = real(*args)
        return value * float("nan") if len(calls) >= 5 else value

    monkeypatch.setattr(inpaint, "hole_l1_loss", poisoned)
    recipe = REPO / "recipes" / "quickstart_inpaint.yaml"
    sets = [*TINY, f"data.path={sample_data}", "train.steps=8", "train.log_every=1", "train.checkpoint_every=2"]
    res = runner.invoke(app, ["train", str(recipe), *[f"--set={s}" for s in sets], "--out", str(tmp_path / "run")])
    assert res.exit_code == 1
    errors = _error_lines(res.output)
    assert len(errors) == 1 and "loss g" in errors[0] and "not finite at step 5" in errors[0], res.output
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["step"] == 4 and all(torch.isfinite(v).all() for v in ckpt["generator"].values())
    assert "done" not in res.output


def test_a_huge_learning_rate_is_reported_not_saved(sample_data, tmp_path):
    recipe = REPO / "recipes" / "quickstart_inpaint.yaml"
    sets = [*TINY, f"data.path={sample_data}", "train.lr_g=1e12", "train.lr_d=1e12", "train.steps=6"]
    res = runner.invoke(app, ["train", str(recipe), *[f"--set={s}" for s in sets], "--out", str(tmp_path / "run")])
    assert res.exit_code == 1 and "training diverged" in res.output and "Traceback" not in res.output
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    if last.exists():  # only finite weights are ever saved
        ckpt = torch.load(last, weights_only=True)
        assert all(torch.isfinite(v).all() for v in ckpt["generator"].values())


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", ".inf"])
def test_non_finite_learning_rates_are_refused(value):
    from facegan.tasks.recipes import load_recipe

    with pytest.raises(FaceganError, match="train.lr_g"):
        load_recipe(REPO / "recipes" / "quickstart_inpaint.yaml", [f"train.lr_g={value}"])


# ---- 3. locks -----------------------------------------------------------------------------


def test_a_dataset_being_written_is_locked(tmp_path):
    from facegan.core.locks import exclusive
    from facegan.data.folder import prepare_folder

    (tmp_path / "p").mkdir()
    Image.open(FACE).save(tmp_path / "p" / "x.jpg")
    out = tmp_path / "ds"
    with exclusive(out.parent / f".{out.name}.lock", "test"):
        with pytest.raises(FaceganError, match="in use by another facegan process"):
            prepare_folder(tmp_path / "p", out, size=64, workers=1, fractions=(1.0, 0.0, 0.0))
    assert not out.exists()
    prepare_folder(tmp_path / "p", out, size=64, workers=1, fractions=(1.0, 0.0, 0.0))  # free again
    assert not list(tmp_path.glob(".ds.*"))


def test_a_run_folder_being_trained_is_locked(sample_data, tmp_path):
    from facegan.core.locks import exclusive
    from facegan.training.train import train

    out = tmp_path / "run"
    out.mkdir()
    with exclusive(out / ".facegan.lock", "test"):
        with pytest.raises(FaceganError, match="in use by another facegan process"):
            train(tiny_recipe(sample_data), out)
    train(tiny_recipe(sample_data), out)
    assert (out / "checkpoints" / "last.pt").is_file() and not (out / ".facegan.lock").exists()


def test_stale_temp_files_of_dead_processes_are_removed(sample_data, tmp_path):
    from facegan.training.train import train

    out = tmp_path / "run"
    train(tiny_recipe(sample_data, "train.steps=3"), out)
    ckpts = out / "checkpoints"
    dead = ckpts / ".last.pt.999999.abcd1234.tmp"  # no process 999999
    alive = ckpts / f".last.pt.{__import__('os').getpid()}.abcd1234.tmp"  # this process: not stale
    dead.write_bytes(b"half a checkpoint")
    alive.write_bytes(b"being written")
    train(tiny_recipe(sample_data, "train.steps=6"), out, resume=True)
    assert not dead.exists() and alive.exists()


# ---- 5. options ---------------------------------------------------------------------------


def test_a_recipe_without_data_path_says_which_default_it_uses(tmp_path, monkeypatch, sample_data):
    import shutil

    monkeypatch.chdir(tmp_path)
    shutil.copytree(sample_data, tmp_path / "data" / "sample")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("task: inpaint\ndata: {size: 64}\nmodel: {width: 8, d_width: 8}\n"
                      "loss: {identity: 0}\ntrain: {batch: 4, steps: 1}\n")
    res = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    assert "names no data.path: training on data/sample, the default" in " ".join(res.output.split())


def test_an_empty_validation_split_is_skipped_with_one_notice(tmp_path):
    from facegan.data.folder import prepare_folder
    from facegan.tasks.recipes import load_recipe
    from facegan.training.train import train

    from helpers import recording_console

    photos = tmp_path / "p"
    for i, name in enumerate(["img11.jpg", "img18.jpg", "img20.jpg", "img2.jpg"]):
        (photos / f"id{i}").mkdir(parents=True)
        Image.open(SAMPLE_DIR / "deepface" / name).save(photos / f"id{i}" / name)
    console = recording_console()
    out = prepare_folder(photos, tmp_path / "ds", size=64, workers=1, fractions=(1.0, 0.0, 0.0), console=console)
    text = " ".join(console.file.getvalue().split())
    assert "split 'val' is empty" in text and "split 'test' is empty" in text
    console = recording_console()
    recipe = load_recipe(REPO / "recipes" / "quickstart_inpaint.yaml", [*TINY, f"data.path={out}", "train.batch=2"])
    train(recipe, tmp_path / "run", console=console)
    text = " ".join(console.file.getvalue().split())
    assert text.count("no validation faces") == 1 and "nan" not in text.lower()
    kinds = {json.loads(line)["kind"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()}
    assert "val" not in kinds


# ---- 6. transparency ----------------------------------------------------------------------


def test_an_rgba_photo_keeps_its_transparency(tiny_run, tmp_path):
    face = Image.open(FACE).convert("RGBA")
    alpha = np.full(face.size[::-1], 255, np.uint8)
    alpha[:, :30] = 0
    alpha[:, 30:40] = 128
    face.putalpha(Image.fromarray(alpha))
    face.save(tmp_path / "cut_out.png")
    res = runner.invoke(app, ["restore", str(tmp_path / "cut_out.png"), "--checkpoint", str(tiny_run),
                              "--out", str(tmp_path / "o"), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    out = Image.open(tmp_path / "o" / "cut_out_restored.png")
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out)[..., 3], alpha)
