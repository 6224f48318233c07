"""Turn one source image into aligned faces: what each worker process does.

Every preparer describes its work as :class:`ExtractJob` objects (a split, an :class:`Operation`
and a batch of :class:`Source` images); :func:`run_job` (run in a worker process, see
:mod:`facegan.data.pool`) decodes each image and returns the faces it made and the problems
it met. Three operations exist, one per kind of input:

* ``crop``: a fixed box of an already aligned image (CelebA's ``img_align_celeba``), resized
  with PIL's antialiased LANCZOS; landmarks follow by the box offset and the scale.
* ``landmarks``: a similarity warp onto the template from five landmarks that come with the
  image (CelebA in the wild, ``list_landmarks_celeba.txt``), via :func:`faces.align_face`.
* ``detect``: :func:`facegan.faces.detect.find_faces` finds the faces (facegan's one detection
  policy, the same as ``restore``'s), then the same warp (CelebA-HQ, a folder of photos, the
  bundled sample).

Large JPEGs are decoded at a reduced scale (libjpeg's DCT scaling, 1/2, 1/4 or 1/8) when the
face still keeps at least two source pixels per output pixel, so alignment stays
antialiased but decoding a 12-megapixel photo for a 128-pixel face is cheap. All coordinates
are pixel-index coordinates (:mod:`facegan.faces.geometry`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facegan.core.errors import FaceganError
from facegan.faces.align import align_face
from facegan.faces.detect import DETECT_MAX_SIDE, find_faces
from facegan.faces.geometry import (
    affine_scale, apply_affine, box_resize_matrix, rescale_points, similarity_matrix, template_points,
)
from facegan.faces.images import to_rgb

#: JPEG scale reductions libjpeg can decode at.
_REDUCTIONS = (8, 4, 2, 1)
#: Keep at least this many decoded pixels per output pixel when decoding at reduced scale.
_OVERSAMPLE = 2.0
_EXIF_ORIENTATION = 0x0112


class Source(NamedTuple):
    """One input image."""

    path: str
    """Where to read it."""
    name: str
    """The name stored in the dataset (a path relative to the input root)."""
    identity: str
    """Identity label, "" when unknown."""
    landmarks: tuple[float, ...] | None = None
    """Ten numbers (x, y of the five landmarks in file pixels) when the dataset provides them."""


@dataclass(frozen=True)
class Operation:
    """What to do with each source image (the same for a whole dataset)."""

    kind: str
    """"crop", "landmarks" or "detect"."""
    size: int
    """Side of the output faces."""
    box: tuple[int, int, int, int] | None = None
    """crop: (left, top, right, bottom) of the square to keep, right/bottom exclusive."""
    expect_size: tuple[int, int] | None = None
    """crop: the (width, height) every input must have."""
    exif: bool = False
    """detect: honour EXIF orientation."""
    all_faces: bool = False
    """detect: keep every face (named ``name#k``, largest first) instead of the largest."""

    @property
    def uses_torch(self) -> bool:
        return self.kind == "detect"


class ExtractJob(NamedTuple):
    """A batch of sources of one split."""

    split: str
    op: Operation
    sources: list[Source]


class Extracted(NamedTuple):
    """One aligned face."""

    name: str
    identity: str
    image: np.ndarray
    """uint8 (size, size, 3)."""
    landmarks: np.ndarray
    """float32 (5, 2) in output pixel-index coordinates."""


class Problem(NamedTuple):
    """A source that gave no face."""

    name: str
    kind: str
    """"unreadable" (missing, corrupt, wrong size), "no_face" or "bad_landmarks"."""
    reason: str


class _Unreadable(Exception):
    """Raised inside this module for a file that cannot be decoded."""


class _NoFace(Exception):
    """Raised inside this module for a photo in which no face is found (the reason is its text)."""


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


def _reduction(width: int, height: int, max_factor: float, exact: bool) -> int:
    """The largest JPEG reduction <= ``max_factor``; with ``exact`` it must divide both sides.

    Exactness matters when the image is transposed afterwards (EXIF): a reduced side of
    ``ceil(w / k)`` pixels maps flipped coordinates by ``k`` only when ``k`` divides ``w``.
    """
    for k in _REDUCTIONS:
        if k <= max_factor and (not exact or (width % k == 0 and height % k == 0)):
            return k
    return 1


def decode(
    path: str, exif: bool = False, max_reduction: float = 1.0, min_longest: int | None = None
) -> tuple[Image.Image, int]:
    """Decode ``path`` to RGB, at a JPEG reduction of up to ``max_reduction``.

    With ``min_longest`` the reduction is instead the largest that keeps the longest side at
    least that long. Returns the image and the reduction ``k`` used: a continuous coordinate
    ``c`` of the full-size (EXIF-transposed, if ``exif``) image is ``c / k`` in the returned
    one. Raises ``_Unreadable`` with the reason when the file cannot be decoded.
    """
    try:
        with Image.open(path) as img:
            k = 1
            w, h = img.size
            if min_longest is not None:
                max_reduction = max(w, h) / min_longest
            if img.format == "JPEG" and max_reduction >= 2:
                orientation = img.getexif().get(_EXIF_ORIENTATION, 1) if exif else 1
                k = _reduction(w, h, max_reduction, exact=orientation not in (1, None))
                if k > 1:
                    img.draft(img.mode, (-(-w // k), -(-h // k)))
                    k = max(1, round(w / img.size[0]))
            img.load()
            if exif:
                img = ImageOps.exif_transpose(img)
            return to_rgb(img), k
    except FileNotFoundError:
        raise _Unreadable("file not found") from None
    except UnidentifiedImageError:
        raise _Unreadable("not an image (unrecognised file format)") from None
    except Image.DecompressionBombError as exc:
        raise _Unreadable(f"too large to decode safely ({exc})") from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _Unreadable(reason) from None


# --------------------------------------------------------------------------------------------
# The three operations
# --------------------------------------------------------------------------------------------


def _crop(source: Source, op: Operation) -> list[Extracted]:
    img, _ = decode(source.path)
    if op.expect_size is not None and img.size != tuple(op.expect_size):
        w, h = op.expect_size
        raise _Unreadable(f"is {img.size[0]}x{img.size[1]}, expected {w}x{h}")
    face = img.resize((op.size, op.size), Image.Resampling.LANCZOS, box=op.box)
    points = apply_affine(box_resize_matrix(op.box, op.size), _landmarks_of(source))
    return [Extracted(source.name, source.identity, np.asarray(face), points.astype(np.float32))]


def _landmarks_of(source: Source) -> np.ndarray:
    if source.landmarks is None or len(source.landmarks) != 10:
        raise ValueError(f"{source.name}: this operation needs five landmarks")
    return np.asarray(source.landmarks, dtype=np.float64).reshape(5, 2)


def _align(img: Image.Image, points: np.ndarray, name: str, source: Source,
           size: int) -> Extracted:
    aligned, m = align_face(img, points, size)
    return Extracted(name, source.identity, aligned, apply_affine(m, points).astype(np.float32))


def _warp_scale(points: np.ndarray, size: int) -> float:
    """Output pixels per input pixel of the alignment of ``points`` at ``size``."""
    return affine_scale(similarity_matrix(points, template_points(size)))


def _from_landmarks(source: Source, op: Operation) -> list[Extracted]:
    points = _landmarks_of(source)
    if not np.all(np.isfinite(points)) or np.ptp(points, axis=0).max() < 1:
        raise ValueError("degenerate landmarks")
    scale = _warp_scale(points, op.size)
    img, k = decode(source.path, max_reduction=1.0 / (_OVERSAMPLE * scale))
    return [_align(img, rescale_points(points, 1.0 / k), source.name, source, op.size)]


def _detect(source: Source, op: Operation) -> list[Extracted]:
    img, k = decode(source.path, exif=op.exif, min_longest=DETECT_MAX_SIDE)
    try:
        faces = find_faces(img)  # facegan's one detection policy, as `restore` uses it
    except FaceganError as exc:  # a photo too small to hold a face
        raise _NoFace(str(exc)) from None
    if not faces:
        raise _NoFace("no face found")
    faces = faces if op.all_faces else faces[:1]
    points = [np.asarray(f.landmarks, np.float64) for f in faces]  # in ``img`` (reduced by k)
    # Decode finer when the reduced image gives a face fewer than two pixels per output pixel.
    finest = min(_warp_scale(p, op.size) / k for p in points)  # output px per full-size px
    want = _reduction(*_full_size(img, k), 1.0 / (_OVERSAMPLE * finest), exact=op.exif)
    if want < k:
        img, k2 = decode(source.path, exif=op.exif, max_reduction=want)
        points = [rescale_points(p, k / k2) for p in points]
    names = [f"{source.name}#{j}" for j in range(len(faces))] if op.all_faces else [source.name]
    return [_align(img, p, n, source, op.size) for p, n in zip(points, names)]


def _full_size(img: Image.Image, k: int) -> tuple[int, int]:
    return img.width * k, img.height * k


_OPERATIONS = {"crop": _crop, "landmarks": _from_landmarks, "detect": _detect}


class JobResult(NamedTuple):
    """What a worker hands back for one task."""

    split: str
    sources: int
    """How many sources the task held."""
    faces: list[Extracted]
    """Faces in source order."""
    problems: list[Problem]


def run_job(job: ExtractJob) -> JobResult:
    """Process one batch of sources; never raises for a bad image (it becomes a Problem)."""
    fn = _OPERATIONS[job.op.kind]
    faces: list[Extracted] = []
    problems: list[Problem] = []
    for source in job.sources:
        try:
            faces.extend(fn(source, job.op))
        except _Unreadable as exc:
            problems.append(Problem(source.name, "unreadable", str(exc)))
        except (FileNotFoundError, UnidentifiedImageError, OSError) as exc:
            problems.append(Problem(source.name, "unreadable", str(exc).splitlines()[0]))
        except _NoFace as exc:
            problems.append(Problem(source.name, "no_face", str(exc) or "no face found"))
        except (ValueError, FaceganError) as exc:
            problems.append(Problem(source.name, "bad_landmarks", str(exc).splitlines()[0]))
    return JobResult(job.split, len(job.sources), faces, problems)
