"""facegan export: ONNX and TorchScript files that are the restorer, checked against PyTorch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from facegan.checkpoints.checkpoint import Checkpoint
from facegan.cli import app
from facegan.restoring.export import export
from facegan.restoring.exported_file import run_file
from facegan.restoring.onnx_restorer import OnnxRestorer
from facegan.restoring.parity import MAX_FP32_DIFF, example_faces

from helpers import REPO

runner = CliRunner()


@pytest.fixture(params=["inpaint", "sr"])
def run(request, tiny_run, tiny_sr) -> Path:
    return tiny_run if request.param == "inpaint" else tiny_sr


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_matches_pytorch_with_a_dynamic_batch(run, fmt, tmp_path):
    ckpt = Checkpoint.load(run)
    out = tmp_path / ("m.onnx" if fmt == "onnx" else "m.pt")
    result = export(ckpt, fmt, out)
    assert result.max_diff <= MAX_FP32_DIFF and out.is_file()
    task = ckpt.task
    faces, holes = example_faces(task, 3)
    for n in (1, 3):  # any batch size
        outputs = run_file(out, fmt, faces[:n], None if holes is None else holes[:n])
        assert outputs[0].shape == (n, task.size, task.size, 3) and outputs[0].dtype == np.float32
        assert len(outputs) == (2 if task.takes_hole else 1)
        assert 0 <= outputs[0].min() and outputs[0].max() <= 1


def test_onnx_metadata_describes_the_contract(tiny_run, tmp_path):
    import onnx

    export(Checkpoint.load(tiny_run), "onnx", tmp_path / "m.onnx")
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert meta["task"] == "inpaint" and meta["size"] == "64" and meta["scale"] == "null"
    assert {"facegan_version", "template", "recipe", "contract"} <= set(meta)
    assert "white" in meta["contract"] and "0..1" in meta["contract"]


@pytest.mark.slow
def test_fp16_export_reports_its_difference(tiny_run, tmp_path):
    result = export(Checkpoint.load(tiny_run), "onnx", tmp_path / "m16.onnx", fp16=True)
    full = export(Checkpoint.load(tiny_run), "onnx", tmp_path / "m32.onnx")
    assert result.fp16 and result.bytes < full.bytes and result.max_diff < 0.05


def test_cli_export_and_refusals(tiny_run, tmp_path):
    res = runner.invoke(app, ["export", str(tiny_run), "--out", str(tmp_path / "x.onnx")])
    assert res.exit_code == 0 and "parity on real faces: max |Δ|" in " ".join(res.output.split()), res.output
    res = runner.invoke(app, ["export", str(tiny_run), "--format", "tflite"])
    assert res.exit_code == 2 and "'tflite' is not one of 'onnx', 'torchscript'" in res.output
    res = runner.invoke(app, ["export", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "not found" in res.output


def test_restore_with_onnx_equals_pytorch_on_the_sample_photos(tiny_run, tmp_path):
    from facegan.data.prepare import SAMPLE_DIR

    export(Checkpoint.load(tiny_run), "onnx", tmp_path / "m.onnx")
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("img11.jpg", "img18.jpg", "img20.jpg"):
        shutil.copy(SAMPLE_DIR / "deepface" / name, photos / name)
    for backend, out in (("torch", "pt"), ("onnx", "ox")):
        checkpoint = str(tiny_run) if backend == "torch" else str(tmp_path / "m.onnx")
        res = runner.invoke(app, ["restore", str(photos), "--checkpoint", checkpoint, "--backend", backend,
                                  "--out", str(tmp_path / out), "--device", "cpu", "--mask", "eyes", "--ext", "png"])
        assert res.exit_code == 0, res.output
    for name in ("img11", "img18", "img20"):
        a = np.asarray(Image.open(tmp_path / "pt" / f"{name}_restored.png")).astype(int)
        b = np.asarray(Image.open(tmp_path / "ox" / f"{name}_restored.png")).astype(int)
        assert np.abs(a - b).max() <= 1, name


def test_onnx_restorer_refuses_other_files(tmp_path):
    from facegan.core.errors import FaceganError

    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(FaceganError, match="not a model onnxruntime can run"):
        OnnxRestorer(tmp_path / "bad.onnx")


def test_the_readme_snippet_runs_without_facegan(tiny_run, sample_data, tmp_path):
    text = (REPO / "README.md").read_text()
    snippet = text.split("<!-- onnx-snippet -->")[1].split("<!-- /onnx-snippet -->")[0]
    code = snippet.split("```python")[1].split("```")[0]
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    export(Checkpoint.load(tiny_run), "onnx", tmp_path / "inpaint-128.onnx")
    shutil.copy(sample_data / "examples" / "test_000.png", tmp_path / "face.png")
    guard = "import sys; sys.modules['facegan'] = None  # the snippet must not need facegan\n"
    res = subprocess.run([sys.executable, "-c", guard + code], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": ""}, timeout=120)
    assert res.returncode == 0, res.stderr
    out = np.asarray(Image.open(tmp_path / "restored.png"))
    assert out.shape == (64, 64, 3)


@pytest.mark.slow
def test_bundled_models_export(tmp_path):
    from facegan.checkpoints.bundled import list_models

    models = list_models()
    if not models:
        pytest.skip("no bundled models in this checkout")
    for model in models:
        result = export(Checkpoint.load(model.name), "onnx", tmp_path / f"{model.name}.onnx")
        assert result.max_diff <= MAX_FP32_DIFF, model.name
