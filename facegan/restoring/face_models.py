"""Which face model restores which face: :class:`FaceModels` (``facegan restore``).

Inpainting has one model. Super-resolution has one per input size (``sr8-128`` takes 16 px
faces, ``sr4-128`` 32 px, ``sr2-128`` 64 px; all give 128 px), and a photo's faces come in every
size. A face ``f`` input pixels wide (the side of its aligned crop), to be enlarged ``scale``
times, gets the model that

1. never shrinks it: the model's input side is at least ``f``;
2. is made for its size: ``f`` is at least :data:`NEAR` times the model's input side. A face
   model fed a face enlarged by resampling sees a blur it was never trained on, and the generic
   SPAN on the face itself does better (the figures are at :data:`NEAR`); at its own size the
   face model wins;
3. is not enlarged after it: its output side is at least ``f * scale`` (the result is only ever
   reduced, with an anti-aliasing filter, onto the output photo);

and of those the one with the smallest input. A face no model satisfies keeps the upscaled
background (:mod:`facegan.restoring.background`, the generic SPAN), and ``restore`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from facegan.restoring.restorer import Restorer

#: Pixels of slack in the rules: a face measured 32.3 px wide still gets the 32 px model.
SLACK_PX = 0.5
#: A face model takes faces from this fraction of its input side up to its input side: its own
#: size. Measured on 40 test faces at x4 (PSNR-Y; face model / generic SPAN on the face itself):
#: 14 px via sr8-128 23.76 / 25.80, 16 px 26.69 / 26.47, 28 px via sr4-128 26.56 / 28.81, 30 px
#: 26.99 / 29.21, 32 px 28.98 / 28.78: enlarging a face even 7% before its model costs 2 dB.
NEAR = 0.97


@dataclass(frozen=True)
class FaceChoice:
    """The model a face gets (``restorer``; None: the background's pixels) and why."""

    face_px: float
    """The side of the face's aligned crop in input pixels."""
    restorer: Restorer | None

    def describe(self) -> str:
        if self.restorer is None:
            return f"{self.face_px:.0f} px face: upscaled with the background (no face model takes faces of its size)"
        return f"{self.face_px:.0f} px face: {self.restorer.ckpt.name} ({self.restorer.input_size} -> {self.restorer.size} px)"


class FaceModels:
    """The face models one ``restore`` may use, all of one task."""

    def __init__(self, restorers: list[Restorer]) -> None:
        if not restorers:
            raise ValueError("FaceModels needs at least one restorer")
        tasks = {r.task.name for r in restorers}
        if len(tasks) != 1:
            raise ValueError(f"face models of one task only, got {sorted(tasks)}")
        self.restorers = sorted(restorers, key=lambda r: r.input_size)

    @property
    def task(self):
        """The task engine of the (first) model: the task, its hole, its pictures."""
        return self.restorers[0].task

    @property
    def first(self) -> Restorer:
        return self.restorers[0]

    def choose(self, face_px: float, scale: int) -> FaceChoice:
        """The model for a face ``face_px`` input pixels wide in a photo enlarged ``scale`` times."""
        if not self.task.scale:  # inpainting: the one model, whatever the size
            return FaceChoice(face_px, self.restorers[0])
        fits = [r for r in self.restorers
                if r.input_size * NEAR <= face_px + SLACK_PX and r.input_size >= face_px - SLACK_PX
                and r.size >= (face_px - SLACK_PX) * scale]
        return FaceChoice(face_px, fits[0] if fits else None)
