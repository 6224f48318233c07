"""Find faces in arbitrary photos and align them onto facegan's template.

Three steps, each usable on its own:

* :func:`load_image` decodes any photo a user may hand us into an RGB ``PIL.Image``
  (EXIF orientation applied; grey, palette, alpha, CMYK and 16-bit files converted).
* :func:`detect_faces` runs facenet-pytorch's MTCNN and returns, per photo, the faces it
  found (largest first) with a box, a score and five landmarks.
* :func:`align_face` warps a photo so that five landmarks land on the template of
  :mod:`facegan.geometry`, and returns the 2x3 matrix it used (photo -> aligned), which is
  what pasting a restored face back into the photo needs.

All coordinates are pixel-index coordinates (see :mod:`facegan.geometry`).

Alignment details. The similarity transform maps the detected landmarks onto the template
(least squares). When it shrinks the photo, the photo is first downscaled with a LANCZOS
filter so that the remaining warp is close to scale 1 (no aliasing); the remaining warp is
bicubic. Where the aligned square reaches past the photo's edge, the photo is continued by
mirror reflection (as FFHQ does); that continuation is blurred more, and faded towards the
photo's median colour, the farther it lies from the edge, so the padding reads as background
rather than as more faces.
"""

from __future__ import annotations

import contextlib
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage
from skimage.transform import AffineTransform, warp

from facegan.errors import FaceganError
from facegan.geometry import (
    affine_scale,
    compose,
    homogeneous,
    invert_affine,
    resize_matrix,
    similarity_matrix,
    template_points,
    translation,
)

#: Bumped whenever detection or alignment changes what a prepared dataset contains, so
#: that datasets prepared by an older facegan are recognised as stale.
ALIGNMENT_VERSION = "mtcnn512-score0.9-similarity-lanczos-bicubic-reflectblur-v2"

#: Padding: (Gaussian sigma, distance of full strength), both as fractions of the output
#: side, of the blurs blended into the mirrored continuation of the photo.
_PAD_BLURS = ((0.02, 0.05), (0.08, 0.3))
#: Padding: distance (fraction of the side) at which it has faded to the photo's median colour.
_PAD_FADE = 0.6

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
# Loading
# --------------------------------------------------------------------------------------------


def load_image(path: str | Path) -> Image.Image:
    """Decode ``path`` into an RGB image, honouring its EXIF orientation.

    Grey, palette, CMYK and 16-bit images are converted to 8-bit RGB; transparent images are
    composited over white. Raises :class:`FaceganError` (one line) when the file is missing
    or is not a decodable image.
    """
    path = Path(path)
    if not path.exists():
        raise FaceganError(f"{path} does not exist")
    if path.is_dir():
        raise FaceganError(f"{path} is a folder, not an image")
    try:
        with Image.open(path) as img:
            img.load()
            upright = ImageOps.exif_transpose(img)
            return to_rgb(upright)
    except UnidentifiedImageError:
        raise FaceganError(f"{path} is not an image (unrecognised file format)") from None
    except Image.DecompressionBombError as exc:
        raise FaceganError(f"{path} is too large to decode safely ({exc})") from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FaceganError(f"{path} is not an image ({reason})") from None


