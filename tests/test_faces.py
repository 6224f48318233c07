"""faces.py: decoding odd image files, MTCNN detection, and exact, antialiased alignment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegan.core.errors import FaceganError
from facegan.faces import align
from facegan.faces import detect as faces
from facegan.faces import images
from facegan.faces.geometry import affine_scale, apply_affine, invert_affine, template_points

SAMPLE = Path(images.__file__).parents[1] / "assets" / "sample_faces"
PHOTO = SAMPLE / "deepface" / "img11.jpg"  # 240x320, one face, light background
#: Pupils of PHOTO, read off a 4x zoom by eye (pixel-index coordinates).
PUPILS = np.array([[100.0, 84.0], [148.5, 98.5]])


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return images.load_image(PHOTO)


@pytest.fixture(scope="module")
def face(photo) -> faces.Face:
    found = faces.detect_faces([photo])[0]
    assert len(found) == 1
    return found[0]


# ---- load_image ---------------------------------------------------------------------------


def test_load_image_rgb(photo):
    assert photo.mode == "RGB" and photo.size == (240, 320)


def test_load_grey_palette_and_16bit(tmp_path, photo):
    grey = photo.convert("L")
    grey.save(tmp_path / "grey.png")
    photo.convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "palette.png")
    Image.fromarray(np.asarray(grey).astype(np.uint16) * 257).save(tmp_path / "grey16.png")

    loaded = np.asarray(images.load_image(tmp_path / "grey.png"))
    assert loaded.shape == (320, 240, 3)
    assert np.array_equal(loaded[..., 0], np.asarray(grey))
    assert np.array_equal(loaded[..., 0], loaded[..., 2])

    assert Image.open(tmp_path / "grey16.png").mode.startswith("I")
    loaded16 = np.asarray(images.load_image(tmp_path / "grey16.png"))
    assert loaded16.dtype == np.uint8
    assert np.abs(loaded16[..., 1].astype(int) - np.asarray(grey)).max() <= 1

    pal = np.asarray(images.load_image(tmp_path / "palette.png")).astype(int)
    assert pal.shape == (320, 240, 3)
    assert np.abs(pal - np.asarray(photo)).mean() < 12


def test_load_rgba_composites_over_white(tmp_path, photo):
    rgba = photo.convert("RGBA")
    alpha = np.full((320, 240), 255, np.uint8)
    alpha[:40, :60] = 0
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(tmp_path / "rgba.png")
    loaded = np.asarray(images.load_image(tmp_path / "rgba.png"))
    assert loaded.shape == (320, 240, 3)
    assert (loaded[:40, :60] == 255).all()
    assert np.array_equal(loaded[100:, 100:], np.asarray(photo)[100:, 100:])


def test_load_cmyk_jpeg(tmp_path, photo):
    photo.convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    loaded = np.asarray(images.load_image(tmp_path / "cmyk.jpg")).astype(int)
    assert loaded.shape == (320, 240, 3)
    assert np.abs(loaded - np.asarray(photo)).mean() < 6


def test_load_honours_exif_orientation(tmp_path, photo):
    # Stored rotated 90 degrees counter-clockwise, tagged "rotate 90 clockwise to display".
    stored = photo.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    loaded = np.asarray(images.load_image(tmp_path / "rotated.jpg")).astype(int)
    assert loaded.shape == (320, 240, 3)
    assert np.abs(loaded - np.asarray(photo)).mean() < 6


def test_load_non_image_is_one_line_error(tmp_path):
    (tmp_path / "notes.jpg").write_text("not a photo\n")
    with pytest.raises(FaceganError, match=r"notes\.jpg is not an image \(") as info:
        images.load_image(tmp_path / "notes.jpg")
    assert "\n" not in str(info.value)

    data = PHOTO.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(FaceganError, match=r"cut\.jpg is not an image \(.*truncated"):
        images.load_image(tmp_path / "cut.jpg")
    with pytest.raises(FaceganError, match="does not exist"):
        images.load_image(tmp_path / "missing.png")


# ---- detection ----------------------------------------------------------------------------


def test_detect_one_face_with_landmarks_on_the_eyes(face):
    assert face.score > 0.95
    assert face.box.dtype == np.float32 and face.landmarks.shape == (5, 2)
    assert face.landmarks.dtype == np.float32
    assert np.linalg.norm(face.landmarks[:2] - PUPILS, axis=1).max() < 4.0
    x0, y0, x1, y1 = face.box
    assert ((face.landmarks >= [x0, y0]) & (face.landmarks <= [x1, y1])).all()


def test_detect_no_face_and_largest_first(photo):
    blank = Image.new("RGB", (120, 90), (128, 128, 128))
    # The photo twice side by side, the right copy at half size: the full-size face first.
    two = Image.new("RGB", (360, 320), (255, 255, 255))
    two.paste(photo, (0, 0))
    two.paste(photo.resize((120, 160), Image.Resampling.LANCZOS), (240, 80))
    found = faces.detect_faces([blank, two])
    assert found[0] == []
    assert len(found[1]) == 2
    assert found[1][0].area > 3 * found[1][1].area
    assert found[1][0].box[2] <= 240


# ---- alignment ----------------------------------------------------------------------------


def _blob_image(height: int, width: int, points: np.ndarray, sigma: float) -> np.ndarray:
    """A grey image with a Gaussian blob centred on each (sub-pixel) point."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.zeros((height, width))
    for x, y in points:
        img += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return np.clip(img * 200 + 30, 0, 255).astype(np.uint8)


