"""Mask files: a user's own hole as an image (white = hole), and the --mask option.

A mask image may be grey, RGB, RGBA (transparent = no hole), palette or 16-bit; it is resized
when only its scale differs from the target, then thresholded at 127 (> 127 = hole).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from facegan.core.errors import FaceganError
from facegan.data.masks import MASK_TYPES

#: Image files accepted as a mask by :func:`parse_mask_spec`.
MASK_FILE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def open_mask(path: Path):
    """The mask image at ``path`` as an 8-bit grey PIL image; FaceganError if unreadable."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise FaceganError(f"mask {path} does not exist or is not a file")
    try:
        with Image.open(path) as img:
            img.load()
            return to_grey(img)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FaceganError(f"cannot read mask {path}: {reason}") from None


def load_mask_for_photo(path: str | Path, width: int, height: int) -> Tensor:
    """A mask at a photo's resolution, (1, 1, height, width), 1 = hole.

    The mask must have the photo's aspect ratio (within 1%); it is resized when only the scale
    differs.
    """
    from PIL import Image

    path = Path(path)
    grey = open_mask(path)
    w, h = grey.size
    if abs(w * height - h * width) * 100 > min(w * height, h * width):
        raise FaceganError(f"mask {path} is {w}x{h} but the photo is {width}x{height}: aspect ratios differ")
    if (w, h) != (width, height):
        grey = grey.resize((width, height), Image.BILINEAR)
    hole = np.asarray(grey) > 127
    if not hole.any():
        raise FaceganError(f"mask {path} has no hole pixels (nothing brighter than 127): nothing to inpaint")
    return torch.from_numpy(hole.astype(np.float32))[None, None]


def load_mask_file(path: str | Path, size: int) -> Tensor:
    """Read a mask image as (1, 1, size, size) float32 on the CPU, 1 = hole (white).

    Grey, RGB, RGBA (transparent = no hole), palette and 16-bit images are accepted. An image
    that is not ``size`` x ``size`` is resized (bilinear) if its aspect ratio is within 1% of
    square; then pixels > 127 are holes. Raises :class:`FaceganError` for a missing or
    unreadable file, a non-square mask, or a mask with no hole pixels.
    """
    from PIL import Image

    path = Path(path)
    grey = open_mask(path)
    w, h = grey.size
    if abs(w - h) * 100 > min(w, h):
        raise FaceganError(
            f"mask {path} is {w}x{h} but the face is {size}x{size}; "
            "give a square mask for the aligned face (white = hole)"
        )
    if (w, h) != (size, size):
        grey = grey.resize((size, size), Image.BILINEAR)
    hole = np.asarray(grey) > 127
    if not hole.any():
        raise FaceganError(
            f"mask {path} has no hole pixels (nothing brighter than 127): nothing to inpaint"
        )
    return torch.from_numpy(hole.astype(np.float32))[None, None]


def to_grey(img):
    """An 8-bit grey ("L") version of a PIL image; alpha multiplies the brightness."""
    from PIL import Image

    if img.mode.startswith("I") or img.mode == "F":  # 16/32-bit grey: scale to 0..255
        arr = np.asarray(img, dtype=np.float64)
        top = 255.0 if arr.max() <= 255 else 65535.0
        return Image.fromarray((arr / top * 255).clip(0, 255).round().astype(np.uint8))
    if "A" in img.mode or img.mode == "P":  # transparent pixels are not holes
        rgba = img.convert("RGBA")
        lum = np.asarray(rgba.convert("RGB").convert("L"), dtype=np.float64)
        alpha = np.asarray(rgba, dtype=np.float64)[..., 3] / 255
        return Image.fromarray((lum * alpha).round().astype(np.uint8))
    return img.convert("L")


def parse_mask_spec(spec: str) -> str | Path:
    """A mask option: a name from :data:`MASK_TYPES`, or the path of a mask image or folder.

    Names are returned as ``str``; an existing image file (PNG/JPG/BMP/WebP) or folder of
    masks (matched to images by file stem by the caller) as a ``Path``. Anything else raises
    :class:`FaceganError` listing the names.
    """
    name = spec.strip()
    if name.lower() in MASK_TYPES:
        return name.lower()
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if path.is_file():
        if path.suffix.lower() not in MASK_FILE_SUFFIXES:
            raise FaceganError(
                f"mask {path} is not an image ({', '.join(MASK_FILE_SUFFIXES)} expected)"
            )
        return path
    raise FaceganError(
        f"mask {spec!r} is neither a mask type ({', '.join(MASK_TYPES)}) "
        "nor an existing mask image or folder"
    )