def load_alpha(path: str | Path) -> np.ndarray | None:
    """The alpha channel of an image file (uint8 (H, W), EXIF orientation applied), or None when
    it has no transparency. `restore` gives it back to the restored photo."""
    try:
        with Image.open(path) as img:
            if not (img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info)):
                return None
            img.load()
            alpha = np.asarray(ImageOps.exif_transpose(img).convert("RGBA"))[..., 3]
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, Image.DecompressionBombError):
        return None
    return None if alpha.min() == 255 else alpha.copy()


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB (16-bit and float grey rescaled, alpha over white)."""
    if img.mode == "RGB":
        return img.copy()
    if img.mode.startswith("I") or img.mode == "F":
        grey = np.asarray(img, dtype=np.float64)
        if img.mode.startswith("I;16") or (img.mode == "I" and grey.max(initial=0) > 255):
            grey = grey / 257.0
        elif img.mode == "F" and grey.max(initial=0) <= 1.0:
            grey = grey * 255.0
        grey8 = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        return Image.fromarray(np.stack([grey8] * 3, axis=-1))
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def _as_rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """A uint8 (H, W, 3) array from a PIL image or a uint8 grey/RGB/RGBA array."""
    if isinstance(image, Image.Image):
        return np.asarray(to_rgb(image))
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"align_face needs uint8 pixels, got {arr.dtype}")
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"align_face needs an (H, W, 3) image, got shape {arr.shape}")
    return np.ascontiguousarray(arr[..., :3])


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


# --------------------------------------------------------------------------------------------
# Alignment
# --------------------------------------------------------------------------------------------


def _prescale(rgb: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Downscale ``rgb`` by ``scale`` (< 1) with LANCZOS; also return the 2x3 map old -> new.

    Returns the image unchanged (identity map) when the rounded size would not shrink.
    """
    h, w = rgb.shape[:2]
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    if scale >= 1.0 or (new_w >= w and new_h >= h):
        return rgb, translation(0.0, 0.0)
    small = Image.fromarray(rgb).resize((new_w, new_h), Image.Resampling.LANCZOS)
    return np.asarray(small), resize_matrix((w, h), (new_w, new_h))