def _centroids(channel: np.ndarray, points: np.ndarray, radius: int) -> np.ndarray:
    """Intensity centroids (above the background 30) in windows around ``points``."""
    out = []
    for x, y in points:
        x0, y0 = int(round(x)), int(round(y))
        win = np.clip(channel[y0 - radius : y0 + radius + 1, x0 - radius : x0 + radius + 1]
                      .astype(np.float64) - 30, 0, None)
        yy, xx = np.mgrid[y0 - radius : y0 + radius + 1, x0 - radius : x0 + radius + 1]
        out.append([(win * xx).sum() / win.sum(), (win * yy).sum() / win.sum()])
    return np.array(out)


@pytest.mark.parametrize("scale,angle", [(4.0, 0.3), (0.5, -0.2), (1.0, 0.0)])
def test_align_puts_points_exactly_on_the_template(scale, angle):
    """Blobs at a rotated/scaled copy of the template land on it (shrink, enlarge, identity)."""
    size = 96
    target = template_points(size)
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    points = (target - size / 2) @ np.array([[c, -s], [s, c]]).T + scale * 70 + [13.3, 7.7]
    side = int(scale * 150)
    img = _blob_image(side, side, points, sigma=2.5 * scale)
    aligned, m = align.align_face(img, points, size)  # grey ndarray input
    assert aligned.shape == (size, size, 3) and aligned.dtype == np.uint8
    assert np.abs(apply_affine(m, points) - target).max() < 1e-6
    assert np.abs(_centroids(aligned[..., 1], target, 6) - target).max() < 0.25


def test_align_real_photo_landmarks(photo, face):
    size = 128
    aligned, m = align.align_face(photo, face.landmarks, size)
    mapped = apply_affine(m, face.landmarks)
    # A least-squares fit: a real face sits within a few pixels of the template.
    assert np.linalg.norm(mapped - template_points(size), axis=1).mean() < 3.0
    # Pupils (hand-marked) land where M sends them, on the template eyes.
    assert np.linalg.norm(apply_affine(m, PUPILS) - template_points(size)[:2], axis=1).max() < 5
    # Re-detecting on the aligned face finds the landmarks where M put them.
    again = faces.detect_faces([Image.fromarray(aligned)])[0]
    assert len(again) >= 1
    assert np.linalg.norm(again[0].landmarks - mapped, axis=1).max() < 4.0
    assert np.linalg.norm(again[0].landmarks - template_points(size), axis=1).mean() < 4.0
    # M's inverse maps the aligned template back onto the photo's landmarks.
    back = apply_affine(invert_affine(m), mapped)
    assert np.abs(back - face.landmarks).max() < 1e-3


