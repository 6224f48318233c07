"""Occlusion masks: shapes, placement from landmarks, determinism, mask files."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PIL import Image

from facegan.core.errors import FaceganError
from facegan.data.mask_files import load_mask_file, load_mask_for_photo, parse_mask_spec
from facegan.data.masks import (
    LANDMARK_TYPES, MASK_TYPES, eval_masks, landmarks_or_template, make_masks, make_mixed_masks,
)
from facegan.faces.geometry import template_points

SIZE = 64
# Sensible hole-fraction ranges per kind at SIZE on the jittered test faces (min, max).
HOLE_RANGE = {
    "center": (0.2, 0.3),
    "half": (0.5, 0.5),
    "eyes": (0.025, 0.12),
    "mouth": (0.02, 0.12),
    "box": (0.035, 0.26),
    "freeform": (0.01, 0.6),
    "glasses": (0.015, 0.08),
    "facemask": (0.04, 0.3),
}
RANDOM_KINDS = ("box", "freeform")


def faces(n: int, size: int = SIZE, seed: int = 0, spread: float = 0.03) -> torch.Tensor:
    """Template landmarks with a random similarity jitter per face: (n, 5, 2)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.as_tensor(template_points(size), dtype=torch.float32)
    centre = base.mean(0)
    angle = (torch.rand(n, generator=g) - 0.5) * 0.2  # +-0.1 rad
    scale = 1 + (torch.rand(n, generator=g) - 0.5) * 0.2
    shift = (torch.rand(n, 2, generator=g) - 0.5) * 2 * spread * size
    cos, sin = torch.cos(angle), torch.sin(angle)
    rot = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)
    pts = (base - centre) @ rot.transpose(1, 2) * scale[:, None, None]
    return pts + centre + shift[:, None, :]


