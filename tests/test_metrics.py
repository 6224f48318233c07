"""facegan.metrics.quality against scikit-image on real photos, plus hand-computed hole metrics.

Real images: the photos scikit-image ships (always available offline) and, when the team's
shared folder is present, real faces from its fixtures. Each is degraded the ways restored
faces differ from their originals (JPEG re-encoding, blur, noise) to get realistic pairs.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from skimage import color, data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from facegan.metrics import quality as metrics
from facegan.metrics.quality import (
    METRIC_CONVENTIONS, hole_l1, hole_psnr, identity_cosine, psnr, rgb_to_y, ssim, to_uint8,
)

TOL = 1e-4  # the brief's bound; observed agreement is ~1e-12


# --------------------------------------------------------------------------- helpers


def jpeg(img: np.ndarray, quality: int = 25) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def blur(img: np.ndarray, radius: float = 1.5) -> np.ndarray:
    return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius)))


def noise(img: np.ndarray, sigma: float = 8.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(img + rng.normal(0.0, sigma, img.shape)), 0, 255).astype(np.uint8)


DEGRADATIONS = {"jpeg": jpeg, "blur": blur, "noise": noise}


def sk_psnr(a: np.ndarray, b: np.ndarray) -> float:
    return peak_signal_noise_ratio(a, b, data_range=255)


def sk_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """The docs/design.md reference; colour images per channel, Y (2-D float) images directly."""
    return structural_similarity(
        a,
        b,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=-1 if a.ndim == 3 else None,
    )


def sk_y(img: np.ndarray) -> np.ndarray:
    return color.rgb2ycbcr(img)[..., 0]


def crop(img: np.ndarray, border: int) -> np.ndarray:
    return img[border:-border, border:-border] if border else img


def assert_matches_skimage(a: np.ndarray, b: np.ndarray, border: int = 0) -> None:
    """All four of PSNR, SSIM, PSNR-Y, SSIM-Y of one pair agree with scikit-image."""
    ca, cb = crop(a, border), crop(b, border)
    ya, yb = sk_y(ca), sk_y(cb)
    assert psnr(a, b, crop_border=border) == pytest.approx(sk_psnr(ca, cb), abs=TOL)
    assert ssim(a, b, crop_border=border) == pytest.approx(sk_ssim(ca, cb), abs=TOL)
    assert psnr(a, b, border, y_channel=True) == pytest.approx(sk_psnr(ya, yb), abs=TOL)
    assert ssim(a, b, border, y_channel=True) == pytest.approx(sk_ssim(ya, yb), abs=TOL)


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


# --------------------------------------------------------------------------- skimage photos


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    """Photos bundled inside the scikit-image package (no download), cut to keep tests fast."""
    return {
        "astronaut": data.astronaut()[:256, 128:384],
        "chelsea": data.chelsea()[50:250, 100:300],
        "coffee": data.coffee()[100:292, 200:456],
    }


@pytest.mark.parametrize("degrade", sorted(DEGRADATIONS))
@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee"])
def test_single_image_matches_skimage(photos, name, degrade):
    a = photos[name]
    b = DEGRADATIONS[degrade](a)
    assert psnr(a, b) < 40  # a real degradation, not a near copy
    assert isinstance(psnr(a, b), float) and isinstance(ssim(a, b), float)
    assert_matches_skimage(a, b)


@pytest.mark.parametrize("border", [3, 8])
def test_crop_border_matches_skimage_on_cropped_images(photos, border):
    a = photos["chelsea"]
    b = jpeg(blur(a, 1.0), 40)
    assert_matches_skimage(a, b, border)
    assert psnr(a, b, crop_border=border) != psnr(a, b)


def test_rgb_to_y_matches_skimage_rgb2ycbcr(photos):
    for img in photos.values():
        y = rgb_to_y(img)
        assert y.dtype == np.float64 and y.shape == img.shape[:2]
        np.testing.assert_allclose(y, sk_y(img), rtol=0, atol=1e-10)
        assert 16.0 <= y.min() and y.max() <= 235.0
    assert not np.allclose(y, np.round(y))  # not rounded to integers


def test_rgb_to_y_is_the_matlab_formula_on_pure_colours():
    colours = np.array(
        [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 100, 200]],
        dtype=np.uint8,
    )
    expected = [16.0, 235.0, 16 + 65.481, 16 + 128.553, 16 + 24.966]
    expected.append(16 + (65.481 * 10 + 128.553 * 100 + 24.966 * 200) / 255)
    y = rgb_to_y(colours[None])[0]
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-12)
    # Full-range luma (0.299 R + ...) would give 76.245 for pure red, not 81.481.
    assert abs(y[2] - 0.299 * 255) > 5


def test_psnr_y_uses_the_matlab_luma():
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 255
    black = np.zeros_like(red)
    assert psnr(red, black, y_channel=True) == pytest.approx(20 * np.log10(255 / 65.481))
    # the full-range luma would have given 20 log10(255 / 76.245), ~1.5 dB less
    assert psnr(red, black, y_channel=True) - 20 * np.log10(255 / (0.299 * 255)) > 1.0
    assert psnr(red, black) == pytest.approx(10 * np.log10(3.0))  # RGB: MSE = 255^2 / 3


def test_batch_equals_per_image_and_skimage(photos, monkeypatch):
    a = photos["astronaut"]
    refs = np.stack([a, a, a, a])
    outs = np.stack([jpeg(a, 15), blur(a, 2.0), noise(a, 12.0), jpeg(noise(a, 4.0), 60)])
    for y_channel in (False, True):
        p = psnr(refs, outs, y_channel=y_channel)
        s = ssim(refs, outs, y_channel=y_channel)
        assert p.dtype == np.float64 and p.shape == (4,) and s.shape == (4,)
        np.testing.assert_allclose(p, [psnr(r, o, y_channel=y_channel) for r, o in zip(refs, outs)])
        np.testing.assert_allclose(s, [ssim(r, o, y_channel=y_channel) for r, o in zip(refs, outs)])
    np.testing.assert_allclose(ssim(refs, outs), [sk_ssim(a, o) for o in outs], atol=TOL)
    # the result does not depend on how the batch is chunked internally
    monkeypatch.setattr(metrics, "_SSIM_CHUNK_VALUES", 1)
    monkeypatch.setattr(metrics, "_CHUNK_VALUES", 1)
    np.testing.assert_allclose(ssim(refs, outs), [sk_ssim(a, o) for o in outs], atol=TOL)
    np.testing.assert_allclose(psnr(refs, outs), [sk_psnr(a, o) for o in outs], atol=TOL)


def test_identical_images():
    a = data.coffee()[:64, :64]
    assert psnr(a, a) == np.inf and psnr(a, a, y_channel=True) == np.inf
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    batch = np.stack([a, noise(a)])
    p = psnr(batch, np.stack([a, a]))
    assert p[0] == np.inf and np.isfinite(p[1])


# --------------------------------------------------------------------------- shared real faces


def test_shared_faces_match_skimage(fixtures_dir):
    """Real faces (GFPGAN 256x256 crops, re-aligned CelebA 178x218), degraded, as batches."""
    for sub, count in (("gfpgan_cropped_faces_256", 2), ("celeba_realigned_178x218_heldout_ids", 3)):
        files = sorted((fixtures_dir / sub).glob("*.jpg"))[:count]
        assert len(files) == count, f"fixtures missing in {sub}"
        refs = np.stack([load_rgb(f) for f in files])
        outs = np.stack([fn(r) for r, fn in zip(refs, (jpeg, blur, noise))])
        for border in (0, 4, 8):
            for y_channel in (False, True):
                conv = sk_y if y_channel else (lambda im: im)
                pairs = [(conv(crop(r, border)), conv(crop(o, border))) for r, o in zip(refs, outs)]
                np.testing.assert_allclose(
                    psnr(refs, outs, crop_border=border, y_channel=y_channel),
                    [sk_psnr(r, o) for r, o in pairs],
                    rtol=0,
                    atol=TOL,
                )
                np.testing.assert_allclose(
                    ssim(refs, outs, crop_border=border, y_channel=y_channel),
                    [sk_ssim(r, o) for r, o in pairs],
                    rtol=0,
                    atol=TOL,
                )


# --------------------------------------------------------------------------- hole metrics


def test_hole_metrics_by_hand():
    a = np.zeros((2, 2, 3), np.uint8)
    b = np.zeros((2, 2, 3), np.uint8)
    mask = np.array([[1, 0], [0, 1]], np.uint8)  # holes at (0, 0) and (1, 1)
    a[0, 0] = [10, 20, 30]
    b[0, 0] = [13, 20, 24]  # |err| 3, 0, 6
    a[1, 1] = [0, 0, 9]  # |err| 0, 0, 9
    a[1, 0] = [255, 0, 0]  # outside the hole: ignored
    b[0, 1] = [0, 0, 51]  # outside the hole: ignored
    # hole values: 3, 0, 6, 0, 0, 9 -> mean 3 on 0..255 -> 3/255 on 0..1, x100
    assert hole_l1(a, b, mask) == pytest.approx(100 * 3 / 255)
    mse = (9 + 36 + 81) / 6
    assert hole_psnr(a, b, mask) == pytest.approx(10 * np.log10(255**2 / mse))
    # bool and float masks mean the same (nonzero = hole)
    assert hole_l1(a, b, mask.astype(bool)) == hole_l1(a, b, mask)
    assert hole_l1(a, b, mask * 0.5) == hole_l1(a, b, mask)
    # with the whole image as hole, hole PSNR is plain PSNR
    full = np.ones((2, 2))
    assert hole_psnr(a, b, full) == pytest.approx(psnr(a, b))


def test_hole_metrics_batch_and_edge_cases():
    rng = np.random.default_rng(1)
    a = data.chelsea()[:32, :32]
    b = noise(a, 20.0)
    batch_a, batch_b = np.stack([a, b, a]), np.stack([b, b, a])
    masks = rng.random((3, 32, 32)) > 0.6
    l1, hp = hole_l1(batch_a, batch_b, masks), hole_psnr(batch_a, batch_b, masks)
    assert l1.dtype == np.float64 and l1.shape == (3,)
    for i in range(3):
        assert l1[i] == pytest.approx(hole_l1(batch_a[i], batch_b[i], masks[i]))
        assert hp[i] == pytest.approx(hole_psnr(batch_a[i], batch_b[i], masks[i]))
    assert l1[1] == 0 and hp[1] == np.inf and l1[2] == 0  # identical images
    # reference: numpy on the hole pixels directly
    err = np.abs(a.astype(float) - b.astype(float))[masks[0]]
    assert l1[0] == pytest.approx(100 * err.mean() / 255, rel=1e-12)
    # one HxW mask applies to every image of a batch
    np.testing.assert_allclose(hole_l1(batch_a, batch_b, masks[0]), [l1[0], 0.0, 0.0])
    # no hole at all: undefined, reported as nan rather than a number
    assert np.isnan(hole_l1(a, b, np.zeros((32, 32)))) and np.isnan(hole_psnr(a, b, np.zeros((32, 32))))


# --------------------------------------------------------------------------- identity, uint8


def test_identity_cosine():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 512))
    y = rng.normal(size=(5, 512))
    ref = torch.nn.functional.cosine_similarity(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    got = identity_cosine(x, y)
    assert got.dtype == np.float64 and got.shape == (5,)
    np.testing.assert_allclose(got, ref, atol=1e-12)
    # torch input (float32, any scale) and numpy agree; scale does not matter
    got_t = identity_cosine(torch.from_numpy(x).float() * 7, torch.from_numpy(y).float())
    np.testing.assert_allclose(got_t, ref, atol=1e-6)
    e = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(identity_cosine(e, [[5.0, 0.0], [1.0, 0.0], [-3.0, -4.0]]), [1, 0, -1])
    assert identity_cosine(np.array([1.0, 1.0]), np.array([1.0, 0.0]))[0] == pytest.approx(2**-0.5)


def test_to_uint8():
    img = data.astronaut()[:16, :24]
    t = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1.0  # NCHW in [-1, 1]
    out = to_uint8(t)
    assert out.dtype == np.uint8 and out.shape == (1, 16, 24, 3)
    np.testing.assert_array_equal(out[0], img)  # exact round trip
    np.testing.assert_array_equal(to_uint8(t[0]), img)  # CHW -> HWC
    vals = torch.tensor([-3.0, -1.0, -0.999, 0.0, 0.5, 1.0, 2.0]).view(1, 1, 1, 7)
    np.testing.assert_array_equal(to_uint8(vals)[0, 0, :, 0], [0, 0, 0, 128, 191, 255, 255])


# --------------------------------------------------------------------------- errors, docs


def test_input_errors():
    a = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        psnr(a.astype(np.float32), a)
    with pytest.raises(ValueError, match="same shape"):
        ssim(a, np.zeros((16, 17, 3), np.uint8))
    with pytest.raises(ValueError, match="same shape"):
        psnr(a, a[None])
    with pytest.raises(ValueError, match="HxWx3"):
        psnr(a[..., :1], a[..., :1])
    with pytest.raises(ValueError, match="crop_border"):
        psnr(a, a, crop_border=8)
    with pytest.raises(ValueError, match="crop_border"):
        psnr(a, a, crop_border=-1)
    with pytest.raises(ValueError, match="11x11"):
        ssim(a, a, crop_border=3)
    with pytest.raises(ValueError, match="mask"):
        hole_l1(a, a, np.ones((16, 15)))
    with pytest.raises(ValueError, match="mask"):
        hole_psnr(np.stack([a, a]), np.stack([a, a]), np.ones((3, 16, 16)))
    with pytest.raises(ValueError, match="uint8"):
        rgb_to_y(a.astype(float))
    with pytest.raises(ValueError, match="same shape"):
        identity_cosine(np.ones((2, 4)), np.ones((2, 5)))
    with pytest.raises(ValueError, match="zeros"):
        identity_cosine(np.zeros((1, 4)), np.ones((1, 4)))
    with pytest.raises(ValueError, match="float"):
        to_uint8(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="torch tensor"):
        to_uint8(np.zeros((1, 3, 4, 4)))


def test_conventions_text_states_the_numbers():
    for needle in ("255^2", "65.481", "128.553", "24.966", "sigma 1.5", "window 11", "x100"):
        assert needle in METRIC_CONVENTIONS
    for fn in (psnr, ssim, rgb_to_y, hole_l1, hole_psnr, identity_cosine, to_uint8):
        assert fn.__doc__ and len(fn.__doc__) > 80


# --------------------------------------------------------------------------- periodic pattern


def _smooth_faces(n: int = 8, size: int = 64, seed: int = 0) -> np.ndarray:
    """Smooth random images (blurred noise), uint8 NxHxWx3: no period of their own."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    x = gaussian_filter(rng.normal(size=(n, size, size, 3)), sigma=(0, 3, 3, 0))
    x = (x - x.min()) / (x.max() - x.min())
    return np.round(40 + 170 * x).astype(np.uint8)


