"""The task interface: everything the shared parts of facegan need from a task.

A *task* (inpainting, super-resolution, ...) is one class derived from :class:`Task`, in one
module that also holds its recipe schema, plus one line in :data:`facegan.engines.tasks.TASKS`.
The training loop (:mod:`facegan.engines.gan`), ``eval`` (:mod:`facegan.evaluate`), ``restore``
(:mod:`facegan.restore`, :mod:`facegan.photo`) and ``ablate`` call these methods and never
look at a task's name. ``tests/test_task_contract.py`` runs every method of every registered
task on a tiny model, so a new task that forgets one is told which.

The life of a task, in the order the methods are used (BasicSR's model lifecycle, with
IOPaint's template method for inference: :meth:`Task.infer` is written once here and calls
the task's :meth:`~Task.inference_batch` and :meth:`~Task.run`):

=========================  ================================================================
models                     :meth:`build_generator`, :meth:`build_discriminator`,
                           :meth:`prepare_training` (frozen loss networks)
training batches           :meth:`train_batch` (clean faces -> inputs and target, on device)
losses                     :meth:`run` (raw output, result), :meth:`losses`, :meth:`loss_weights`
evaluation                 :meth:`eval_settings` (the ``--mask``/``--scale`` options checked),
                           :meth:`eval_batch` (deterministic inputs), :attr:`references` and
                           :meth:`reference_outputs` (what a user has without the model),
                           :attr:`metric_columns` and :meth:`score` (per image)
inference                  :attr:`input_size`, :attr:`takes_hole`, :meth:`inference_batch`,
                           :meth:`infer` (uint8 faces and an optional hole -> uint8 faces)
paste-back                 :meth:`paste_alpha` (blend weights in the aligned frame),
                           :attr:`canvas_scale` (how much larger the output photo is)
pictures                   :meth:`visuals` (sample grids), :meth:`compare_columns`,
                           :meth:`photo_panels` (``restore --compare``)
checkpoints                :meth:`checkpoint_info`, :meth:`check_checkpoint`, :meth:`check_resume`
                           (options another task takes: :func:`facegan.engines.tasks.refuse_options`)
=========================  ================================================================

Images inside a task are float tensors ``(B, 3, H, W)`` in [-1, 1]; holes are ``(B, 1, S, S)``
float tensors, 1 = hole (white in a mask file); faces handed to :meth:`infer` and returned by
it are uint8 ``(N, H, W, 3)`` arrays, aligned on facegan's template (docs/design.md).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from facegan.metric_info import MetricInfo


@dataclass
class TaskBatch:
    """One batch as a task sees it; a task may derive its own with more fields."""

    target: torch.Tensor | None
    """(B,3,S,S) ground truth in [-1, 1]; None at inference, where there is none."""
    inputs: tuple[torch.Tensor, ...]
    """The generator's positional inputs."""


@dataclass
class Visual:
    """One column of a sample grid."""

    title: str
    images: torch.Tensor
    """(B,3,H,W) in [-1, 1]."""


@dataclass(frozen=True)
class Reference:
    """A no-model baseline that ``eval`` scores beside the model, by the same code."""

    key: str
    """Short name used in JSON and CSV (``grey``, ``biharmonic``, ``bicubic``)."""
    name: str
    """Row label in tables."""


@dataclass
class EvalSettings:
    """How a task makes its evaluation inputs; built by :meth:`Task.eval_settings`."""

    label: str
    """Names the setting in file names and titles (``eyes``, ``x4``)."""
    caption: str
    """Describes the inputs in the table caption (``mask 'eyes' (seed 0)``)."""
    summary: dict[str, Any] = field(default_factory=dict)
    """Fields added to eval's JSON summary (``mask``, ``mask_seed`` / ``scale``)."""
    values: dict[str, Any] = field(default_factory=dict)
    """The task's own parameters (e.g. the mask name or tensor and its seed)."""


@dataclass(frozen=True)
class TaskOptions:
    """The task-specific options of ``facegan eval`` and ``facegan restore`` (None = not given)."""

    mask: str | None = None
    scale: int | None = None

    def given(self) -> list[str]:
        return [name for name, value in vars(self).items() if value is not None]


