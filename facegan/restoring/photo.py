"""`facegan restore` on ordinary photos: detect, align, occlude, restore, paste back.

For every photo (one file, or every photo in a folder):

1. read it (:func:`facegan.faces.images.load_photo`: EXIF orientation, grey/RGBA/CMYK/16-bit
   converted, decompression bombs refused);
2. find its faces with MTCNN, largest first (:func:`facegan.faces.detect.detect_photo_faces`), or,
   with ``aligned``, take the whole photo as one aligned face;
3. align each face with a similarity transform of its five landmarks onto the template the
   model was trained with, at the model's input size (for SR: the model's size / scale);
4. place the hole: a named mask from *this face's* landmarks (mapped into the aligned
   frame), or the user's mask warped into the aligned frame with the same transform;
5. run the model (a :class:`facegan.restoring.restorer.Restorer`, whatever its back-end) on
   batches of faces drawn from several photos; the inpainting composite keeps the input
   outside the hole;
6. warp each restored face back and blend it in with a feathered alpha
   (:mod:`facegan.faces.pasteback`). For inpainting only the hole (plus a few pixels of feather)
   changes; for SR the output is the photo upscaled by the model's scale (bicubic) with each
   face replaced, its border feathered;
7. write ``<stem>_restored.png`` and, with ``compare``, ``<stem>_compare.png``.

One photo is strict: anything wrong raises (no face: :class:`NoFaceError`, exit code 3) and
nothing is written. A folder keeps going: photos that cannot be read, hold no face or have no
mask are listed in the :class:`Summary`. An input file is never overwritten. The options and
the plan (which photos, which masks, which outputs): :mod:`facegan.restoring.planning`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facegan.core.atomic import TEMP_PATTERN
from facegan.core.errors import FaceganError, NoFaceError
from facegan.core.locks import remove_stale
from facegan.core.report import HOLE_GREY
from facegan.faces.geometry import compose, resize_matrix
from facegan.faces.pasteback import hole_on_canvas, mask_to_aligned, paste_face
from facegan.restoring.planning import PhotoItem, RestoreOptions, check_options, output_paths, plan_inputs
from facegan.restoring.restorer import Restorer

#: Whole-photo panels of a comparison image are shrunk to at most this many pixels a side.
COMPARE_MAX_SIDE = 1024


@dataclass
class FaceJob:
    """One face of a photo on its way through the model."""

    m: np.ndarray
    """2x3 map: output canvas pixel-index coordinates -> the model's aligned frame (S x S)."""
    model_input: np.ndarray
    """The aligned face given to the model, uint8 (s, s, 3) (s = S, or S / scale for SR)."""
    hole: np.ndarray | None = None
    """The hole in the aligned frame, (S, S) bool (tasks that take a hole)."""
    output: np.ndarray | None = None
    """The restored aligned face, uint8 (S, S, 3), once the model has run."""


@dataclass
class PhotoJob:
    """A photo with its faces; ``canvas`` is what the output starts from."""

    item: PhotoItem
    photo: np.ndarray
    canvas: np.ndarray
    faces: list[FaceJob]
    user_hole: np.ndarray | None = None
    alpha: np.ndarray | None = None
    """The photo's alpha channel (uint8 (H, W)) when it has transparency: the output keeps it."""


@dataclass
class Summary:
    """What a run of :func:`restore_photos` did."""

    photos: int = 0
    """Photos found (including those skipped)."""
    faces: int = 0
    """Faces restored."""
    written: list[Path] = field(default_factory=list)
    """Restored photos written (``<stem>_restored.png``)."""
    no_face: list[Path] = field(default_factory=list)
    no_mask: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    """Photos that could not be restored, with the reason (unreadable, bad mask, ...)."""


# --------------------------------------------------------------------------------------------
# One photo
# --------------------------------------------------------------------------------------------