def test_align_tight_crop_is_reflect_padded(photo, face):
    box = face.box.round().astype(int)
    crop = photo.crop(tuple(box))
    landmarks = face.landmarks - box[:2]
    aligned, m = align.align_face(crop, landmarks, 128)
    # The square reaches well past the crop on every side...
    corners = apply_affine(invert_affine(m), [[0, 0], [127, 0], [0, 127], [127, 127]])
    assert (corners[:, 0] < 0).any() and (corners[:, 0] > crop.width).any()
    assert (corners[:, 1] < 0).any() and (corners[:, 1] > crop.height).any()
    # ...yet no padded pixel is black, and the corners take the crop's colours, not zeros.
    rows, cols = np.mgrid[0:128, 0:128]
    src = apply_affine(invert_affine(m), np.stack([cols.ravel(), rows.ravel()], axis=1))
    padded = ((src < -0.5) | (src > np.array(crop.size) - 0.5)).any(axis=1).reshape(128, 128)
    assert padded.mean() > 0.3
    assert (aligned[padded].max(axis=1) < 16).mean() < 0.005  # mirrored hair may be dark
    median = np.median(np.asarray(crop).reshape(-1, 3), axis=0)
    assert np.abs(aligned[padded].mean(axis=0) - median).max() < 40
    for y, x in [(0, 0), (0, 127), (127, 0), (127, 127)]:
        assert np.abs(aligned[y, x].astype(float) - median).max() < 60


def _rotated_template(size: int, scale: float, angle: float, offset: float) -> np.ndarray:
    """Template points of a ``size`` square scaled/rotated about its centre and shifted."""
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    return (template_points(size) - size / 2) @ np.array([[c, -s], [s, c]]).T + offset


def test_align_antialiases_when_shrinking():
    # A one-pixel checkerboard shrunk ~10x must come out flat grey, not as moire.
    board = ((np.indices((900, 900)).sum(axis=0) % 2) * 255).astype(np.uint8)
    size = 64
    points = _rotated_template(size, scale=9.7, angle=0.13, offset=450.3)
    aligned, m = align.align_face(board, points, size)
    assert abs(affine_scale(m) - 1 / 9.7) < 1e-9
    inner = aligned[8:-8, 8:-8].astype(float)
    assert abs(inner.mean() - 127.5) < 4
    assert inner.std() < 3


def test_align_big_upscaled_photo_matches_original(photo, face):
    # Aligning the photo upscaled 6x (plain, and with a fine zero-mean texture added) must
    # give what aligning the original gives: the shrink is filtered, not point-sampled.
    factor = 6
    base = Image.fromarray((np.asarray(photo) * 0.8 + 25).astype(np.uint8))  # room for texture
    big = base.resize((base.width * factor, base.height * factor), Image.Resampling.BICUBIC)
    texture = (np.indices(big.size[::-1]).sum(axis=0) % 2 * 2 - 1) * 20
    textured = (np.asarray(big).astype(int) + texture[..., None]).astype(np.uint8)
    big_landmarks = (face.landmarks + 0.5) * factor - 0.5
    small_aligned, _ = align.align_face(base, face.landmarks, 64)
    for image, tolerance in [(big, 1.0), (textured, 1.5)]:
        big_aligned, m = align.align_face(image, big_landmarks, 64)
        assert affine_scale(m) < 0.2
        diff = np.abs(small_aligned.astype(float) - big_aligned.astype(float))
        assert diff.mean() < tolerance