def _distance_outside(src_xy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Distance (source pixels) of each point from the photo's area, 0 for points inside."""
    x, y = src_xy[..., 0], src_xy[..., 1]
    dx = np.maximum(np.maximum(-0.5 - x, x - (width - 0.5)), 0.0)
    dy = np.maximum(np.maximum(-0.5 - y, y - (height - 0.5)), 0.0)
    return np.hypot(dx, dy)


def _soften_padding(warped: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """Blend the mirrored padding of ``warped`` towards blurred copies and the median colour.

    ``outside`` holds each output pixel's distance past the photo's edge (0 inside). Mirror
    images of a face would otherwise read as extra faces; blurring them more with distance
    and fading to the median colour of the real photo pixels keeps the padding plausible
    background (FFHQ's recipe, measured in output pixels).
    """
    size = warped.shape[0]
    out = warped
    for sigma, ramp in _PAD_BLURS:
        s = max(sigma * size, 0.5)
        blurred = ndimage.gaussian_filter(out, sigma=(s, s, 0), mode="reflect")
        weight = np.clip(outside / (ramp * size), 0.0, 1.0)[..., None]
        out = out + (blurred - out) * weight
    inside = outside == 0
    median = np.median(warped[inside] if inside.any() else warped.reshape(-1, 3), axis=0)
    weight = np.clip(outside / (_PAD_FADE * size), 0.0, 1.0)[..., None]
    return out + (median - out) * weight


def align_face(
    image: Image.Image | np.ndarray,
    landmarks: np.ndarray,
    size: int,
    template: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Warp ``image`` so that ``landmarks`` land on the template in a ``size`` square.

    ``landmarks`` are five (x, y) points in the image's pixel-index coordinates, in
    :mod:`facegan.geometry` order; ``template`` (fractions of the side) defaults to
    ``geometry.TEMPLATE``. Returns ``(aligned, M)``: the aligned face as uint8
    ``(size, size, 3)`` and the 2x3 similarity matrix mapping image pixel-index coordinates
    to aligned ones (``geometry.apply_affine(M, landmarks)`` is the least-squares fit of the
    template points). Shrinking is antialiased (LANCZOS pre-downscale), the warp is bicubic,
    and regions past the photo's edge are reflect-padded and blurred (never black).
    """
    rgb = _as_rgb_array(image)
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    if not np.all(np.isfinite(points)):
        raise ValueError("align_face got non-finite landmarks")
    if np.ptp(points, axis=0).max() < 1e-3:
        raise ValueError("align_face got degenerate landmarks (all at one point)")
    m = similarity_matrix(points, template_points(size, template))
    src, pre = _prescale(rgb, affine_scale(m))
    remaining = compose(m, invert_affine(pre))  # prescaled photo -> aligned

    out_to_src = invert_affine(remaining)
    warped = warp(
        src,
        inverse_map=AffineTransform(matrix=homogeneous(out_to_src)),
        output_shape=(size, size),
        order=3,
        mode="reflect",
        preserve_range=True,
    )

    # Soften the mirrored continuation, the more so the farther a pixel lies outside the
    # photo (distance measured in output pixels).
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    grid = np.stack([cols, rows], axis=-1)
    src_xy = grid @ out_to_src[:, :2].T + out_to_src[:, 2]
    outside = _distance_outside(src_xy, src.shape[1], src.shape[0]) * affine_scale(remaining)
    if outside.max() > 0:
        warped = _soften_padding(warped, outside)

    aligned = np.clip(np.rint(warped), 0, 255).astype(np.uint8)
    return aligned, m


# --------------------------------------------------------------------------------------------
# Photos from users (restore)
# --------------------------------------------------------------------------------------------

#: The largest photo :func:`load_photo` decodes (pixels); bigger ones are refused as possible
#: decompression bombs.
MAX_PHOTO_PIXELS = 100_000_000
#: :func:`find_faces` detects on a copy whose longer side is at most this (pixels)...
DETECT_MAX_SIDE = 512
#: ...and whose shorter side is at least this (pixels; smaller photos are enlarged)...
DETECT_MIN_SIDE = 160
#: ...and keeps the faces MTCNN scores at least this confident.
MIN_FACE_SCORE = 0.9
#: Photos with a side under this many pixels cannot hold a face worth restoring.
MIN_PHOTO_SIDE = 8
def load_photo(path: str | Path, max_pixels: int = MAX_PHOTO_PIXELS) -> Image.Image:
    """:func:`load_image` for a user's photo, refusing images over ``max_pixels``.

    The size is read from the file's header before anything is decoded, so an image that
    would expand to gigabytes (a decompression bomb) costs nothing and gives one line.
    """
    import warnings

    path = Path(path)
    limit = f"facegan refuses photos over {max_pixels / 1e6:.0f} MP (decompression-bomb guard); downscale it first"
    if path.is_file():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(path) as img:
                    width, height = img.size
        except Image.DecompressionBombError:
            raise FaceganError(f"{path} is too large to decode: {limit}") from None
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError, EOFError, struct.error):
            width = height = 0  # load_image reports why it is not an image
        if width * height > max_pixels:
            raise FaceganError(f"{path} is {width}x{height} ({width * height / 1e6:.0f} MP): {limit}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return load_image(path)


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
    """
    rgb = to_rgb(image)
    w, h = rgb.size
    if min(w, h) < MIN_PHOTO_SIDE:
        raise FaceganError(f"too small to hold a face ({w}×{h})")
    factor = min(max_side / max(w, h), 1.0)
    if factor < 1.0:
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        rgb = rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    else:
        factor = float(min(16, max(1, int(np.ceil(min_side / min(w, h))))))
        if factor > 1:
            rgb = rgb.resize((w * int(factor), h * int(factor)), Image.Resampling.BICUBIC)
    fx, fy = rgb.width / w, rgb.height / h
    with _one_cpu_thread(device):
        found = [f for f in detect_faces([rgb], device=device)[0] if f.score >= min_score]
    back = np.array([fx, fy, fx, fy], dtype=np.float64)
    for f in found:
        f.box = ((f.box + 0.5) / back - 0.5).astype(np.float32)
        f.landmarks = ((f.landmarks + 0.5) / back[:2] - 0.5).astype(np.float32)
    return found