class Task(abc.ABC):
    """A face-restoration task; see the module docstring for the method table."""

    #: The ``task`` value of its recipes.
    name: ClassVar[str]
    #: What the task is called in prose ("inpainting").
    noun: ClassVar[str]
    #: Its recipe schema (a :class:`facegan.recipe.RecipeBase` subclass with ``task: Literal[name]``).
    recipe_type: ClassVar[type]
    #: The :class:`TaskOptions` fields it understands (others are refused with one line by
    #: :func:`facegan.engines.tasks.refuse_options`).
    options: ClassVar[tuple[str, ...]] = ()
    #: Whether inference takes a hole (inpainting) or the whole face (super-resolution).
    takes_hole: ClassVar[bool] = False
    #: The no-model rows eval scores beside the model, in table order.
    references: ClassVar[tuple[Reference, ...]]
    #: (key, header, format) of the per-image metrics of :meth:`score`; eval adds ``id_cos``.
    metric_columns: ClassVar[tuple[MetricInfo, ...]]
    #: The log column of each loss term, shown in the progress line (``rec`` -> ``g_rec``).
    progress_terms: ClassVar[tuple[str, ...]] = ("rec",)

    def __init__(self, recipe) -> None:
        self.recipe = recipe
        self.size: int = recipe.data.size

    # ---- what the task is -------------------------------------------------------------------

    @property
    def scale(self) -> int | None:
        """How many times larger the output's side is than the input's (None: the same)."""
        return None

    @property
    def input_size(self) -> int:
        """Side of the faces the generator takes."""
        return self.size // (self.scale or 1)

    @property
    def canvas_scale(self) -> int:
        """How many times larger a restored photo is than the photo given."""
        return self.scale or 1

    @property
    def label(self) -> str:
        """``inpaint``, ``sr x4``: the task as progress lines and titles show it."""
        return self.name + (f" x{self.scale}" if self.scale else "")

    def checkpoint_info(self) -> dict[str, Any]:
        """What a checkpoint records about the task beyond its recipe (read back without one)."""
        return {"task": self.name, "scale": self.scale, "size": self.size}

    # ---- options ----------------------------------------------------------------------------

    @classmethod
    def check_checkpoint(cls, info: dict, options: TaskOptions, where: str) -> None:
        """FaceganError when a checkpoint of this task cannot serve ``options`` (e.g. another scale)."""

    @classmethod
    def describe_options(cls, options: TaskOptions) -> str:
        """The options as words after "a '<task>' run" (" of scale ×2"), for "none found" messages."""
        return ""

    def check_resume(self, info: dict, where: str) -> None:
        """FaceganError when the checkpoint ``info`` cannot be resumed as this task."""

    # ---- models -----------------------------------------------------------------------------

    @abc.abstractmethod
    def build_generator(self) -> nn.Module:
        """The recipe's generator."""

    @abc.abstractmethod
    def build_discriminator(self) -> nn.Module:
        """The recipe's discriminator: images at the output size -> logits."""

    def prepare_training(self, device: torch.device) -> None:
        """Load the frozen loss networks the recipe needs (fail early when one is missing)."""

    # ---- training ---------------------------------------------------------------------------

    @abc.abstractmethod
    def train_batch(self, images: torch.Tensor, landmarks: torch.Tensor, generator: torch.Generator) -> TaskBatch:
        """Clean faces (B,3,S,S) and their landmarks (B,5,2) -> inputs and target, random
        draws from ``generator`` only (a pure function of seed, rank and step)."""

    @abc.abstractmethod
    def run(self, generator: nn.Module, batch: TaskBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw generator output, result the user sees) for a batch; the result is float32."""

    @abc.abstractmethod
    def losses(self, raw: torch.Tensor, result: torch.Tensor, batch: TaskBatch) -> dict[str, torch.Tensor]:
        """The task's own loss terms (scalars); the loop adds the adversarial and identity terms."""

    @abc.abstractmethod
    def loss_weights(self) -> dict[str, float]:
        """The recipe's weight of every term :meth:`losses` can return."""

    # ---- evaluation -------------------------------------------------------------------------

    @abc.abstractmethod
    def eval_settings(self, options: TaskOptions = TaskOptions(), size: int | None = None) -> EvalSettings:
        """The deterministic evaluation inputs: the recipe's ``eval`` keys overridden by
        ``options`` (already checked by :meth:`refuse_options`); ``size`` is the dataset's side."""

    @abc.abstractmethod
    def eval_batch(self, images: torch.Tensor, landmarks: torch.Tensor, indices, settings: EvalSettings) -> TaskBatch:
        """Deterministic inputs for images ``indices`` of a split: image i's inputs depend only
        on (settings, i), never on the batch it is in."""

    @abc.abstractmethod
    def reference_outputs(self, batch: TaskBatch) -> dict[str, torch.Tensor]:
        """What a user has without the model, per :attr:`references` key: (B,3,S,S) in [-1, 1]."""

    @abc.abstractmethod
    def score(self, out_u8: np.ndarray, gt_u8: np.ndarray, batch: TaskBatch) -> dict[str, np.ndarray]:
        """Per-image metrics (keys of :attr:`metric_columns`) of uint8 results against uint8
        ground truth (N,S,S,3); float64 arrays of length N."""

    # ---- inference --------------------------------------------------------------------------

    @abc.abstractmethod
    def inference_batch(self, faces: torch.Tensor, hole: torch.Tensor | None) -> TaskBatch:
        """Generator inputs for faces (N,3,s,s) in [-1, 1] at :attr:`input_size` and, when
        :attr:`takes_hole`, their holes (N,1,S,S); the batch has no target."""

    @torch.no_grad()
    def infer(self, generator: nn.Module, faces: np.ndarray, hole: np.ndarray | torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Restore aligned faces: uint8 (N,s,s,3) at :attr:`input_size` (and an (N,S,S) or
        (N,1,S,S) hole, 1 = hole, when :attr:`takes_hole`) -> (raw output, result), uint8 (N,S,S,3)."""
        from facegan.data.loader import to_model_range
        from facegan.metrics import to_uint8

        faces = np.asarray(faces)
        s = self.input_size
        if faces.ndim != 4 or faces.shape[1:] != (s, s, 3):
            raise ValueError(f"faces must be (N,{s},{s},3) uint8 for this {self.label} model, got {faces.shape}")
        device = next(generator.parameters()).device
        x = to_model_range(torch.from_numpy(np.array(faces, dtype=np.uint8)).to(device))
        m = None
        if self.takes_hole:
            if hole is None:
                raise ValueError(f"a {self.noun} model needs a hole for every face")
            m = torch.as_tensor(np.asarray(hole) if not isinstance(hole, torch.Tensor) else hole)
            m = m.reshape(len(faces), 1, self.size, self.size).to(device, torch.float32)
        raw, result = self.run(generator, self.inference_batch(x, m))
        return to_uint8(raw.float().clamp(-1, 1)), to_uint8(result.clamp(-1, 1))

    @abc.abstractmethod
    def paste_alpha(self, hole: np.ndarray | None, aligned: bool) -> np.ndarray:
        """Blend weights (S,S) float64 of a restored face in the aligned frame (1 = take the
        model's pixel); ``aligned``: the photo is the aligned face itself."""

    # ---- pictures ---------------------------------------------------------------------------

    @abc.abstractmethod
    def visuals(self, batch: TaskBatch, raw: torch.Tensor, result: torch.Tensor) -> list[Visual]:
        """The columns of a sample grid (training samples, eval grids)."""

    @abc.abstractmethod
    def compare_columns(self, inputs: np.ndarray, holes: np.ndarray | None, outputs: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """``restore --compare``, one row per face: (title, uint8 (N,S,S,3)) columns from the
        model inputs (N,s,s,3), the holes (N,S,S) bool or None, and the results."""

    @abc.abstractmethod
    def photo_panels(self, photo: np.ndarray, canvas: np.ndarray, occluded: np.ndarray | None, restored: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """``restore --compare``, the whole-photo row: (title, uint8 image) panels."""
