"""FID (``facegan eval --fid-weights``): FID's Inception v3 (facegan.models.fid), its weights file
checks, the Fréchet distance on its 2048-d features, and eval's ``fid`` rows.

The real weights (pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``) cannot be had offline,
so the network is built untrained and saved like that file (its BatchNorm statistics set by one
pass over random images, so the features neither vanish nor explode). That the architecture is
pytorch-fid's was checked once against pytorch-fid 0.3.0's ``InceptionV3`` given the same state
dict: equal to 2e-13 in float64 on [0, 1] images (torchvision's own Inception blocks differ by ~3).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from facegan.cli import app
from facegan.core.errors import FaceganError
from facegan.metrics.realism import frechet_ci, frechet_distance
from facegan.models import fid

runner = CliRunner()


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """Untrained FID Inception weights saved with torch.save under the real file's name, without
    BatchNorm's ``num_batches_tracked`` counters (which the loader must not require)."""
    torch.manual_seed(0)
    net = fid.build_fid_inception()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # the running statistics become those of this one batch
    net.train()
    with torch.no_grad():
        net(torch.rand(8, 3, 64, 64) * 2 - 1)
    path = tmp_path_factory.mktemp("fid") / fid.WEIGHTS_FILE
    torch.save({k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}, path)
    return path


@pytest.fixture(scope="module")
def net(weights):
    return fid.load_fid_inception(weights)


