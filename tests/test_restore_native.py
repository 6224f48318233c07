"""`facegan restore` at the photo's own resolution: which face model a face gets, the learned
background, fills blended in the gradient domain with the photo's grain, grey photos, output
formats and the face folders."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from facegan.cli import app
from facegan.restoring.face_models import FaceModels
from facegan.restoring.fill_blend import grain_sigma, is_grey, match_grain, seamless

from helpers import REPO

runner = CliRunner()
PHOTO = REPO / "facegan" / "assets" / "sample_faces" / "deepface" / "img11.jpg"


class _Fake:
    """Just what FaceModels reads of a restorer."""

    def __init__(self, input_size: int, size: int = 128) -> None:
        self.input_size, self.size = input_size, size
        self.task = SimpleNamespace(name="sr", scale=size // input_size)


@pytest.mark.parametrize("face, scale, want", [
    (12, 4, None), (14, 4, None), (15.6, 4, 16), (16, 4, 16), (16.3, 4, 16), (17, 4, None), (24, 4, None),
    (30, 4, None), (31.5, 4, 32), (32, 4, 32), (33, 4, None), (48, 4, None), (256, 4, None), (56, 2, None),
    (63, 2, 64), (64, 2, 64), (65, 2, None), (16, 8, 16), (17, 8, None), (14, 2, None),
])
def test_each_face_gets_the_model_that_never_shrinks_it(face, scale, want):
    """Never shrunk, at (almost) the model's own size, never enlarged after it."""
    models = FaceModels([_Fake(64), _Fake(16), _Fake(32)])
    chosen = models.choose(face, scale).restorer
    assert (chosen.input_size if chosen else None) == want


def test_seamless_meets_the_photo_and_keeps_the_fill_gradients():
    h, w = 64, 96
    yy, xx = np.mgrid[:h, :w].astype(float)
    photo = np.repeat((60 + 0.8 * xx)[..., None], 3, axis=2)  # a ramp
    fill = photo + 40 + 10 * np.sin(yy / 3)[..., None]  # brighter, with its own pattern
    region = np.zeros((h, w), bool)
    region[16:48, 24:72] = True
    out = seamless(fill, photo, region)
    ring = np.zeros_like(region)
    ring[16:48, 24:72] = True
    ring[18:46, 26:70] = False  # the region's two outermost pixels
    assert np.abs(out - photo)[ring].mean() < 6  # the fill's +40 is gone at the border
    assert np.abs(np.abs(fill - photo)[ring].mean() - 40) < 8  # (it was there)
    inner = np.zeros_like(region)
    inner[24:40, 36:60] = True
    g_out, g_fill = np.diff(out[..., 0], axis=0), np.diff(fill[..., 0], axis=0)
    assert np.corrcoef(g_out[inner[1:]], g_fill[inner[1:]])[0, 1] > 0.95  # its pattern is kept
    assert np.array_equal(out[~region], photo[~region])


def test_match_grain_adds_the_photo_grain_only():
    rng = np.random.default_rng(0)
    photo = 120 + rng.normal(0, 6, (80, 80, 1)).repeat(3, axis=2)
    region = np.zeros((80, 80), bool)
    region[20:60, 20:60] = True
    clean = np.full((80, 80, 3), 120.0)
    out = match_grain(clean, photo, region, np.random.default_rng(1))
    target = grain_sigma(photo, ~region)
    assert grain_sigma(out, region) == pytest.approx(target, rel=0.2)
    assert np.array_equal(out[~region], clean[~region])
    assert np.allclose(out[..., 0], out[..., 2])  # luma noise: a grey fill stays grey
    assert match_grain(photo, clean, region, np.random.default_rng(1)) is photo  # no grain to add


