"""The independent judge: loading and refusing, the dlib descriptor on aligned faces, identity
networks as judges, and `facegan eval --judge` end to end on a tiny run."""

from __future__ import annotations

import csv
import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from facegan.cli import app
from facegan.core.errors import FaceganError
from facegan.scoring.judge import (
    DLIB_FACE_BOX, DlibJudge, JudgeUnavailable, NetworkJudge, dlib_face_rect, judge_names, load_judge,
)

runner = CliRunner()
HAS_DLIB = all(importlib.util.find_spec(m) is not None for m in ("dlib", "face_recognition_models"))
needs_dlib = pytest.mark.skipif(not HAS_DLIB, reason="the dlib judge needs pip install 'facegan[judge]'")


@pytest.fixture(scope="module")
def dlib_judge() -> DlibJudge:
    if not HAS_DLIB:
        pytest.skip("the dlib judge needs pip install 'facegan[judge]'")
    return load_judge("dlib")


def test_names_and_refusals() -> None:
    assert judge_names()[:2] == ["dlib", "mobilefacenet"] and "facenet-casia" in judge_names()
    with pytest.raises(FaceganError, match="unknown judge 'arcface'; known: dlib, mobilefacenet"):
        load_judge("arcface")
    with pytest.raises(FaceganError, match="was used in training; a loss network scored by itself can be gamed") as err:
        load_judge("mobilefacenet", training_net="mobilefacenet")
    assert "dlib" in str(err.value) and "\n" not in str(err.value)


def test_missing_dlib_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib -> ImportError
    with pytest.raises(JudgeUnavailable, match=r"pip install 'facegan\[judge\]'"):
        load_judge("dlib")
    assert issubclass(JudgeUnavailable, FaceganError)  # the CLI prints it as one line


def test_face_rect_follows_the_template() -> None:
    assert dlib_face_rect(128) == (32, 48, 95, 112)
    for size in (64, 128, 512):
        left, top, right, bottom = dlib_face_rect(size)
        assert abs((right + 1 - left) / size - (DLIB_FACE_BOX[2] - DLIB_FACE_BOX[0])) < 1.5 / size
        assert 0 <= left < right < size and 0 <= top < bottom < size


def test_identity_network_as_judge() -> None:
    from facegan.metrics.quality import identity_cosine
    from facegan.models.identity import load_identity_net

    judge = load_judge("mobilefacenet", training_net="facenet-vggface2")
    assert isinstance(judge, NetworkJudge) and judge.name == "mobilefacenet" and not judge.has_threshold
    torch.manual_seed(0)
    a, b = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    out = judge.score(a, b)
    net = load_identity_net("mobilefacenet")
    with torch.no_grad():
        expected = identity_cosine(net(a), net(b))
    np.testing.assert_allclose(out["judge_cos"], expected, atol=1e-6)
    assert out["judge_verified"].shape == (2,) and np.isnan(out["judge_verified"]).all()


@needs_dlib
def test_dlib_scores_identical_faces_as_verified(dlib_judge, sample_data: Path) -> None:
    from facegan.data.packed import PackedDataset

    faces = torch.from_numpy(np.array(PackedDataset(sample_data).split("test").images[:3]))
    faces = faces.permute(0, 3, 1, 2).float() / 127.5 - 1
    out = dlib_judge.score(faces, faces.clone())
    assert set(out) == {"judge_cos", "judge_verified"}
    assert out["judge_cos"].dtype == np.float64 and out["judge_cos"].shape == (3,)
    np.testing.assert_allclose(out["judge_cos"], 1.0, atol=1e-9)
    np.testing.assert_array_equal(out["judge_verified"], 1.0)
    # against other photos the descriptors differ
    shifted = dlib_judge.score(faces, faces[[1, 2, 0]])
    assert (shifted["judge_cos"] < 0.999).all()


@needs_dlib
def test_dlib_computes_each_target_face_once(dlib_judge, monkeypatch) -> None:
    calls = []
    original = DlibJudge._describe

    def counting(self, faces):
        calls.append(len(faces))
        return original(self, faces)

    monkeypatch.setattr(DlibJudge, "_describe", counting)
    monkeypatch.setattr(dlib_judge, "_targets", {})
    targets = torch.zeros(2, 3, 64, 64)
    outputs = torch.zeros(2, 3, 64, 64)
    dlib_judge.score(outputs, targets)
    dlib_judge.score(outputs, targets.clone())  # eval scores the model and each reference on one batch
    assert calls == [2, 1, 2]  # outputs twice, the (identical) target face once
    targets[1].add_(0.5)  # one face changed: only it is computed again
    second = dlib_judge.score(outputs, targets)
    assert calls == [2, 1, 2, 2, 1]
    assert second["judge_cos"].shape == (2,)
    assert load_judge("dlib") is load_judge("dlib")  # one judge per process: the cache serves every eval


@needs_dlib
def test_dlib_workers_give_the_same_descriptors(dlib_judge, sample_data: Path) -> None:
    from facegan.data.packed import PackedDataset

    faces = torch.from_numpy(np.array(PackedDataset(sample_data).split("test").images[:5]))
    faces = faces.permute(0, 3, 1, 2).float() / 127.5 - 1
    one = DlibJudge.from_package(workers=1).descriptors(faces)
    two = DlibJudge.from_package(workers=2).descriptors(faces)
    np.testing.assert_array_equal(one, two)
    assert one.shape == (5, 128) and np.isfinite(one).all()


@needs_dlib
def test_eval_with_judge_end_to_end(tiny_run: Path, tmp_path: Path) -> None:
    """The tiny run trained against MobileFaceNet: dlib judges it, MobileFaceNet may not."""
    import json

    ok = runner.invoke(app, ["eval", str(tiny_run), "--judge", "--out", str(tmp_path), "--json", str(tmp_path / "s.json")])
    assert ok.exit_code == 0, ok.output
    assert "Judge: dlib" in ok.output
    result = json.loads((tmp_path / "s.json").read_text())
    assert result["judge"] == "dlib"
    with open(result["per_image_csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and {"id_cos", "judge_cos", "judge_verified"} <= set(rows[0])
    cos = np.array([float(r["judge_cos"]) for r in rows])
    verified = np.array([float(r["judge_verified"]) for r in rows])
    assert np.all((cos > 0) & (cos <= 1)) and set(verified) <= {0.0, 1.0}
    assert math.isclose(result["metrics"]["judge_cos"], cos.mean(), abs_tol=1e-5)

    refused = runner.invoke(app, ["eval", str(tiny_run), "--judge", "--judge-net", "mobilefacenet",
                                  "--out", str(tmp_path / "refused")])
    assert refused.exit_code == 2
    assert "used in training" in refused.output and "Traceback" not in refused.output
