"""`facegan restore` on ordinary photos: detect, align, occlude, restore, paste back.

For every photo (one file, or every photo in a folder):

1. read it (:func:`facegan.faces.images.load_photo`: EXIF orientation, grey/RGBA/CMYK/16-bit
   converted, decompression bombs refused);
2. find its faces with MTCNN, largest first (:func:`facegan.faces.detect.detect_photo_faces`), or,
   with ``aligned``, take the whole photo as one aligned face;
3. align each face with a similarity transform of its five landmarks onto the template the
   model was trained with, at the model's input size (for SR: the model's size / scale). For SR
   each face first gets its model by its size (:mod:`facegan.restoring.face_models`: never
   shrunk, never enlarged after the model), or none when it is too large for every model;
4. place the hole: a named mask from *this face's* landmarks (mapped into the aligned
   frame), or the user's mask warped into the aligned frame with the same transform;
5. run the model (a :class:`facegan.restoring.restorer.Restorer`, whatever its back-end) on
   batches of faces drawn from several photos; the inpainting composite keeps the input
   outside the hole;
6. warp each restored face back and blend it in with a feathered alpha
   (:mod:`facegan.faces.pasteback`). For inpainting only the hole (plus a few pixels of feather)
   changes; for SR the output is the photo upscaled ``--scale`` times by the learned background
   upsampler (:mod:`facegan.restoring.background`) with each face that got a model replaced,
   its border feathered;
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
from facegan.restoring.face_models import FaceChoice, FaceModels
from facegan.restoring.fill_blend import is_grey
from facegan.restoring.planning import (JPEG_QUALITY, PhotoItem, RestoreOptions, check_options, output_paths,
                                        plan_inputs)
from facegan.restoring.restorer import Restorer

#: Faces of a comparison image are shown at least this many pixels a side (128 px is too small to judge).
COMPARE_FACE = 256
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
    restorer: Restorer | None = None
    """The model that restores it (:class:`FaceModels` chose it)."""
    raw: np.ndarray | None = None
    """The generator's whole output, uint8 (S, S, 3) (for inpainting it differs from ``output``
    outside the hole; the gradient-domain seam takes its gradients from it)."""


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
    choices: list[FaceChoice] = field(default_factory=list)
    """Which model each face found got (SR: some get none)."""


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
    choices: list[tuple[Path, FaceChoice]] = field(default_factory=list)
    """Super-resolution: each face found and the model it got (or none)."""


# --------------------------------------------------------------------------------------------
# One photo
# --------------------------------------------------------------------------------------------


class PhotoRestorer:
    """Prepares photos, runs the model over their faces in batches, and pastes them back.

    What differs between tasks comes from the restorer's task
    (:class:`facegan.tasks.base.Task`): the size of the faces the model takes, whether it
    takes a hole, how large the output photo is, the blend weights and the comparison panels.
    """

    def __init__(self, restorer: Restorer | FaceModels, options: RestoreOptions) -> None:
        self.models = restorer if isinstance(restorer, FaceModels) else FaceModels([restorer])
        self.restorer = self.models.first
        self.task = self.models.task
        self.options = options
        self.size = int(self.task.size)
        self.input_size = int(self.task.input_size)
        #: How many times larger the output photo is (SR: --scale, else the model's scale).
        self.canvas_scale = int(options.scale or self.task.canvas_scale) if self.task.scale else 1

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

        k = self.canvas_scale
        megapixels = w * k * h * k / 1e6
        if megapixels > self.options.max_megapixels:
            raise FaceganError(f"{item.path}: the restored photo would be {w * k}×{h * k} ({megapixels:,.0f} MP), over "
                               f"--max-megapixels {self.options.max_megapixels:g}; raise it, or restore a smaller photo")
        found = self._align(photo, item.path)  # faces first: a photo without one is never upscaled
        if k > 1:
            from facegan.restoring.background import upscale_photo

            canvas = upscale_photo(photo, k, self.options.background)
        else:
            canvas = photo.copy()
        to_photo = resize_matrix((canvas.shape[1], canvas.shape[0]), (w, h))  # canvas -> photo

        faces, landmarks, choices = [], [], []
        for choice, aligned, m, points in found:
            choices.append(choice)
            if choice.restorer is None:
                continue
            r = choice.restorer
            to_model = resize_matrix((r.input_size,) * 2, (r.size,) * 2)  # input -> model frame
            faces.append(FaceJob(m=compose(to_model, m, to_photo), model_input=aligned, restorer=r))
            landmarks.append(points)
        if self.task.takes_hole:
            self._place_holes(item, faces, landmarks, user_hole)
        return PhotoJob(item=item, photo=photo, canvas=canvas, faces=faces, user_hole=user_hole, alpha=alpha,
                        choices=choices)

    def _align(self, photo: np.ndarray, path: Path) -> list[tuple[FaceChoice, np.ndarray | None, np.ndarray, np.ndarray]]:
        """For every face: (its model, aligned face at that model's input size, photo -> aligned
        map, landmarks in the model frame); a face no model takes has no aligned face."""
        from facegan.faces.align import align_face
        from facegan.faces.detect import MIN_RESTORE_FACE, find_faces
        from facegan.faces.geometry import affine_scale, apply_affine, similarity_matrix, template_points

        size = self.size
        if self.options.aligned:
            h, w = photo.shape[:2]
            choice = self.models.choose(float(np.sqrt(w * h)), self.canvas_scale)
            if choice.restorer is None:
                return [(choice, None, resize_matrix((w, h), (self.input_size,) * 2), template_points(size))]
            s = choice.restorer.input_size
            aligned = np.asarray(Image.fromarray(photo).resize((s, s), Image.Resampling.LANCZOS))
            return [(choice, aligned, resize_matrix((w, h), (s, s)), template_points(size, choice.restorer.template))]
        # SR looks for faces down to MIN_RESTORE_FACE pixels of the *output* photo
        min_face = max(MIN_RESTORE_FACE // self.canvas_scale, 10)
        found = find_faces(Image.fromarray(photo), device=str(self.restorer.device), min_face=min_face)
        if not found:
            raise NoFaceError(f"no face found in {path} (if it is an aligned face crop, pass --aligned)")
        if self.options.only_center_face:
            h, w = photo.shape[:2]
            centre = np.array([(w - 1) / 2, (h - 1) / 2])
            found = [min(found, key=lambda f: float(np.hypot(*((f.box[:2] + f.box[2:]) / 2 - centre))))]
        out = []
        for face in found[: self.options.faces]:
            fit = similarity_matrix(np.asarray(face.landmarks, np.float64), template_points(size, self.restorer.template))
            choice = self.models.choose(size / affine_scale(fit), self.canvas_scale)
            r = choice.restorer
            s = r.input_size if r is not None else self.input_size
            aligned, m = align_face(photo, face.landmarks, s, (r or self.restorer).template)
            to_model = resize_matrix((s, s), (size, size))
            out.append((choice, aligned if r is not None else None, m, apply_affine(compose(to_model, m), face.landmarks)))
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
        """Restore ``faces`` in batches of ``batch_size``, each by its model (sets each ``output``)."""
        for restorer in self.models.restorers:
            mine = [f for f in faces if f.restorer is restorer]
            if not mine:
                continue
            x = np.stack([f.model_input for f in mine])
            holes = np.stack([f.hole for f in mine]) if self.task.takes_hole else None
            raw, out = restorer.restore(x, holes, batch_size=self.options.batch_size)
            for face, whole, restored in zip(mine, raw, out):
                face.raw, face.output = whole, restored

    # ---- 6: paste back ------------------------------------------------------------------------

    def finish(self, job: PhotoJob) -> tuple[np.ndarray, np.ndarray | None]:
        """(restored photo, occluded photo or None for a task without holes) once the model has run."""
        restored = job.canvas.copy()
        if self.task.takes_hole and self.options.seam == "poisson":
            grey = is_grey(job.photo)
            rng = np.random.default_rng(self.options.seed)
            for face in job.faces:
                self._blend_fill(restored, face, grey, rng)
        else:
            for face in job.faces:
                alpha = face.restorer.task.paste_alpha(face.hole, self.options.aligned)
                paste_face(restored, face.output, alpha, face.m)
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

    def _blend_fill(self, canvas: np.ndarray, face: FaceJob, grey: bool, rng: np.random.Generator) -> None:
        """An inpainted face into ``canvas`` at the photo's resolution (:mod:`facegan.restoring.fill_blend`):
        enlarged by SPAN when the photo's face is larger than the model's, made grey in a grey
        photo, meeting the photo on the seam in the gradient domain, with the photo's grain."""
        from facegan.faces.geometry import affine_scale
        from facegan.faces.pasteback import blend_into, hole_alpha, warp_face
        from facegan.restoring.fill_blend import enlarge_fill, luma, match_grain, seamless

        size = face.raw.shape[0]
        # the generator's whole output: inside the hole it is the fill, and around it it runs on
        # smoothly (the composite would step from fill to input at the hole's edge)
        out, k = enlarge_fill(face.raw, 1.0 / affine_scale(face.m))
        m = compose(resize_matrix((size, size), (size * k, size * k)), face.m)
        hole = np.kron(face.hole, np.ones((k, k), dtype=bool)) if k > 1 else face.hole
        # the hole and the task's seam (its width at the model's size, scaled with the fill)
        alpha = hole_alpha(hole, face.restorer.task.paste_rule.seam_px(size, self.options.aligned) * k)
        if grey:
            out = np.repeat(np.rint(luma(out.astype(np.float64)))[..., None], 3, axis=2).clip(0, 255).astype(np.uint8)
        warped = warp_face(canvas.shape[:2], out, alpha, m)
        if warped is None:
            return
        window, fill, a = warped
        region = a > 0
        photo = canvas[window]
        fill = match_grain(seamless(fill, photo, region), photo, a >= 0.5, rng)
        if grey:
            fill = np.repeat(luma(fill)[..., None], 3, axis=2)
        blend_into(canvas, window, np.clip(fill, 0.0, 255.0), a)

    # ---- 7: the comparison image ------------------------------------------------------------

    def compare_image(self, job: PhotoJob, restored: np.ndarray, occluded: np.ndarray | None) -> Image.Image:
        """Whole photo (the task's panels) above one row per face (the task's columns)."""
        from facegan.core.report import grid_image

        top = self.task.photo_panels(job.photo, job.canvas, occluded, restored)
        parts = [grid_image([(title, _shrink(img)[None]) for title, img in top])]
        for restorer in self.models.restorers:  # one block of rows per model (SR: its input size)
            mine = [f for f in job.faces if f.restorer is restorer]
            if not mine:
                continue
            holes = np.stack([f.hole for f in mine]) if self.task.takes_hole else None
            columns = restorer.task.compare_columns(np.stack([f.model_input for f in mine]), holes,
                                                    np.stack([f.output for f in mine]))
            parts.append(grid_image([(title, _enlarge(images, COMPARE_FACE)) for title, images in columns]))

        canvas = Image.new("RGB", (max(p.width for p in parts), sum(p.height for p in parts)), "white")
        y = 0
        for part in parts:
            canvas.paste(part, (0, y))
            y += part.height
        return canvas


