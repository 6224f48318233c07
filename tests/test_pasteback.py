"""pasteback.py: carrying masks and restored faces between a photo and the aligned frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facegan.faces import align
from facegan.faces import detect as faces
from facegan.faces import images
from facegan.faces.geometry import apply_affine, compose, invert_affine, resize_matrix
from facegan.faces.pasteback import border_alpha, canvas_window, hole_alpha, hole_on_canvas, mask_to_aligned, paste_face

PHOTO = Path(images.__file__).parents[1] / "assets" / "sample_faces" / "deepface" / "img11.jpg"


def _similarity(scale: float, angle: float, shift: tuple[float, float]) -> np.ndarray:
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


def test_resize_and_compose_follow_the_pixel_index_convention():
    down = resize_matrix((200, 100), (50, 25))
    # The 4x4 block of pixels 0..3 shrinks onto pixel 0: its centre (1.5, 1.5) lands on (0, 0).
    assert np.allclose(apply_affine(down, [[1.5, 1.5], [199 - 1.5, 99 - 1.5]]), [[0, 0], [49, 24]])
    back = compose(resize_matrix((50, 25), (200, 100)), down)
    assert np.allclose(back, [[1, 0, 0], [0, 1, 0]])
    m = _similarity(0.7, 0.3, (5, -8))
    pts = np.array([[3.0, 4.0], [-10.0, 20.0]])
    assert np.allclose(apply_affine(compose(m, down), pts), apply_affine(m, apply_affine(down, pts)))


def test_canvas_window_covers_the_square_and_clips():
    to_canvas = _similarity(2.0, 0.4, (150, 120))  # the face is twice as big on the canvas
    m = invert_affine(to_canvas)
    rows, cols = canvas_window(m, 64, (400, 500))
    corners = apply_affine(to_canvas, [[-0.5, -0.5], [63.5, -0.5], [-0.5, 63.5], [63.5, 63.5]])
    assert corners.min() > 0 and corners[:, 0].max() < 500 and corners[:, 1].max() < 400
    assert rows.start <= corners[:, 1].min() and rows.stop > corners[:, 1].max()
    assert cols.start <= corners[:, 0].min() and cols.stop > corners[:, 0].max()
    assert rows.stop - rows.start < 200 and cols.stop - cols.start < 200
    clipped = canvas_window(m, 64, (150, 160))  # a canvas that ends inside the square
    assert clipped == (slice(rows.start, 150), slice(cols.start, 160))
    far = _similarity(1.0, 0.0, (-1000, -1000))
    assert canvas_window(far, 64, (400, 500)) is None


def test_mask_round_trip_through_a_rotated_frame():
    size = 64
    m = _similarity(0.4, -0.25, (-40, 30))  # canvas px -> aligned px (shrinks 2.5x)
    hole = np.zeros((size, size), bool)
    hole[20:40, 12:52] = True
    on_canvas = hole_on_canvas(hole, m, (300, 300))
    assert on_canvas.sum() == pytest.approx(hole.sum() / 0.4**2, rel=0.08)
    back = mask_to_aligned(on_canvas, m, size)
    iou = (back & hole).sum() / (back | hole).sum()
    assert iou > 0.9


def test_thin_strokes_survive_shrinking():
    # A one-pixel line on a canvas 5x bigger than the aligned face is not missed between samples.
    m = _similarity(0.2, 0.1, (-20, -20))
    line = np.zeros((500, 500), bool)
    line[250, 150:350] = True
    aligned = mask_to_aligned(line, m, 64)
    assert aligned.any()
    hit = apply_affine(m, np.argwhere(line)[:, ::-1])
    rows, cols = np.nonzero(aligned)
    assert np.abs(np.median(np.stack([cols, rows], 1), 0) - np.median(hit, 0)).max() < 2
    assert not mask_to_aligned(np.zeros_like(line), m, 64).any()


def test_alphas():
    hole = np.zeros((32, 32), bool)
    hole[10:20, 8:24] = True
    a = hole_alpha(hole, feather=3)
    assert (a[hole] == 1).all()
    assert a[5, 16] == 0 and a[8, 16] > 0  # 5 px above the hole: 0; 2 px above: partly
    assert a[8, 16] > a[7, 16] > a[6, 16]
    assert not hole_alpha(np.zeros((8, 8), bool), 3).any()
    b = border_alpha(32, feather=4)
    assert b[16, 16] == 1 and b[0, 16] == pytest.approx(0.5 / 4) and b[3, 16] == pytest.approx(3.5 / 4)
    assert np.array_equal(b, b.T) and np.array_equal(b, b[::-1])
    assert (border_alpha(32, 0) == 1).all()


def test_paste_touches_only_where_alpha_lands():
    rng = np.random.default_rng(0)
    canvas = rng.integers(0, 256, (200, 260, 3), dtype=np.uint8)
    before = canvas.copy()
    m = _similarity(0.5, 0.2, (-20, -10))
    face = np.full((64, 64, 3), 200, np.uint8)
    hole = np.zeros((64, 64), bool)
    hole[24:40, 16:48] = True
    landed = paste_face(canvas, face, hole_alpha(hole, 2), m)
    changed = (canvas != before).any(-1)
    assert changed.any() and not changed[landed == 0].any()
    # Fully inside the hole the face's value is taken as is.
    assert (canvas[landed == 1] == 200).all()
    # Every touched pixel maps to within feather + 1 + interpolation of the hole.
    rows, cols = np.nonzero(landed > 0)
    pts = apply_affine(m, np.stack([cols, rows], 1))
    assert pts[:, 0].min() > 16 - 4.5 and pts[:, 0].max() < 47 + 4.5
    assert pts[:, 1].min() > 24 - 4.5 and pts[:, 1].max() < 39 + 4.5


def test_aligning_and_pasting_back_reproduces_the_photo():
    """align_face's M and paste_face agree: a face pasted back unchanged is the photo again."""
    photo = np.asarray(images.load_image(PHOTO))
    face = faces.detect_faces([images.load_image(PHOTO)])[0][0]
    aligned, m = align.align_face(photo, face.landmarks, 128)
    canvas = photo.copy()
    landed = paste_face(canvas, aligned, border_alpha(128, 0), m)
    inner = landed == 1
    # The aligned face is ~1.5x smaller than in the photo; away from the edges the round trip is
    # a mild blur, never a shift (a shift by a pixel would give errors of 10+ on this face).
    assert inner.sum() > 0.3 * photo.shape[0] * photo.shape[1]
    diff = np.abs(canvas.astype(float) - photo.astype(float))[inner]
    assert diff.mean() < 4
