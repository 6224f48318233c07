"""`facegan eval` and `facegan restore` on a tiny real run; bad input gives one line, exit 2."""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from facegan.checkpoints.checkpoint import Checkpoint
from facegan.checkpoints.format import atomic_torch_save
from facegan.cli import app
from facegan.core.errors import FaceganError
from facegan.metrics import quality as metrics
from facegan.scoring.evaluate import evaluate

from helpers import train_state

runner = CliRunner()
#: The inpainting rows eval scores beside the model (the OpenCV peers when the extra is installed).
INPAINT_ROWS = {"grey", "biharmonic"} | ({"fsr_fast", "telea"} if importlib.util.find_spec("cv2") else set())


def test_eval_writes_table_json_and_csv(tiny_run, tmp_path):
    out = tmp_path / "eval.json"
    res = runner.invoke(app, ["eval", str(tiny_run), "--mask", "eyes", "--json", str(out), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "PSNR" in res.output and "identity" in res.output and "grey hole" in res.output
    data = json.loads(out.read_text())
    assert set(data["metrics"]) == {"psnr", "ssim", "hole_l1", "hole_psnr", "detail", "id_cos"}
    assert data["n_images"] == 6 and data["mask"] == "eyes" and data["identity_net"] == "mobilefacenet"
    # each reference appears once, under "references"
    assert set(data["references"]) == set(data["paired"]) == INPAINT_ROWS
    assert all(set(r) == {"name", "metrics", "ci95"} for r in data["references"].values())
    assert "reference" not in data and not {"grey", "biharmonic"} & set(data)
    with open(data["per_image_csv"]) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6
    assert abs(np.mean([float(r["psnr"]) for r in rows]) - data["metrics"]["psnr"]) < 1e-5
    assert 0 < data["metrics"]["ssim"] < 1 and -1 <= data["metrics"]["id_cos"] <= 1
    assert (tiny_run / "eval" / "test_eyes.png").is_file()


def test_eval_is_deterministic_and_matches_an_independent_computation(tiny_run, sample_data, tmp_path):
    a = evaluate(tiny_run, mask="center", device="cpu", out_dir=tmp_path / "a").summary
    b = evaluate(tiny_run / "checkpoints" / "last.pt", mask="center", device="cpu", out_dir=tmp_path / "b").summary
    assert a["metrics"] == b["metrics"]
    # Recompute PSNR of the composite by hand from the checkpoint's EMA generator.
    from facegan.data.packed import PackedDataset
    gen = Checkpoint.load(tiny_run).build_generator()
    split = PackedDataset(sample_data).split("test")
    x = torch.from_numpy(np.array(split.images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    m = torch.zeros(len(x), 1, 64, 64)
    m[..., 16:48, 16:48] = 1  # `center` = the middle 50% square
    with torch.no_grad():
        out = gen(x * (1 - m), m)
    comp = out * m + x * (1 - m)
    want = metrics.psnr(metrics.to_uint8(comp), np.array(split.images)).mean()
    assert abs(a["metrics"]["psnr"] - want) < 1e-9


def test_eval_pairs_the_model_with_each_reference(tiny_run, tmp_path):
    ev = evaluate(tiny_run, mask="eyes", device="cpu", out_dir=tmp_path)
    paired = ev.summary["paired"]
    assert set(paired) == set(ev.summary["references"]) == INPAINT_ROWS
    for ref, cols in paired.items():
        assert set(cols) == set(ev.per_image)
        for key, d in cols.items():
            diffs = ev.per_image[key] - ev.references[ref][key]
            assert abs(d["diff"] - diffs.mean()) < 1e-9, (ref, key)
            assert d["lo"] <= d["diff"] <= d["hi"] and 0 < d["p"] <= 1
        # the paired mean is the difference of the two rows' means
        ref_psnr = ev.summary["references"][ref]["metrics"]["psnr"]
        assert abs(cols["psnr"]["diff"] - (ev.summary["metrics"]["psnr"] - ref_psnr)) < 1e-9
    # the per-image CSV carries every reference's values too, so the pairing can be redone from it
    with open(ev.summary["per_image_csv"]) as f:
        rows = list(csv.DictReader(f))
    for ref in paired:
        for key in ev.per_image:
            column = np.array([float(r[f"{ref}_{key}"]) for r in rows])
            np.testing.assert_allclose(column, ev.references[ref][key], rtol=0, atol=1e-12)
    res = runner.invoke(app, ["eval", str(tiny_run), "--mask", "eyes", "--device", "cpu", "--out", str(tmp_path / "cli")])
    assert res.exit_code == 0, res.output
    paired_part = res.output.split("paired over the same images", 1)[1]
    assert "biharmonic" in paired_part and "grey" in paired_part and "bootstrap CI" in paired_part


def test_eval_bad_input(tiny_run, tmp_path):
    res = runner.invoke(app, ["eval", str(tmp_path)])
    assert res.exit_code == 2 and "no checkpoints/last.pt" in res.output
    res = runner.invoke(app, ["eval", str(tiny_run), "--data", str(tmp_path)])
    assert res.exit_code == 2 and "not a facegan dataset" in res.output
    res = runner.invoke(app, ["eval", str(tiny_run), "--split", "nope"])
    assert res.exit_code == 2 and "split 'nope'" in res.output
    res = runner.invoke(app, ["eval", str(tiny_run), "--mask", "stripes"])
    assert res.exit_code == 2 and "stripes" in res.output
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    res = runner.invoke(app, ["eval", str(junk)])
    assert res.exit_code == 2 and "not a readable facegan checkpoint" in res.output
    for r in (res,):
        assert "Traceback" not in r.output


def test_wrong_task_checkpoint_is_refused(tiny_run, tmp_path):
    ckpt = train_state(tiny_run)
    ckpt["task"] = "sr"
    other = tmp_path / "sr.pt"
    atomic_torch_save(ckpt, other)
    with pytest.raises(FaceganError, match="is a 'sr' checkpoint, not 'inpaint'"):
        Checkpoint.load(other, task="inpaint")
    img = tmp_path / "face.png"
    Image.new("RGB", (64, 64), "gray").save(img)
    res = runner.invoke(app, ["restore", str(img), "--aligned", "--checkpoint", str(other), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "not 'inpaint'" in res.output
    assert not (tmp_path / "o").exists()


def _face(sample_data, tmp_path, size=(150, 150)):
    src = sample_data / "examples" / "test_001.png"
    path = tmp_path / "face.png"
    Image.open(src).resize(size, Image.BICUBIC).save(path)
    return path


def test_restore_changes_only_the_hole(tiny_run, sample_data, tmp_path):
    face = _face(sample_data, tmp_path, (150, 150))
    res = runner.invoke(app, ["restore", str(face), "--aligned", "--mask", "eyes", "-c", str(tiny_run),
                              "--out", str(tmp_path / "out"), "--device", "cpu", "--compare"])
    assert res.exit_code == 0, res.output
    restored, compare = tmp_path / "out" / "face_restored.png", tmp_path / "out" / "face_compare.png"
    before = np.asarray(Image.open(face).convert("RGB"))
    after = np.asarray(Image.open(restored))
    assert after.shape == before.shape
    changed = (after != before).any(-1)
    assert changed.any()
    ys, xs = np.nonzero(changed)
    # the eyes hole sits around the eye line (about 52% of the height)
    assert 0.35 * 150 < ys.mean() < 0.65 * 150 and 0.3 * 150 < xs.mean() < 0.7 * 150
    assert not changed[: int(0.3 * 150)].any() and not changed[int(0.75 * 150):].any()
    assert Image.open(compare).size[0] > 3 * 150


def test_restore_with_a_mask_file(tiny_run, sample_data, tmp_path):
    face = _face(sample_data, tmp_path, (96, 96))
    hole = np.zeros((48, 48), np.uint8)
    hole[30:40, 10:30] = 255
    Image.fromarray(hole).save(tmp_path / "m.png")
    res = runner.invoke(app, ["restore", str(face), "--aligned", "--mask", str(tmp_path / "m.png"), "-c", str(tiny_run),
                              "--out", str(tmp_path / "o"), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    restored = tmp_path / "o" / "face_restored.png"
    changed = (np.asarray(Image.open(restored)) != np.asarray(Image.open(face).convert("RGB"))).any(-1)
    outside = np.ones_like(changed)
    outside[57:83, 17:63] = False  # the hole plus the feathered seam (~1 aligned pixel)
    assert changed.any() and not changed[outside].any()


def test_restore_bad_input_and_the_bundled_default(tiny_run, sample_data, tmp_path, monkeypatch):
    face = _face(sample_data, tmp_path)
    text = tmp_path / "notes.png"
    text.write_text("hello")
    res = runner.invoke(app, ["restore", str(text), "--aligned", "--checkpoint", str(tiny_run), "--out", str(tmp_path / "o1")])
    assert res.exit_code == 2 and "not an image" in res.output
    wide = tmp_path / "wide.png"
    Image.new("L", (200, 100), 255).save(wide)
    res = runner.invoke(app, ["restore", str(face), "--aligned", "--mask", str(wide), "--checkpoint", str(tiny_run), "--out", str(tmp_path / "o2")])
    assert res.exit_code == 2 and "aspect" in res.output
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()
    # Without --checkpoint: the bundled model, even beside a run in ./runs (often a smoke test);
    # a run is used only when named.
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_run, tmp_path / "runs" / "mine")
    res = runner.invoke(app, ["restore", str(face), "--aligned", "--mask", "mouth", "--out", "o3", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "using the bundled model inpaint-128" in res.output and "runs/mine" not in res.output
    assert (tmp_path / "o3" / "face_restored.png").is_file()
    import facegan.checkpoints.bundled

    monkeypatch.setattr(facegan.checkpoints.bundled, "MODELS_DIR", tmp_path / "no_models")
    res = runner.invoke(app, ["restore", str(face), "--aligned", "--mask", "mouth", "--out", "o4"])
    assert res.exit_code == 2 and "no bundled 'inpaint' model; pass --checkpoint" in res.output
    assert not (tmp_path / "o4").exists()