def value_at(masks: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Mask values (n, k) at the pixels holding (n, k, 2) pixel-index points."""
    idx = points.round().long()
    n = torch.arange(masks.shape[0])[:, None]
    return masks[n, 0, idx[..., 1], idx[..., 0]]


def shifted(mask: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """An (H, W) mask moved by (dx, dy) pixels; what leaves the image is lost."""
    out = torch.zeros_like(mask)
    h, w = mask.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = mask[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


@pytest.mark.parametrize("kind", MASK_TYPES)
@pytest.mark.parametrize("random", [False, True])
def test_every_kind_is_a_valid_mask(kind: str, random: bool) -> None:
    g = torch.Generator().manual_seed(1)
    lm = faces(16) if kind in LANDMARK_TYPES else None
    m = make_masks(kind, 16, SIZE, landmarks=lm, generator=g, random=random)
    assert m.shape == (16, 1, SIZE, SIZE) and m.dtype == torch.float32
    assert set(m.unique().tolist()) <= {0.0, 1.0}
    frac = m.mean((1, 2, 3))
    lo, hi = HOLE_RANGE[kind]
    assert frac.min() >= max(lo, 0.01) - 1e-6, (kind, frac.min())
    assert frac.max() <= hi + 1e-6, (kind, frac.max())


def test_center_is_exactly_the_middle_half_square() -> None:
    m = make_masks("center", 3, 64, random=False)
    want = torch.zeros(64, 64)
    want[16:48, 16:48] = 1
    assert torch.equal(m[:, 0], want.expand(3, 64, 64))
    jittered = make_masks("center", 8, 64, generator=torch.Generator().manual_seed(0))
    assert (jittered.sum((1, 2, 3)) == 32 * 32).all()  # same square, moved a little
    assert not torch.equal(jittered, m[:1].expand(8, -1, -1, -1))


def test_half_covers_exactly_one_half() -> None:
    m = make_masks("half", 2, 64, random=False)
    want = torch.zeros(64, 64)
    want[:, :32] = 1
    assert torch.equal(m[:, 0], want.expand(2, 64, 64))
    r = make_masks("half", 64, 64, generator=torch.Generator().manual_seed(0))[:, 0]
    left = r[:, :, :32].mean((1, 2)) == 1
    right = r[:, :, 32:].mean((1, 2)) == 1
    assert (left ^ right).all() and left.any() and right.any()
    assert (r.mean((1, 2)) == 0.5).all()


@pytest.mark.parametrize("random", [False, True])
def test_eyes_and_mouth_cover_their_landmarks_only(random: bool) -> None:
    lm = faces(32)
    g = torch.Generator().manual_seed(2)
    eyes = make_masks("eyes", 32, SIZE, landmarks=lm, generator=g, random=random)
    mouth = make_masks("mouth", 32, SIZE, landmarks=lm, generator=g, random=random)
    assert (value_at(eyes, lm[:, :2]) == 1).all()
    assert (value_at(eyes, lm[:, 3:]) == 0).all()
    assert (value_at(mouth, lm[:, 3:]) == 1).all()
    assert (value_at(mouth, lm[:, :2]) == 0).all()


def test_glasses_cover_eyes_and_facemask_covers_nose_and_mouth() -> None:
    lm = faces(32)
    for random in (False, True):
        g = torch.Generator().manual_seed(3)
        glasses = make_masks("glasses", 32, SIZE, landmarks=lm, generator=g, random=random)
        mask = make_masks("facemask", 32, SIZE, landmarks=lm, generator=g, random=random)
        assert (value_at(glasses, lm[:, :2]) == 1).all()
        assert (value_at(glasses, lm[:, 2:]) == 0).all()
        assert (value_at(mask, lm[:, 2:]) == 1).all()
        assert (value_at(mask, lm[:, :2]) == 0).all()


@pytest.mark.parametrize("kind", LANDMARK_TYPES)
def test_landmark_masks_follow_the_face(kind: str) -> None:
    lm = landmarks_or_template(None, 1, SIZE, "cpu")
    base = make_masks(kind, 1, SIZE, landmarks=lm, random=False)[0, 0]
    for dx, dy in ((7, 0), (0, 7), (-5, -4)):
        moved = make_masks(kind, 1, SIZE, landmarks=lm + torch.tensor([dx, dy]), random=False)
        assert torch.equal(moved[0, 0], shifted(base, dx, dy)), (dx, dy)
        assert not torch.equal(moved[0, 0], base)
    # Per-face placement inside one batch: each sample matches its own single-face mask.
    batch = faces(4, spread=0.06)
    together = make_masks(kind, 4, SIZE, landmarks=batch, random=False)
    for i in range(4):
        alone = make_masks(kind, 1, SIZE, landmarks=batch[i : i + 1], random=False)
        assert torch.equal(together[i], alone[0])
    assert not torch.equal(together[0], together[1])


def test_landmarks_off_the_image_fall_back_to_the_template() -> None:
    lm = landmarks_or_template(None, 3, SIZE, "cpu").clone()
    lm[0] += 1000  # off the image
    lm[1] = float("nan")
    lm[2, 1] = lm[2, 0]  # both eyes at one point
    for kind in LANDMARK_TYPES:
        m = make_masks(kind, 3, SIZE, landmarks=lm, random=False)
        want = make_masks(kind, 1, SIZE, random=False)
        assert torch.equal(m[:2], want.expand(2, -1, -1, -1)), kind
        assert m[2].mean() >= 0.01


def test_masks_near_the_border_are_clipped() -> None:
    lm = landmarks_or_template(None, 1, SIZE, "cpu") - torch.tensor([0.0, 30.0])  # eyes at the top
    m = make_masks("eyes", 1, SIZE, landmarks=lm, random=False)[0, 0]
    assert m[0].sum() > 0 and m.mean() >= 0.01


def test_seeded_generator_reproduces_masks() -> None:
    lm = faces(8)
    for kind in MASK_TYPES:
        a = make_masks(kind, 8, SIZE, landmarks=lm, generator=torch.Generator().manual_seed(5))
        b = make_masks(kind, 8, SIZE, landmarks=lm, generator=torch.Generator().manual_seed(5))
        c = make_masks(kind, 8, SIZE, landmarks=lm, generator=torch.Generator().manual_seed(6))
        assert torch.equal(a, b), kind
        assert not torch.equal(a, c), kind


def test_freeform_masks_vary_and_look_like_strokes() -> None:
    m = make_masks("freeform", 64, SIZE, generator=torch.Generator().manual_seed(0))
    frac = m.mean((1, 2, 3))
    assert 0.08 < frac.mean() < 0.35
    assert len(torch.unique(m.flatten(1), dim=0)) == 64
    # A stroke is not a box: the hole does not fill its bounding box.
    rows, cols = m[:, 0].amax(2), m[:, 0].amax(1)
    assert (m.sum((1, 2, 3)) < rows.sum(1) * cols.sum(1)).float().mean() > 0.9


def test_mixed_masks_mix_kinds() -> None:
    g = torch.Generator().manual_seed(0)
    m = make_mixed_masks(["center", "half"], 64, SIZE, generator=g)
    frac = m.mean((1, 2, 3))
    is_half = frac == 0.5
    is_center = frac == 0.25
    assert (is_half | is_center).all() and is_half.any() and is_center.any()
    g = torch.Generator().manual_seed(0)
    again = make_mixed_masks(["center", "half"], 64, SIZE, generator=g)
    assert torch.equal(m, again)
    with pytest.raises(FaceganError, match="center"):
        make_mixed_masks(["centre"], 4, SIZE)


@pytest.mark.parametrize("kind", MASK_TYPES)
def test_eval_masks_depend_only_on_kind_index_seed(kind: str) -> None:
    lm_all = faces(6)
    alone = [eval_masks(kind, [i], SIZE, landmarks=lm_all[i : i + 1]) for i in range(6)]
    batch = eval_masks(kind, list(range(6)), SIZE, landmarks=lm_all)
    order = [4, 1, 5, 0]
    shuffled = eval_masks(kind, order, SIZE, landmarks=lm_all[order])
    for j, i in enumerate(range(6)):
        assert torch.equal(batch[j], alone[i][0])
    for j, i in enumerate(order):
        assert torch.equal(shuffled[j], alone[i][0])
    assert batch.device.type == "cpu" and batch.shape == (6, 1, SIZE, SIZE)
    if kind in RANDOM_KINDS:
        assert len(torch.unique(batch.flatten(1), dim=0)) == 6
        assert not torch.equal(batch, eval_masks(kind, list(range(6)), SIZE, seed=1))


def test_invalid_kind_is_a_user_error() -> None:
    with pytest.raises(FaceganError, match="freeform"):
        make_masks("stripes", 2, SIZE)


# --------------------------------------------------------------------------- mask files


def save(path, array: np.ndarray) -> str:
    Image.fromarray(array).save(path)
    return str(path)


def square_mask(size: int, lo: int, hi: int) -> np.ndarray:
    a = np.zeros((size, size), np.uint8)
    a[lo:hi, lo:hi] = 255
    return a


def test_load_png_of_the_right_size(tmp_path) -> None:
    path = save(tmp_path / "m.png", square_mask(64, 16, 40))
    m = load_mask_file(path, 64)
    assert m.shape == (1, 1, 64, 64) and m.dtype == torch.float32
    assert torch.equal(m[0, 0], torch.from_numpy(square_mask(64, 16, 40) / 255).float())


def test_load_larger_png_resizes(tmp_path) -> None:
    path = save(tmp_path / "big.png", square_mask(256, 64, 160))
    m = load_mask_file(path, 64)
    assert torch.equal(m[0, 0], torch.from_numpy(square_mask(64, 16, 40) / 255).float())


def test_load_rgb_rgba_and_jpeg(tmp_path) -> None:
    grey = square_mask(64, 8, 56)
    want = torch.from_numpy(grey / 255).float()
    rgb = np.repeat(grey[..., None], 3, 2)
    assert torch.equal(load_mask_file(save(tmp_path / "rgb.png", rgb), 64)[0, 0], want)
    rgba = np.concatenate([rgb, np.full_like(grey, 255)[..., None]], 2)
    assert torch.equal(load_mask_file(save(tmp_path / "rgba.png", rgba), 64)[0, 0], want)
    # White but transparent is not a hole.
    rgba[..., :3] = 255
    rgba[..., 3] = grey
    assert torch.equal(load_mask_file(save(tmp_path / "alpha.png", rgba), 64)[0, 0], want)
    jpg = tmp_path / "m.jpg"
    Image.fromarray(grey).save(jpg, quality=90)
    assert torch.equal(load_mask_file(jpg, 64)[0, 0], want)


def test_mask_file_errors(tmp_path) -> None:
    wide = save(tmp_path / "wide.png", np.full((64, 100), 255, np.uint8))
    with pytest.raises(FaceganError, match="100x64.*64x64"):
        load_mask_file(wide, 64)
    nearly = save(tmp_path / "nearly.png", np.full((100, 101), 255, np.uint8))
    assert load_mask_file(nearly, 64).mean() == 1  # within 1% of square
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(FaceganError, match="cannot read mask") as err:
        load_mask_file(text, 64)
    assert "\n" not in str(err.value)
    black = save(tmp_path / "black.png", np.zeros((64, 64), np.uint8))
    with pytest.raises(FaceganError, match="nothing to inpaint"):
        load_mask_file(black, 64)
    with pytest.raises(FaceganError, match="does not exist"):
        load_mask_file(tmp_path / "missing.png", 64)


def test_parse_mask_spec(tmp_path) -> None:
    assert parse_mask_spec("eyes") == "eyes"
    assert parse_mask_spec("Facemask") == "facemask"
    png = save(tmp_path / "m.png", square_mask(32, 4, 20))
    assert parse_mask_spec(png) == tmp_path / "m.png"
    assert parse_mask_spec(str(tmp_path)) == tmp_path
    with pytest.raises(FaceganError, match="center, half, eyes"):
        parse_mask_spec("stripes")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(FaceganError):
        parse_mask_spec(str(tmp_path / "x.txt"))


# --------------------------------------------------------------------------- speed, devices


def test_freeform_speed_on_cpu() -> None:
    # One thread: on a shared, oversubscribed 2-core machine OpenMP's spinning threads make
    # multi-threaded timings meaningless (seconds instead of milliseconds).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        make_masks("freeform", 64, 128)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            make_masks("freeform", 64, 128)
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    best = min(times)
    print(f"make_masks('freeform', 64, 128) on CPU, 1 thread: best {best * 1e3:.1f} ms of 5")
    assert best < 0.5  # ~20 ms here; this only catches a blow-up (e.g. a per-pixel loop)


@pytest.mark.gpu
def test_masks_on_the_gpu_match_the_cpu() -> None:
    lm = faces(8).cuda()
    for kind in MASK_TYPES:
        g = torch.Generator(device="cuda").manual_seed(0)
        m = make_masks(kind, 8, SIZE, landmarks=lm, generator=g)
        assert m.device.type == "cuda" and set(m.unique().tolist()) <= {0.0, 1.0}
        if kind not in RANDOM_KINDS:
            cpu = make_masks(kind, 8, SIZE, landmarks=lm.cpu(), random=False)
            gpu = make_masks(kind, 8, SIZE, landmarks=lm, random=False).cpu()
            assert (cpu != gpu).float().mean() < 1e-3  # at most a few boundary pixels
    mixed = make_mixed_masks(MASK_TYPES, 8, SIZE, landmarks=lm, generator=g)
    assert mixed.device.type == "cuda"


def test_load_mask_for_photo(tmp_path) -> None:
    hole = np.zeros((40, 80), np.uint8)
    hole[10:20, 20:60] = 255
    Image.fromarray(hole).save(tmp_path / "wide.png")
    m = load_mask_for_photo(tmp_path / "wide.png", 160, 80)  # same aspect, twice the size
    assert m.shape == (1, 1, 80, 160) and m[0, 0, 30, 80] == 1 and m[0, 0, 0, 0] == 0
    with pytest.raises(FaceganError, match="aspect ratios differ"):
        load_mask_for_photo(tmp_path / "wide.png", 100, 100)