def test_grey_photo_stays_grey_and_jpeg_in_gives_jpeg_out(tmp_path):
    grey = Image.open(PHOTO).convert("L").convert("RGB")
    assert is_grey(np.asarray(grey))
    grey.save(tmp_path / "grey.jpg", quality=95)
    res = runner.invoke(app, ["restore", str(tmp_path / "grey.jpg"), "--mask", "eyes", "--out", str(tmp_path / "o"),
                              "--device", "cpu", "--save-faces"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "o" / "grey_restored.jpg"
    assert Image.open(out).format == "JPEG"
    rgb = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert (rgb.max(-1) - rgb.min(-1)).max() <= 6  # JPEG's own chroma noise on a grey photo
    for folder in ("cropped_faces", "restored_faces", "masks"):
        assert (tmp_path / "o" / folder / "grey_00.png").is_file(), folder
    res = runner.invoke(app, ["restore", str(tmp_path / "grey.jpg"), "--mask", "eyes", "--out", str(tmp_path / "p"),
                              "--device", "cpu", "--ext", "png"])
    assert res.exit_code == 0 and Image.open(tmp_path / "p" / "grey_restored.png").format == "PNG"
    bad = runner.invoke(app, ["restore", str(tmp_path / "grey.jpg"), "--ext", "gif", "--out", str(tmp_path / "q")])
    assert bad.exit_code == 2 and "--ext must be one of png, jpg, webp" in bad.output
    assert not (tmp_path / "q").exists()


def test_tiled_background_equals_one_pass(monkeypatch):
    import torch

    import facegan.restoring.background as background
    from facegan.models.span import span_upscale

    photo = np.asarray(Image.open(PHOTO).convert("RGB"))[100:160, 60:140].copy()
    monkeypatch.setattr(background, "TILE", 32)
    tiled = background.upscale_photo(photo, 2)
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 127.5 - 1
    whole = ((span_upscale(x, 2)[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    assert tiled.shape == (120, 160, 3)
    assert np.abs(tiled.astype(int) - whole).max() <= 1


def test_only_center_face_picks_the_face_nearest_the_centre(tmp_path):
    # two faces side by side, the smaller one nearer the centre
    a = Image.open(PHOTO).convert("RGB")
    small = a.resize((a.width * 3 // 4, a.height * 3 // 4))
    canvas = Image.new("RGB", (a.width + small.width + 60, a.height), "white")
    canvas.paste(a, (0, 0))
    canvas.paste(small, (a.width + 20, (a.height - small.height) // 2))
    path = tmp_path / "two.png"
    canvas.crop((60, 0, canvas.width, canvas.height)).save(path)
    crops = {}
    for flag in ("--only-center-face", "--face=largest"):
        out = tmp_path / flag.strip("-")
        res = runner.invoke(app, ["restore", str(path), "--mask", "eyes", "--out", str(out), "--device", "cpu",
                                  flag, "--save-faces"])
        assert res.exit_code == 0 and "1 face(s)" in res.output, res.output
        crops[flag] = np.asarray(Image.open(out / "cropped_faces" / "two_00.png")).astype(int)
    # the centre face is the smaller copy (its aligned crop is resampled from fewer pixels)
    assert np.abs(crops["--only-center-face"] - crops["--face=largest"]).mean() > 1


def test_a_named_model_runs_as_it_is_and_restores_choice_runs_the_pair(tmp_path):
    from facegan.checkpoints.bundled import find_model

    if find_model("sr4-128-gan") is None:
        pytest.skip("sr4-128-gan is not bundled in this checkout")
    Image.open(PHOTO).convert("RGB").resize((32, 32), Image.Resampling.BICUBIC).save(tmp_path / "face.png")
    base = ["restore", str(tmp_path / "face.png"), "--aligned", "--task", "sr", "--device", "cpu"]
    chosen = " ".join(runner.invoke(app, [*base, "--out", str(tmp_path / "a")]).output.split())
    named = " ".join(runner.invoke(app, [*base, "--checkpoint", "sr4-128", "--out", str(tmp_path / "b")]).output.split())
    assert "32 px face: sr4-128-gan-fidelity0.5" in chosen
    assert "32 px face: sr4-128 (32 -> 128 px)" in named and "fidelity" not in named
