"""Find the faces of a photo: MTCNN, largest first, with a box, a score and five landmarks.

:func:`find_faces` is facegan's one detection policy (training data and users' photos alike);
:func:`detect_faces` is MTCNN itself. Decoding photos: :mod:`facegan.faces.images`; aligning a
face found here onto the template: :mod:`facegan.faces.align`. All coordinates are pixel-index
coordinates (see :mod:`facegan.faces.geometry`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from facegan.core.errors import FaceganError
from facegan.faces.images import MIN_PHOTO_SIDE, to_rgb

_DETECTORS: dict[str, object] = {}


@dataclass
class Face:
    """One detected face, in the pixel-index coordinates of the photo it was found in."""

    box: np.ndarray
    """(4,) float32: x0, y0, x1, y1."""
    score: float
    """Detector confidence in [0, 1]."""
    landmarks: np.ndarray
    """(5, 2) float32: left eye, right eye, nose tip, left and right mouth corner (x, y)."""

    @property
    def area(self) -> float:
        """Area of the box in square pixels."""
        return float(max(self.box[2] - self.box[0], 0) * max(self.box[3] - self.box[1], 0))


# --------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------


def _detector(device: str):
    """The cached MTCNN for ``device`` (built on first use; weights ship in the wheel)."""
    import torch
    from facenet_pytorch import MTCNN

    key = str(torch.device(device))
    if key not in _DETECTORS:
        _DETECTORS[key] = MTCNN(keep_all=True, select_largest=True, device=key)
    return _DETECTORS[key]


def detect_faces(images: list[Image.Image], device: str = "cpu") -> list[list[Face]]:
    """Detect faces with MTCNN; for each image a list of :class:`Face`, largest first.

    Images are converted to RGB first. An image without a face gets an empty list. Each image
    is detected on its own: MTCNN's batched path can return a different face for the same
    photo depending on its batch-mates, and a photo's alignment must not depend on those.
    """
    detector = _detector(device)
    results: list[list[Face]] = []
    for img in images:
        boxes, probs, points = detector.detect(to_rgb(img), landmarks=True)
        results.append(_faces_from_mtcnn(boxes, probs, points))
    return results


def _faces_from_mtcnn(boxes, probs, points) -> list[Face]:
    """Turn MTCNN's object-dtype outputs for one image into Faces, largest first."""
    if boxes is None or len(boxes) == 0:
        return []
    boxes = np.asarray(boxes).astype(np.float32).reshape(-1, 4)
    probs = np.asarray(probs).astype(np.float32).reshape(-1)
    points = np.asarray(points).astype(np.float32).reshape(-1, 5, 2)
    faces = [Face(box=b, score=float(p), landmarks=lm) for b, p, lm in zip(boxes, probs, points)]
    faces.sort(key=lambda f: f.area, reverse=True)
    return faces


#: :func:`find_faces` detects on a copy whose longer side is at most this (pixels)...
DETECT_MAX_SIDE = 512
#: ...and whose shorter side is at least this (pixels; smaller photos are enlarged)...
DETECT_MIN_SIDE = 160
#: ...and keeps the faces MTCNN scores at least this confident.
MIN_FACE_SCORE = 0.9
@contextlib.contextmanager
def _one_cpu_thread(device: str):
    """Run torch on one CPU thread: MTCNN's landmarks then do not depend on how many threads
    the process has (a dataset worker has one, `restore` has all), so a photo is aligned
    identically by `prepare` and by `restore`. MTCNN is small: one thread costs little."""
    import torch

    if torch.device(device).type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def find_faces(
    image: Image.Image,
    device: str = "cpu",
    max_side: int = DETECT_MAX_SIDE,
    min_side: int = DETECT_MIN_SIDE,
    min_score: float = MIN_FACE_SCORE,
    min_face: int | None = None,
) -> list[Face]:
    """The faces of one photo, largest first, in the photo's pixel-index coordinates.

    facegan's one detection policy, used for training data (`prepare sample`, `prepare
    folder`, `prepare celeba-hq`) and for users' photos (`restore`) alike, so that a face is
    aligned the same way wherever it comes from. MTCNN looks at a copy of the photo whose
    longer side is at most ``max_side`` (bilinear, antialiased: larger photos cost time and
    gain nothing) and whose shorter side is at least ``min_side`` (bicubic, by a whole factor:
    MTCNN misses faces under about 20 pixels and fails on images under about 12); faces scored
    below ``min_score`` are dropped. Boxes and landmarks are mapped back to the photo
    (``x = (x' + 0.5) / k - 0.5`` for a copy scaled by ``k``). MTCNN runs on one CPU thread, so
    the landmarks do not depend on the process's thread count. A photo too small to hold a face
    (under :data:`MIN_PHOTO_SIDE` pixels a side) raises :class:`FaceganError`.

    ``min_face`` (``restore``: :data:`MIN_RESTORE_FACE`): in a photo so large (or so long and
    thin) that the copy shrinks faces of that many pixels below what MTCNN sees, or when they are
    smaller than MTCNN's smallest face, a second pass looks at overlapping tiles of a copy where
    they are large enough (reduced or enlarged: :func:`_tile_pass`); its
    faces are added where the first pass found none, so a face both passes see keeps the first
    pass's landmarks.
    """
    rgb = to_rgb(image)
    w, h = rgb.size
    if min(w, h) < MIN_PHOTO_SIDE:
        raise FaceganError(f"too small to hold a face ({w}×{h})")
    factor = min(max_side / max(w, h), 1.0)
    if factor < 1.0:
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        view = rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    else:
        factor = float(min(16, max(1, int(np.ceil(min_side / min(w, h))))))
        view = rgb.resize((w * int(factor), h * int(factor)), Image.Resampling.BICUBIC) if factor > 1 else rgb
    found = _detect_view(view, (0.0, 0.0), (view.width / w, view.height / h), device, min_score)
    smallest_seen = MTCNN_MIN_FACE / factor  # photo pixels
    if min_face is not None and (smallest_seen > min_face or min(view.size) < MTCNN_MIN_VIEW):
        extra = _tile_pass(rgb, device, min_score, min_face, smallest_seen)
        found += [f for f in extra if not any(_same_face(f, g) for g in found)]
        found.sort(key=lambda f: f.area, reverse=True)
    return found


