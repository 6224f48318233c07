"""What ``restore --compare`` shows for a task, declared as data and rendered once here.

A comparison image is a row of whole-photo panels above one row of columns per face. A task
declares both as titles plus the image each shows (``Task.face_columns``, ``Task.photo_row``);
:meth:`facegan.tasks.base.Task.compare_columns` and :meth:`~facegan.tasks.base.Task.photo_panels`
render them with the functions below. Titles may name ``{scale}`` (the task's scale).

Images a face column can show (each uint8 (N, S, S, 3) at the model's output size):

==============  ==============================================================================
``input``       the model's input, enlarged to the output size by nearest neighbour (pixels seen)
``bicubic``     the model's input, enlarged bicubically (what a user has without the model)
``occluded``    the model's input with its hole mid-grey (tasks that take a hole)
``hole``        the hole, white on black (tasks that take a hole)
``restored``    the model's result
==============  ==============================================================================

Images a photo panel can show: ``photo`` (the photo given), ``canvas`` (the photo at the
output's scale, bicubic), ``occluded`` (the photo with its holes grey, tasks that take a hole)
and ``restored`` (the photo with its faces pasted back).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

FACE_IMAGES = ("input", "bicubic", "occluded", "hole", "restored")
PHOTO_IMAGES = ("photo", "canvas", "occluded", "restored")
#: The images that only exist for a task that takes a hole.
HOLE_IMAGES = frozenset({"occluded", "hole"})


@dataclass(frozen=True)
class _Picture:
    """A titled image of ``restore --compare``, named by one of its kind's :attr:`IMAGES`."""

    title: str
    image: str
    IMAGES: ClassVar[tuple[str, ...]] = ()
    KIND: ClassVar[str] = ""

    def __post_init__(self) -> None:
        if self.image not in self.IMAGES:
            raise ValueError(f"unknown {self.KIND} image {self.image!r}; expected one of: {', '.join(self.IMAGES)}")


@dataclass(frozen=True)
class Column(_Picture):
    """One column of the per-face rows of ``restore --compare`` (an image of :data:`FACE_IMAGES`)."""

    IMAGES: ClassVar[tuple[str, ...]] = FACE_IMAGES
    KIND: ClassVar[str] = "face column"


@dataclass(frozen=True)
class Panel(_Picture):
    """One panel of the whole-photo row of ``restore --compare`` (an image of :data:`PHOTO_IMAGES`)."""

    IMAGES: ClassVar[tuple[str, ...]] = PHOTO_IMAGES
    KIND: ClassVar[str] = "photo panel"


def _enlarge(faces: np.ndarray, size: int, resample) -> np.ndarray:
    """uint8 (N, s, s, 3) faces resized to (N, size, size, 3); unchanged when already that size."""
    from PIL import Image

    if faces.shape[1:3] == (size, size):
        return faces
    return np.stack([np.asarray(Image.fromarray(f).resize((size, size), resample)) for f in faces])


def _face_image(image: str, size: int, inputs: np.ndarray, holes: np.ndarray | None, outputs: np.ndarray) -> np.ndarray:
    from PIL import Image

    from facegan.core.report import HOLE_GREY

    if image == "restored":
        return outputs
    if image in HOLE_IMAGES and holes is None:
        raise ValueError(f"a face column showing {image!r} needs the holes")
    if image == "hole":
        return np.repeat(np.asarray(holes, dtype=np.uint8)[..., None] * 255, 3, axis=-1)
    if image == "bicubic":
        return _enlarge(inputs, size, Image.Resampling.BICUBIC)
    shown = _enlarge(inputs, size, Image.Resampling.NEAREST)
    if image == "occluded":
        shown = np.array(shown, copy=True)
        shown[np.asarray(holes, dtype=bool)] = HOLE_GREY
    return shown


def render_columns(columns: tuple[Column, ...], size: int, inputs: np.ndarray, holes: np.ndarray | None,
                   outputs: np.ndarray, **fields) -> list[tuple[str, np.ndarray]]:
    """(title, uint8 (N, size, size, 3)) per declared column, titles filled from ``fields``."""
    return [(c.title.format(**fields), _face_image(c.image, size, inputs, holes, outputs)) for c in columns]


def render_panels(panels: tuple[Panel, ...], images: dict[str, np.ndarray | None], **fields) -> list[tuple[str, np.ndarray]]:
    """(title, uint8 image) per declared panel from the photo's ``images`` by name."""
    out = []
    for p in panels:
        if images.get(p.image) is None:
            raise ValueError(f"a photo panel showing {p.image!r} needs that image")
        out.append((p.title.format(**fields), images[p.image]))
    return out
