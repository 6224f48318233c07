"""Photos as users hand them to facegan: decoded into RGB whatever their format.

:func:`load_image` applies the EXIF orientation and converts grey, palette, alpha, CMYK and
16-bit files; :func:`load_photo` also refuses, from the file's header alone, a photo too large
to decode (a decompression bomb); :func:`load_alpha` keeps a photo's transparency for the output.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facegan.core.errors import FaceganError, not_found

#: The largest photo :func:`load_photo` decodes (pixels); bigger ones are refused as possible
#: decompression bombs.
MAX_PHOTO_PIXELS = 100_000_000
#: Photos with a side under this many pixels cannot hold a face worth restoring.
MIN_PHOTO_SIDE = 8


def load_image(path: str | Path) -> Image.Image:
    """Decode ``path`` into an RGB image, honouring its EXIF orientation.

    Grey, palette, CMYK and 16-bit images are converted to 8-bit RGB; transparent images are
    composited over white. Raises :class:`FaceganError` (one line) when the file is missing
    or is not a decodable image.
    """
    path = Path(path)
    if not path.exists():
        raise FaceganError(f"{path} {not_found(path)}")
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


def as_rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
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