#: ``restore`` looks for faces down to this many pixels (MTCNN's box side) in any photo.
MIN_RESTORE_FACE = 40
#: The smallest face MTCNN finds at the scale it looks at (its ``min_face_size``), in pixels.
MTCNN_MIN_FACE = 20
#: A view with a side under this is not shown to MTCNN (its pyramid is empty: it would fail).
MTCNN_MIN_VIEW = 24
#: Side of the tiles of the second pass, at the scale it looks at.
TILE_SIDE = 512
#: The second pass enlarges a photo this much past what brings ``min_face`` to MTCNN's smallest...
ENLARGE_MARGIN = 1.5
#: ...and at most this much in all.
MAX_ENLARGE = 3.0


def _detect_view(view: Image.Image, offset: tuple[float, float], scale: tuple[float, float], device: str,
                 min_score: float) -> list[Face]:
    """MTCNN on ``view``, a crop at ``offset`` (photo pixels) of the photo scaled by ``scale``;
    faces mapped back to the photo. A view too small for MTCNN has none."""
    if min(view.size) < MTCNN_MIN_VIEW:
        return []
    with _one_cpu_thread(device):
        found = [f for f in detect_faces([view], device=device)[0] if f.score >= min_score]
    fx, fy = scale
    back = np.array([fx, fy, fx, fy], dtype=np.float64)
    shift = np.array([offset[0], offset[1]] * 2, dtype=np.float64)
    for f in found:
        f.box = ((f.box + 0.5) / back - 0.5 + shift).astype(np.float32)
        f.landmarks = ((f.landmarks + 0.5) / back[:2] - 0.5 + shift[:2]).astype(np.float32)
    return found


def tile_scale(min_face: int) -> float:
    """How much :func:`_tile_pass` scales the photo so that faces of ``min_face`` pixels are found.

    Shrinking: exactly to MTCNN's smallest face. Enlarging (faces smaller than MTCNN sees, which
    super-resolution needs: a 16 px face crop has a box of about 10 px): :data:`ENLARGE_MARGIN`
    past it, at most :data:`MAX_ENLARGE`, because a face right at MTCNN's limit is found only
    sometimes. Measured on 40 test faces pasted into 256 px photos, found out of 40 at
    16 / 20 / 24 px crops: no enlargement 0 / 10 / 31, 2x 33 / 39 / 40, 3x 35 / 39 / 40.
    """
    k = MTCNN_MIN_FACE / min_face
    return k if k <= 1.0 else min(MAX_ENLARGE, k * ENLARGE_MARGIN)


def _tile_pass(rgb: Image.Image, device: str, min_score: float, min_face: int, largest: float) -> list[Face]:
    """Faces from ``min_face`` pixels up to ``largest`` (what the first pass already sees), found
    on overlapping tiles of a copy scaled by :func:`tile_scale` (reduced, or enlarged by bicubic
    for faces under MTCNN's smallest). The tiles overlap by more than the largest such face, so
    each lies whole inside some tile."""
    w, h = rgb.size
    k = tile_scale(min_face)
    if k < 1.0:
        view = rgb.resize((max(1, round(w * k)), max(1, round(h * k))), Image.Resampling.BILINEAR, reducing_gap=2.0)
    elif k > 1.0:
        view = rgb.resize((round(w * k), round(h * k)), Image.Resampling.BICUBIC)
    else:
        view = rgb
    overlap = int(min(1.25 * largest * k, 4 * TILE_SIDE)) + 8
    side = max(TILE_SIDE, 2 * overlap)
    sx, sy = view.width / w, view.height / h
    found: list[Face] = []
    for top in _starts(view.height, side, side - overlap):
        for left in _starts(view.width, side, side - overlap):
            tile = view.crop((left, top, min(left + side, view.width), min(top + side, view.height)))
            for face in _detect_view(tile, (left / sx, top / sy), (sx, sy), device, min_score):
                if not any(_same_face(face, other) for other in found):
                    found.append(face)
    return found


def _starts(length: int, side: int, stride: int) -> list[int]:
    """Tile origins covering ``length`` with tiles of ``side`` every ``stride`` (the last flush with the end)."""
    if length <= side:
        return [0]
    starts = list(range(0, length - side, stride))
    return starts + [length - side]


def _same_face(a: Face, b: Face) -> bool:
    """Whether two detections are one face: their boxes overlap by more than a third of the smaller."""
    x0, y0 = max(a.box[0], b.box[0]), max(a.box[1], b.box[1])
    x1, y1 = min(a.box[2], b.box[2]), min(a.box[3], b.box[3])
    inter = max(0.0, float(x1 - x0)) * max(0.0, float(y1 - y0))
    return inter > 0.33 * min(a.area, b.area)
