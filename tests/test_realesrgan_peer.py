"""The opt-in GAN peer Real-ESRGAN: its ncnn runner, its row in eval, and the refusals.

The real Real-ESRGAN files (64 MiB) are not in the repo; a two-layer ncnn graph with the same
blob names (``data`` in, ``output`` out, x4 nearest) runs the same code path here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facegan.core.errors import FaceganError
from facegan.models.realesrgan import MODEL, NcnnUpscaler, model_files, realesrgan_upscale
from facegan.scoring.evaluate import evaluate
from facegan.tasks.base import PeerModels

pytest.importorskip("ncnn", reason="the Real-ESRGAN peer runs with ncnn: pip install 'facegan[peers]'")


@pytest.fixture
def x4_graph(tmp_path) -> Path:
    """A folder holding an ncnn graph named like Real-ESRGAN's that upscales x4 (nearest)."""
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / f"{MODEL}.param").write_text(
        "7767517\n2 2\nInput data 0 1 data\nInterp up 1 1 data output 0=1 1=4.000000e+00 2=4.000000e+00\n")
    (folder / f"{MODEL}.bin").write_bytes(b"")
    return folder


def test_the_ncnn_runner_runs_the_graph(x4_graph):
    image = np.random.default_rng(0).random((3, 5, 7), dtype=np.float32)
    out = NcnnUpscaler(*model_files(x4_graph))(image)
    want = F.interpolate(torch.from_numpy(image)[None], scale_factor=4, mode="nearest")[0].numpy()
    assert out.shape == (3, 20, 28) and np.allclose(out, want)


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_other_scales_resize_the_x4_result(x4_graph, scale):
    images = torch.rand(2, 3, 8, 8) * 2 - 1
    out = realesrgan_upscale(images, scale, x4_graph)
    assert out.shape == (2, 3, 8 * scale, 8 * scale) and out.min() >= -1 and out.max() <= 1
    if scale == 4:  # nearest x4 exactly, through 0..1 and back
        assert torch.allclose(out, F.interpolate(images, scale_factor=4, mode="nearest"), atol=1e-5)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FaceganError, match=f"{MODEL}.param or {MODEL}.bin"):
        model_files(tmp_path)


def test_eval_scores_it_only_when_asked(tiny_sr, x4_graph, tmp_path):
    plain = evaluate(tiny_sr, device="cpu", out_dir=tmp_path / "a", max_images=4).summary
    assert "realesrgan" not in plain["references"] and "realesrgan" not in plain.get("references_skipped", {})
    asked = evaluate(tiny_sr, device="cpu", out_dir=tmp_path / "b", max_images=4, json_out=tmp_path / "b.json",
                     peers=PeerModels(realesrgan=x4_graph)).summary
    row = asked["references"]["realesrgan"]
    assert row["name"] == "Real-ESRGAN x4plus, GAN (peer)" and "realesrgan" in asked["paired"]
    # nearest x4 is a poor upscaler: below bicubic on faces, as it should be
    assert row["metrics"]["psnr_y"] < asked["references"]["bicubic"]["metrics"]["psnr_y"]
    assert json.loads((tmp_path / "b.json").read_text())["references"]["realesrgan"] == row


def test_eval_refuses_it_for_inpainting(tiny_run, x4_graph, tmp_path):
    with pytest.raises(FaceganError, match="inpainting has no realesrgan peer"):
        evaluate(tiny_run, device="cpu", out_dir=tmp_path / "out", peers=PeerModels(realesrgan=x4_graph))
    assert not (tmp_path / "out").exists()


def test_the_cli_flag_names_a_missing_folder(tiny_sr, tmp_path):
    from typer.testing import CliRunner

    from facegan.cli import app

    result = CliRunner().invoke(app, ["eval", str(tiny_sr), "--realesrgan", str(tmp_path / "nope"),
                                      "--out", str(tmp_path / "out"), "--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: --realesrgan") and "Traceback" not in result.output