#: ``--save-faces`` folders (GFPGAN's layout): the aligned inputs, the model's outputs, the holes.
FACE_FOLDERS = ("cropped_faces", "restored_faces", "masks")


def _save_faces(job: PhotoJob, out_dir: Path) -> None:
    """``--save-faces``: each face's aligned input, restored face and (inpainting) hole as PNGs,
    ``<stem>_<i>.png`` in :data:`FACE_FOLDERS` under ``out_dir``."""
    from facegan.core.report import save_image

    for i, face in enumerate(job.faces):
        name = f"{job.item.path.stem}_{i:02d}.png"
        images = [face.model_input, face.output, None if face.hole is None else face.hole.astype(np.uint8) * 255]
        for folder, image in zip(FACE_FOLDERS, images):
            if image is None:
                continue
            (out_dir / folder).mkdir(parents=True, exist_ok=True)
            save_image(Image.fromarray(image), out_dir / folder / name)


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


def _enlarge(images: np.ndarray, side: int) -> np.ndarray:
    """(N, S, S, 3) faces enlarged to at least ``side`` pixels (nearest, by a whole factor: every
    model pixel stays visible as it is)."""
    k = max(1, -(-side // images.shape[1]))
    return images.repeat(k, axis=1).repeat(k, axis=2) if k > 1 else images


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
    restorer: Restorer | FaceModels,
    options: RestoreOptions,
    on_photo: Callable[[Path, int], None] | None = None,
) -> Summary:
    """Restore one photo or every photo of a folder into ``out_dir``; see the module docstring.

    ``restorer`` is a :class:`facegan.restoring.restorer.Restorer` of the options' task, or the
    :class:`FaceModels` a face picks from (SR: one per input size). ``on_photo(path,
    faces)`` is called once per photo when it is done (written or skipped). A single photo
    raises on any problem (no face: :class:`NoFaceError`); a folder lists problems in the
    returned :class:`Summary` and goes on.
    """
    from facegan.core.report import save_image

    check_options(options)
    models = restorer if isinstance(restorer, FaceModels) else FaceModels([restorer])
    for one in models.restorers:
        one.check(options.task)
    source, out_dir = Path(source), Path(out_dir)
    remove_stale(out_dir, TEMP_PATTERN)  # temp files of restores killed before they could remove them
    strict = source.is_file()
    items, no_mask = plan_inputs(source, options, out_dir, models.task.takes_hole)
    summary = Summary(photos=len(items) + len(no_mask), no_mask=no_mask)
    engine = PhotoRestorer(models, options)
    pending: list[PhotoJob] = []

    def flush() -> None:
        engine.run([face for job in pending for face in job.faces])
        for job in pending:
            restored, occluded = engine.finish(job)
            restored_path, compare_path = output_paths(job.item.path, out_dir, options.ext)
            try:
                save_image(_with_alpha(restored, job.alpha), restored_path, quality=JPEG_QUALITY)
                summary.written.append(restored_path)
                if options.compare:
                    save_image(engine.compare_image(job, restored, occluded), compare_path)
                if options.save_faces:
                    _save_faces(job, out_dir)
            except OSError as exc:  # a full disk, a folder turned read-only: stop, and say what is there
                raise _stopped_writing(exc, out_dir, summary.written) from None
            summary.faces += len(job.faces)
            if engine.task.scale:  # SR: which model each face got is worth saying
                summary.choices += [(job.item.path, choice) for choice in job.choices]
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