def _faces(n: int, seed: int = 0) -> np.ndarray:
    """``(n, 64, 64, 3)`` uint8 pictures with face-like structure: smooth shading plus edges."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.normal(size=(n, 64, 64, 3)), sigma=(0, 6, 6, 0)) * 900 + 128
    yy, xx = np.mgrid[:64, :64]
    for i in range(n):
        cy, cx, r = rng.integers(24, 40), rng.integers(24, 40), rng.integers(6, 14)
        base[i][(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] -= 70  # a dark disc with a sharp rim
        base[i][::8] += 25  # and stripes
    return np.clip(base, 0, 255).round().astype(np.uint8)


def test_features_are_2048_finite_and_the_same_from_uint8_or_model_images(net, weights):
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    saved = torch.load(weights, weights_only=True)
    assert all(torch.equal(v, saved[k]) for k, v in net.state_dict().items() if k in saved)
    faces = _faces(5)
    feats = fid.fid_features(net, faces)
    assert feats.shape == (5, fid.FEATURES) and feats.dtype == np.float64
    assert np.isfinite(feats).all() and feats.std() > 1e-3  # neither NaN nor vanishing
    as_model = torch.from_numpy(faces).permute(0, 3, 1, 2).double() / 127.5 - 1  # facegan's [-1, 1] images
    assert np.allclose(fid.fid_features(net, as_model), feats, atol=1e-4)
    assert np.allclose(fid.fid_features(net, faces, batch_size=2), feats, atol=1e-4)  # batching changes nothing
    assert np.allclose(fid.fid_features(net, faces[:1])[0], feats[0], atol=1e-4)
    with pytest.raises(ValueError, match="uint8 images as"):
        fid.fid_features(net, faces.transpose(0, 3, 1, 2))  # uint8 must be NHWC


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_blur_and_noise(net):
    from scipy import ndimage

    faces = _faces(12)
    real = fid.fid_features(net, faces)
    blurred = fid.fid_features(net, ndimage.gaussian_filter(faces, sigma=(0, 2, 2, 0)))
    rng = np.random.default_rng(1)
    noisy = [fid.fid_features(net, np.clip(faces + rng.normal(0, s, faces.shape), 0, 255).round().astype(np.uint8))
             for s in (8, 40)]
    scale = frechet_distance(real, real * 0)  # the features' own size: |mu|² + tr C
    assert abs(frechet_distance(real, real)) < 1e-9 * scale
    fd_blur = frechet_distance(blurred, real)
    fd_noise = [frechet_distance(x, real) for x in noisy]
    assert fd_blur > 1e-3 * scale and fd_noise[0] > 1e-3 * scale
    assert fd_noise[1] > fd_noise[0]  # more noise, further from the real set
    value, lo, hi = frechet_ci(blurred, real, n_boot=20)
    assert value == pytest.approx(fd_blur) and lo <= hi


@pytest.mark.parametrize("n, d", [(12, 256), (30, 64), (200, 16)])
def test_frechet_distance_matches_scipy_sqrtm(n, d):
    """Both routes of the trace (fewer images than dimensions, FID's usual case, and more) agree
    with the formula as pytorch-fid computes it."""
    from scipy import linalg

    rng = np.random.default_rng(n)
    a = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) / np.sqrt(d)
    b = rng.normal(0.2, 1.3, size=(n + 3, d))
    c_a, c_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(c_a @ c_b).real
    expected = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(c_a) + np.trace(c_b) - 2 * np.trace(root)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message and fid.WEIGHTS_FILE in message  # one line that says which file FID needs
    return message


def test_wrong_weights_files_are_refused_in_one_line(weights, tmp_path):
    text = tmp_path / "weights.pth"
    text.write_text("not weights\n")
    with pytest.raises(FaceganError) as err:
        fid.load_fid_inception(text)
    assert "is not a PyTorch weights file" in _one_line(err)

    state = torch.load(weights, weights_only=True)
    partial = tmp_path / "partial.pth"
    torch.save({k: v for k, v in state.items() if not k.startswith("Mixed_7")}, partial)
    with pytest.raises(FaceganError) as err:
        fid.load_fid_inception(partial)
    assert "missing keys" in _one_line(err) and "not FID's Inception v3 weights" in str(err.value)

    imagenet = tmp_path / "inception_v3_google.pth"  # torchvision's layout: a 1000-class classifier
    torch.save({**state, "fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000)}, imagenet)
    with pytest.raises(FaceganError) as err:
        fid.load_fid_inception(imagenet)
    assert "shape mismatches" in _one_line(err) and "fc.weight (1000, 2048)" in str(err.value)

    with pytest.raises(FaceganError) as err:
        fid.load_fid_inception(tmp_path / "absent.pth")
    assert "not found" in _one_line(err)
    with pytest.raises(FaceganError) as err:
        fid.load_fid_inception(tmp_path)
    assert "is a folder" in _one_line(err)


def test_eval_refuses_a_missing_fid_weights_file_before_any_work(tmp_path, monkeypatch):
    monkeypatch.delenv(fid.ENV_VAR, raising=False)
    missing = tmp_path / fid.WEIGHTS_FILE
    # The run does not exist either: the FID file is checked first, before any checkpoint is read.
    res = runner.invoke(app, ["eval", str(tmp_path / "no_run"), "--fid-weights", str(missing)])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert lines == [f"error: --fid-weights: {missing} not found (FID needs {fid.WEIGHTS_FILE} from pytorch-fid's "
                     f"release page, {fid.RELEASE_PAGE})"]
    assert "Traceback" not in res.output

    monkeypatch.setenv(fid.ENV_VAR, str(missing))
    res = runner.invoke(app, ["eval", str(tmp_path / "no_run")])
    assert res.exit_code == 2 and res.output.startswith(f"error: ${fid.ENV_VAR}: {missing} not found")
    assert "Traceback" not in res.output


def test_eval_reports_fid_for_the_model_and_every_reference(tiny_sr, weights, tmp_path, monkeypatch):
    monkeypatch.delenv(fid.ENV_VAR, raising=False)
    runs = []
    for out in ("first", "again"):  # the second run reads the reference rows (and their features) from the cache
        res = runner.invoke(app, ["eval", str(tiny_sr), "--max-images", "4", "--device", "cpu",
                                  "--fid-weights", str(weights), "--out", str(tmp_path / out),
                                  "--json", str(tmp_path / f"{out}.json")])
        assert res.exit_code == 0, res.output
        runs.append(json.loads((tmp_path / f"{out}.json").read_text()))
    first, again = runs
    assert first["fid_weights"] == str(weights) and first["n_images"] == 4
    assert np.isfinite(first["metrics"]["fid"]) and first["metrics"]["fid"] >= 0
    assert first["ci95"]["fid"] is not None
    assert first["references"], "the SR eval scores references (bicubic, SPAN)"
    for key, row in first["references"].items():
        assert np.isfinite(row["metrics"]["fid"]), key
        assert set(first["paired"][key]["fid"]) >= {"diff", "lo", "hi", "n"} and first["paired"][key]["fid"]["n"] == 4
        assert row["metrics"]["fid"] == pytest.approx(again["references"][key]["metrics"]["fid"])
    assert first["metrics"]["fid"] == pytest.approx(again["metrics"]["fid"])
    assert again["reference_cache"]["batches_reused"] >= 1
    header = Path(first["per_image_csv"]).read_text().splitlines()[0]
    assert "fid" not in header  # a split-level metric: no per-image column, no feature dump