def test_periodic_peak_finds_a_faint_period_4_grid_and_nothing_in_smooth_images():
    smooth = _smooth_faces()
    assert metrics.periodic_peak(smooth, 4) < 3
    grid = np.zeros((64, 64), dtype=np.int16)
    grid[::4, :] += 3  # a faint line every 4 rows, 3 levels of 255: what pixel shuffle leaves
    gridded = np.clip(smooth.astype(np.int16) + grid[None, :, :, None], 0, 255).astype(np.uint8)
    assert metrics.periodic_peak(gridded, 4) > 10 * metrics.periodic_peak(smooth, 4)
    # a grid of period 8 shows at 8 px, not at 16 px (4 cycles per side is no harmonic of 8)
    grid8 = np.zeros((64, 64), dtype=np.int16)
    grid8[:, ::8] += 3
    gridded8 = np.clip(smooth.astype(np.int16) + grid8[None, :, :, None], 0, 255).astype(np.uint8)
    assert metrics.periodic_peak(gridded8, 8) > 10
    assert metrics.periodic_peak(gridded8, 16) < 3


def test_periodic_peak_of_flat_images_is_one():
    assert metrics.periodic_peak(np.full((2, 16, 16, 3), 100, np.uint8), 4) == 1.0


def test_periodic_peak_refuses_a_period_that_does_not_divide_the_image():
    with pytest.raises(ValueError, match="divide"):
        metrics.periodic_peak(_smooth_faces(n=2), 5)
    with pytest.raises(ValueError, match="at least 2"):
        metrics.periodic_peak(_smooth_faces(n=2), 1)
