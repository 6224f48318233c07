"""SR degradations: shapes, 8-bit levels, antialiasing (against PIL), blind options, determinism."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from facegan.core.errors import FaceganError
from facegan.data import degrade
from facegan.data.loader import to_model_range
from facegan.data.prepare import SAMPLE_DIR
from facegan.tasks.recipes import validate_recipe

BLIND = SimpleNamespace(blur_sigma=(0.5, 2.0), noise_std=(2.0, 10.0), jpeg_quality=(30, 90))
PLAIN = SimpleNamespace(blur_sigma=(0.0, 0.0), noise_std=(0.0, 0.0), jpeg_quality=None)


def _faces(size: int = 64, n: int = 3) -> torch.Tensor:
    files = sorted(SAMPLE_DIR.glob("*/*.png"))[:n]
    arr = np.stack([np.asarray(Image.open(f).convert("RGB").resize((size, size), Image.BICUBIC)) for f in files])
    return to_model_range(torch.from_numpy(arr))


def _u8(x: torch.Tensor) -> np.ndarray:
    return ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_bicubic_matches_pil_antialiased_bicubic(scale):
    hr = _faces(64)
    lr = degrade.bicubic_lr(hr, scale)
    assert lr.shape == (3, 3, 64 // scale, 64 // scale)
    # on 8-bit levels exactly
    assert torch.equal(lr, degrade.quantize(lr))
    pil = np.stack([np.asarray(Image.fromarray(a).resize((64 // scale,) * 2, Image.BICUBIC)) for a in _u8(hr)])
    diff = np.abs(_u8(lr).astype(int) - pil.astype(int))
    # PIL rounds to 8 bits between its horizontal and vertical passes: a level or two apart at most
    assert diff.max() <= 2 and diff.mean() < 0.3, (diff.max(), diff.mean())


def test_reduction_is_antialiased():
    # Pixel noise has its energy above the Nyquist frequency of a x8 reduction: an antialiased
    # reduction averages it away (~64 pixels per output pixel), plain sampling keeps it (aliasing).
    noise = (torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)) - 0.5) * 1.6
    assert degrade.bicubic_lr(noise, 8).std() < 0.15 * noise.std()
    aliased = torch.nn.functional.interpolate(noise, scale_factor=1 / 8, mode="bicubic", antialias=False)
    assert aliased.std() > 0.5 * noise.std()


def test_upscales_and_reference():
    lr = degrade.bicubic_lr(_faces(64), 4)
    near = degrade.upscale_nearest(lr, 4)
    assert near.shape == (3, 3, 64, 64) and torch.equal(near[..., ::4, ::4], lr)
    bic = degrade.upscale_bicubic(lr, 4)
    assert bic.shape == (3, 3, 64, 64) and bic.min() >= -1 and bic.max() <= 1


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="cannot be reduced by 8"):
        degrade.bicubic_lr(torch.zeros(1, 3, 60, 60), 8)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        degrade.bicubic_lr(torch.zeros(3, 64, 64), 2)


def test_plain_degradation_is_bicubic_and_draws_nothing():
    hr = _faces(64)
    g = torch.Generator().manual_seed(1)
    state = g.get_state()
    assert torch.equal(degrade.degrade(hr, 4, PLAIN, g), degrade.bicubic_lr(hr, 4))
    assert torch.equal(degrade.degrade(hr, 4, None, None), degrade.bicubic_lr(hr, 4))
    assert torch.equal(g.get_state(), state)


def test_blind_degradation_is_deterministic_per_generator():
    hr = _faces(64)
    a = degrade.degrade(hr, 4, BLIND, torch.Generator().manual_seed(7))
    b = degrade.degrade(hr, 4, BLIND, torch.Generator().manual_seed(7))
    c = degrade.degrade(hr, 4, BLIND, torch.Generator().manual_seed(8))
    assert a.shape == (3, 3, 16, 16)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a, degrade.quantize(a))
    assert not torch.equal(a, degrade.bicubic_lr(hr, 4))


def test_gaussian_blur_per_image():
    x = torch.zeros(2, 3, 31, 31)
    x[:, :, 15, 15] = 1.0
    out = degrade.gaussian_blur(x, torch.tensor([0.0, 2.0]))
    assert torch.allclose(out[0], x[0])  # sigma 0: unchanged
    assert abs(out[1].sum().item() - 3.0) < 1e-4  # mass preserved (3 channels)
    profile = out[1, 0, 15]
    sigma = np.sqrt(((np.arange(31) - 15) ** 2 * profile.numpy()).sum() / profile.sum().item())
    assert abs(sigma - 2.0) < 0.05


def test_noise_level_and_jpeg():
    grey = torch.zeros(64, 3, 16, 16)
    spec = SimpleNamespace(blur_sigma=(0.0, 0.0), noise_std=(8.0, 8.0), jpeg_quality=None)
    noisy = degrade.degrade(torch.zeros(64, 3, 64, 64), 4, spec, torch.Generator().manual_seed(0))
    std255 = (noisy * 127.5).std().item()
    assert 7.0 < std255 < 9.0, std255
    # JPEG: low quality changes a face more than high quality does, and keeps the shape/range
    lr = degrade.bicubic_lr(_faces(128, 2), 4)
    low = degrade.jpeg(lr, torch.tensor([10, 10]))
    high = degrade.jpeg(lr, torch.tensor([95, 95]))
    assert low.shape == lr.shape and low.min() >= -1 and low.max() <= 1
    assert (low - lr).abs().mean() > 2 * (high - lr).abs().mean()
    assert degrade.jpeg(grey, torch.full((64,), 50)).shape == grey.shape


@pytest.mark.parametrize(
    "degradation, expected",
    [
        ({"blur_sigma": [2, 1]}, "low <= high"),
        ({"noise_std": [-1, 3]}, "must be >= 0"),
        ({"jpeg_quality": [0, 90]}, "within 1..100"),
        ({"jpeg": [30, 90]}, "data.degradation.jpeg: unknown key (expected one of: blur_sigma, noise_std, jpeg_quality)"),
    ],
)
def test_degradation_keys_are_validated(degradation, expected):
    with pytest.raises(FaceganError) as err:
        validate_recipe({"task": "sr", "data": {"degradation": degradation}, "train": {"steps": 1}})
    assert expected in str(err.value)