class PhotoRestorer:
    """Prepares photos, runs the model over their faces in batches, and pastes them back.

    What differs between tasks comes from the restorer's task
    (:class:`facegan.tasks.base.Task`): the size of the faces the model takes, whether it
    takes a hole, how large the output photo is, the blend weights and the comparison panels.
    """

    def __init__(self, restorer: Restorer, options: RestoreOptions) -> None:
        self.restorer = restorer
        self.task = restorer.task
        self.options = options
        self.size = int(self.task.size)
        self.input_size = int(self.task.input_size)

    # ---- 1-4: read, detect, align, place the hole --------------------------------------------

    def prepare(self, item: PhotoItem) -> PhotoJob:
        """Read ``item``'s photo, find and align its faces and place their holes.

        Raises :class:`FaceganError` for an unreadable photo or mask, :class:`NoFaceError`
        when no face is found, and FaceganError when a user mask covers none of the faces.
        """
        from facegan.data.mask_files import load_mask_for_photo
        from facegan.faces.images import load_alpha, load_photo

        photo = np.asarray(load_photo(item.path))
        alpha = load_alpha(item.path)
        h, w = photo.shape[:2]
        user_hole = None
        if isinstance(item.mask, Path):
            user_hole = load_mask_for_photo(item.mask, w, h)[0, 0].numpy() > 0.5

        k = self.task.canvas_scale
        megapixels = w * k * h * k / 1e6
        if megapixels > self.options.max_megapixels:
            raise FaceganError(f"{item.path}: the restored photo would be {w * k}×{h * k} ({megapixels:,.0f} MP), over "
                               f"--max-megapixels {self.options.max_megapixels:g}; raise it, or restore a smaller photo")
        found = self._align(photo, item.path)  # faces first: a photo without one is never upscaled
        canvas = (np.asarray(Image.fromarray(photo).resize((w * k, h * k), Image.Resampling.BICUBIC)) if k > 1
                  else photo.copy())
        to_photo = resize_matrix((canvas.shape[1], canvas.shape[0]), (w, h))  # canvas -> photo
        to_model = resize_matrix((self.input_size,) * 2, (self.size,) * 2)  # input -> model frame

        faces, landmarks = [], []
        for aligned, m, points in found:
            faces.append(FaceJob(m=compose(to_model, m, to_photo), model_input=aligned))
            landmarks.append(points)
        if self.task.takes_hole:
            self._place_holes(item, faces, landmarks, user_hole)
        return PhotoJob(item=item, photo=photo, canvas=canvas, faces=faces, user_hole=user_hole, alpha=alpha)

    def _align(self, photo: np.ndarray, path: Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(aligned face at the input size, photo -> aligned map, landmarks in the model frame)."""
        from facegan.faces.align import align_face
        from facegan.faces.detect import MIN_RESTORE_FACE, find_faces
        from facegan.faces.geometry import apply_affine, template_points

        s, size = self.input_size, self.size
        to_model = resize_matrix((s, s), (size, size))
        if self.options.aligned:
            h, w = photo.shape[:2]
            aligned = np.asarray(Image.fromarray(photo).resize((s, s), Image.Resampling.LANCZOS))
            return [(aligned, resize_matrix((w, h), (s, s)), template_points(size, self.restorer.template))]
        found = find_faces(Image.fromarray(photo), device=str(self.restorer.device), min_face=MIN_RESTORE_FACE)
        if not found:
            raise NoFaceError(f"no face found in {path} (if it is an aligned face crop, pass --aligned)")
        out = []
        for face in found[: self.options.faces]:
            aligned, m = align_face(photo, face.landmarks, s, self.restorer.template)
            out.append((aligned, m, apply_affine(compose(to_model, m), face.landmarks)))
        return out

    def _place_holes(self, item: PhotoItem, faces: list[FaceJob], landmarks: list[np.ndarray], user_hole) -> None:
        """Set each face's hole; faces a user mask does not touch are dropped."""
        from facegan.data.masks import eval_masks

        if user_hole is None:
            lms = torch.tensor(np.stack(landmarks), dtype=torch.float32)
            masks = eval_masks(str(item.mask), list(range(len(lms))), self.size, landmarks=lms, seed=self.options.seed)
            for face, mask in zip(faces, masks):
                face.hole = mask[0].numpy() > 0.5
            return
        for face in faces:
            face.hole = mask_to_aligned(user_hole, face.m, self.size)
        kept = [f for f in faces if f.hole.any()]
        if not kept:
            raise FaceganError(f"mask {item.mask} covers none of the {len(faces)} face(s) found in {item.path}")
        faces[:] = kept

    # ---- 5: the model -----------------------------------------------------------------------

    def run(self, faces: list[FaceJob]) -> None:
        """Restore ``faces`` in batches of ``batch_size`` (sets each ``output``)."""
        if not faces:
            return
        x = np.stack([f.model_input for f in faces])
        holes = np.stack([f.hole for f in faces]) if self.task.takes_hole else None
        _, out = self.restorer.restore(x, holes, batch_size=self.options.batch_size)
        for face, restored in zip(faces, out):
            face.output = restored

    # ---- 6: paste back ------------------------------------------------------------------------

    def finish(self, job: PhotoJob) -> tuple[np.ndarray, np.ndarray | None]:
        """(restored photo, occluded photo or None for a task without holes) once the model has run."""
        restored = job.canvas.copy()
        for face in job.faces:
            paste_face(restored, face.output, self.task.paste_alpha(face.hole, self.options.aligned), face.m)
        if not self.task.takes_hole:
            return restored, None
        hole = job.user_hole
        if hole is None:
            hole = np.zeros(job.photo.shape[:2], dtype=bool)
            for face in job.faces:
                hole |= hole_on_canvas(face.hole, face.m, hole.shape)
        occluded = job.photo.copy()
        occluded[hole] = HOLE_GREY
        return restored, occluded

    # ---- 7: the comparison image ------------------------------------------------------------

    def compare_image(self, job: PhotoJob, restored: np.ndarray, occluded: np.ndarray | None) -> Image.Image:
        """Whole photo (the task's panels) above one row per face (the task's columns)."""
        from facegan.core.report import grid_image

        top = self.task.photo_panels(job.photo, job.canvas, occluded, restored)
        photos = grid_image([(title, _shrink(img)[None]) for title, img in top])
        holes = np.stack([f.hole for f in job.faces]) if self.task.takes_hole else None
        columns = self.task.compare_columns(np.stack([f.model_input for f in job.faces]), holes,
                                            np.stack([f.output for f in job.faces]))
        per_face = grid_image(columns)

        canvas = Image.new("RGB", (max(photos.width, per_face.width), photos.height + per_face.height), "white")
        canvas.paste(photos, (0, 0))
        canvas.paste(per_face, (0, photos.height))
        return canvas


def _stopped_writing(err: OSError, out_dir: Path, written: list[Path]) -> FaceganError:
    """The error of a write that failed midway: exit 1 and the files already written, or exit 2
    when nothing was."""
    reason = str(err) if isinstance(err, FaceganError) else f"cannot write to {out_dir}: {err.strerror or err}"
    if not written:
        return FaceganError(reason)
    listed = ", ".join(str(p) for p in written[:5]) + (f" and {len(written) - 5} more" if len(written) > 5 else "")
    return FaceganError(f"{reason}; stopped after writing {len(written)} restored photo(s): {listed}", exit_code=1)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def _with_alpha(restored: np.ndarray, alpha: np.ndarray | None) -> Image.Image:
    """The restored photo, with the input's transparency (resized to it) when it had some."""
    image = Image.fromarray(restored)
    if alpha is None:
        return image
    h, w = restored.shape[:2]
    a = Image.fromarray(alpha)
    if a.size != (w, h):
        a = a.resize((w, h), Image.Resampling.BICUBIC)
    image.putalpha(a)
    return image


def _shrink(img: np.ndarray) -> np.ndarray:
    """``img`` shrunk (LANCZOS) so that its longer side is at most :data:`COMPARE_MAX_SIDE`."""
    h, w = img.shape[:2]
    if max(h, w) <= COMPARE_MAX_SIDE:
        return img
    f = COMPARE_MAX_SIDE / max(h, w)
    return np.asarray(Image.fromarray(img).resize((max(1, round(w * f)), max(1, round(h * f))), Image.Resampling.LANCZOS))


# --------------------------------------------------------------------------------------------
# Many photos
# --------------------------------------------------------------------------------------------


def restore_photos(
    source: str | Path,
    out_dir: str | Path,
    restorer: Restorer,
    options: RestoreOptions,
    on_photo: Callable[[Path, int], None] | None = None,
) -> Summary:
    """Restore one photo or every photo of a folder into ``out_dir``; see the module docstring.

    ``restorer`` is a :class:`facegan.restoring.restorer.Restorer` of the options' task. ``on_photo(path,
    faces)`` is called once per photo when it is done (written or skipped). A single photo
    raises on any problem (no face: :class:`NoFaceError`); a folder lists problems in the
    returned :class:`Summary` and goes on.
    """
    from facegan.core.report import save_image

    check_options(options)
    restorer.check(options.task)
    source, out_dir = Path(source), Path(out_dir)
    remove_stale(out_dir, TEMP_PATTERN)  # temp files of restores killed before they could remove them
    strict = source.is_file()
    items, no_mask = plan_inputs(source, options, out_dir, restorer.task.takes_hole)
    summary = Summary(photos=len(items) + len(no_mask), no_mask=no_mask)
    engine = PhotoRestorer(restorer, options)
    pending: list[PhotoJob] = []

    def flush() -> None:
        engine.run([face for job in pending for face in job.faces])
        for job in pending:
            restored, occluded = engine.finish(job)
            restored_path, compare_path = output_paths(job.item.path, out_dir)
            try:
                save_image(_with_alpha(restored, job.alpha), restored_path)
                summary.written.append(restored_path)
                if options.compare:
                    save_image(engine.compare_image(job, restored, occluded), compare_path)
            except OSError as exc:  # a full disk, a folder turned read-only: stop, and say what is there
                raise _stopped_writing(exc, out_dir, summary.written) from None
            summary.faces += len(job.faces)
            if on_photo is not None:
                on_photo(job.item.path, len(job.faces))
        pending.clear()

    for item in items:
        try:
            job = engine.prepare(item)
        except NoFaceError:
            if strict:
                raise
            summary.no_face.append(item.path)
        except Exception as err:  # one photo's problem never stops the batch
            reason = str(err) if isinstance(err, FaceganError) else _one_line(err)
            if strict:
                raise (err if isinstance(err, FaceganError) else FaceganError(f"cannot restore {item.path}: {reason}")) from None
            summary.failed.append((item.path, reason))
        else:
            pending.append(job)
            if sum(len(j.faces) for j in pending) >= options.batch_size:
                flush()
            continue
        if on_photo is not None:
            on_photo(item.path, 0)
    flush()
    return summary
