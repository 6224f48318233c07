"""Peer rows: methods users could run instead of facegan, scored by eval beside the model."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from facegan.data.masks import eval_masks
from facegan.data.packed import PackedDataset
from facegan.metrics import quality as metrics
from facegan.scoring.evaluate import evaluate
from facegan.tasks.opencv_fills import opencv_fill

cv2 = pytest.importorskip("cv2", reason="the OpenCV peers need pip install 'facegan[peers]'")


def _faces(sample_data, n: int = 6):
    split = PackedDataset(sample_data).split("train")
    images = torch.from_numpy(np.array(split.images[:n])).permute(0, 3, 1, 2).float() / 127.5 - 1
    landmarks = torch.from_numpy(np.array(split.landmarks[:n], dtype=np.float32))
    mask = eval_masks("eyes", list(range(n)), images.shape[-1], landmarks=landmarks)
    return images, mask


@pytest.mark.parametrize("method", ["telea", "fsr_fast"])
def test_an_opencv_fill_changes_only_the_hole_and_beats_the_grey_hole(sample_data, method):
    images, mask = _faces(sample_data)
    masked = images * (1 - mask)  # mid-grey (0) in the hole
    filled = opencv_fill(masked, mask, method)
    known = mask.expand_as(images) < 0.5
    assert np.array_equal(metrics.to_uint8(filled)[known.permute(0, 2, 3, 1).numpy()],
                       metrics.to_uint8(masked)[known.permute(0, 2, 3, 1).numpy()])
    gt = metrics.to_uint8(images)
    assert metrics.psnr(metrics.to_uint8(filled), gt).mean() > metrics.psnr(metrics.to_uint8(masked), gt).mean() + 1.0


def test_the_telea_fill_is_opencvs_own(sample_data):
    images, mask = _faces(sample_data, 1)
    masked = images * (1 - mask)
    bgr = np.ascontiguousarray(metrics.to_uint8(masked)[0][..., ::-1])
    want = cv2.inpaint(bgr, (mask[0, 0].numpy() > 0.5).astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)[..., ::-1]
    assert np.array_equal(metrics.to_uint8(opencv_fill(masked, mask, "telea"))[0], want)


def test_eval_scores_the_peers_beside_the_model_and_pairs_them(tiny_run, tmp_path):
    summary = evaluate(tiny_run, mask="eyes", device="cpu", out_dir=tmp_path).summary
    assert {"fsr_fast", "telea"} <= set(summary["references"]) and {"fsr_fast", "telea"} <= set(summary["paired"])
    assert summary["references"]["telea"]["name"] == "OpenCV Telea (peer)" and "references_skipped" not in summary


def test_a_missing_peer_is_left_out_with_one_note(tiny_run, tmp_path, monkeypatch):
    from helpers import recording_console

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "cv2" else real(name, *a))
    console = recording_console()
    evaluate(tiny_run, mask="eyes", device="cpu", out_dir=tmp_path, json_out=tmp_path / "e.json", console=console)
    summary = json.loads((tmp_path / "e.json").read_text())
    assert set(summary["references"]) == {"grey", "biharmonic"}
    assert set(summary["references_skipped"]) == {"fsr_fast", "telea"}
    assert "peer row OpenCV Telea (peer) skipped" in console.file.getvalue()
