"""Landmark distance (``lmd``): where dlib's 68-point predictor puts the output's features
against where it puts the ground truth's (:mod:`facegan.metrics.realism`).

Both faces are enlarged 2x (bicubic); dlib's HOG face detector finds the face box on the
enlarged ground truth, and the 68-point shape predictor (``shape_predictor_68_face_landmarks``,
shipped in the judge extra) runs in that same box on both. A ground truth where the detector
finds nothing gets the box it puts on an average aligned face (the dlib judge passes
:data:`facegan.scoring.judge.DLIB_FACE_BOX`; :attr:`DlibLandmarks.fallbacks` counts them).
The dlib judge owns one (:attr:`facegan.scoring.judge.DlibJudge.landmarks`). The distance is the mean
over the points of the scored region, in units of the unenlarged face's pixels.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

from facegan.metrics.realism import landmark_distance

#: How much faces are enlarged before dlib looks at them.
ENLARGE = 2


class DlibLandmarks:
    """dlib's detector and 68-point predictor, with the ground truths' boxes and points kept."""

    MAX_CACHED = 100_000

    def __init__(self, predictor_path: str, fallback_box: tuple[float, float, float, float]) -> None:
        """``predictor_path``: dlib's 68-point shape predictor file; ``fallback_box``: (left, top,
        right, bottom) as fractions of the side, the box of a truth the detector finds no face in."""
        self.predictor_path = str(predictor_path)
        self.fallback_box = fallback_box
        self._gt: dict[bytes, tuple[tuple[int, int, int, int], np.ndarray, bool]] = {}
        self.fallbacks = 0
        """Ground truths the detector found no face in (scored in the average aligned box)."""

    def distance(self, out_u8: np.ndarray, gt_u8: np.ndarray, which: tuple[int, ...]) -> np.ndarray:
        """Per image, the landmark distance of ``out_u8`` to ``gt_u8`` ((N, S, S, 3) uint8) over
        the landmarks ``which``, in pixels of the S-pixel face."""
        boxes, gt_points = zip(*(self._truth(face) for face in gt_u8))
        points = np.stack([_points(_enlarged(face), box, self.predictor_path) for face, box in zip(out_u8, boxes)])
        return landmark_distance(points, np.stack(gt_points), which, unit=ENLARGE)

    def _truth(self, face: np.ndarray) -> tuple[tuple[int, int, int, int], np.ndarray]:
        key = hashlib.blake2b(face.tobytes(), digest_size=16).digest()
        if key not in self._gt:
            if len(self._gt) >= self.MAX_CACHED:
                self._gt.clear()
            big = _enlarged(face)
            box, found = _face_box(big, self.fallback_box)
            self.fallbacks += not found
            self._gt[key] = (box, _points(big, box, self.predictor_path), found)
        box, points, _ = self._gt[key]
        return box, points


def _enlarged(face: np.ndarray) -> np.ndarray:
    from PIL import Image

    h, w = face.shape[:2]
    return np.asarray(Image.fromarray(face).resize((w * ENLARGE, h * ENLARGE), Image.Resampling.BICUBIC))


@functools.lru_cache(maxsize=None)
def _detector():
    import dlib

    return dlib.get_frontal_face_detector()


@functools.lru_cache(maxsize=None)
def _predictor(path: str):
    import dlib

    return dlib.shape_predictor(path)


def _face_box(image: np.ndarray, fallback: tuple[float, ...]) -> tuple[tuple[int, int, int, int], bool]:
    """dlib's highest-scoring face box in ``image`` (inclusive left, top, right, bottom), and
    whether it was found (else ``fallback``, fractions of the side)."""
    rects, scores, _ = _detector().run(np.ascontiguousarray(image), 0, 0.0)
    if len(rects):
        r = rects[int(np.argmax(scores))]
        return (r.left(), r.top(), r.right(), r.bottom()), True
    left, top, right, bottom = (round(f * image.shape[0]) for f in fallback)
    return (left, top, right - 1, bottom - 1), False


def _points(image: np.ndarray, box: tuple[int, int, int, int], predictor_path: str) -> np.ndarray:
    """``(68, 2)`` float64 landmarks (x, y) of the face in ``box``."""
    import dlib

    shape = _predictor(predictor_path)(np.ascontiguousarray(image), dlib.rectangle(*box))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
