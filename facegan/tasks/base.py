"""The task interface: everything the shared parts of facegan need from a task.

A *task* (inpainting, super-resolution, ...) is one class derived from :class:`Task`, in one
module that also holds its recipe schema, plus one line in :data:`facegan.tasks.registry.TASKS`.
The training loop (:mod:`facegan.training.trainer`), ``eval`` (:mod:`facegan.scoring.evaluate`), ``restore``
(:mod:`facegan.restoring.restorer`, :mod:`facegan.restoring.photo`) and ``ablate`` call these methods and never
look at a task's name. ``tests/test_task_contract.py`` runs every method of every registered
task on a tiny model, so a new task that forgets one is told which.

A task writes its maths (the abstract methods) and *declares* the rest as class attributes:
how a face is pasted back, what ``restore --compare`` shows and which options it takes are
data (:mod:`facegan.tasks.paste`, :mod:`facegan.tasks.pictures`, :mod:`facegan.tasks.option_rules`)
that this class turns into behaviour once for every task. A subclass that leaves a required
declaration out cannot be instantiated, like one that leaves an abstract method out
(:meth:`Task.undeclared` names them).

The life of a task, in the order things are used (BasicSR's model lifecycle, with IOPaint's
template method for inference: :meth:`Task.infer` is written once here and calls the task's
:meth:`~Task.inference_batch` and :meth:`~Task.run`). *Declared* marks class data, *base*
behaviour written here from it; the rest is abstract (or, *hook*, optional):

=========================  ================================================================
what the task is           declared :attr:`name`, :attr:`noun`, :attr:`recipe_type`;
                           base :attr:`scale`, :attr:`label`, :meth:`checkpoint_info`
models                     :meth:`build_generator`, :meth:`build_discriminator`,
                           hook :meth:`prepare_training` (frozen loss networks)
training batches           :meth:`train_batch` (clean faces -> inputs and target, on device)
losses                     :meth:`run` (raw output, result), :meth:`losses`, :meth:`loss_weights`;
                           declared :attr:`progress_terms`
evaluation                 :meth:`eval_settings` (the ``--mask``/``--scale`` options checked),
                           :meth:`eval_batch` (deterministic inputs), declared :attr:`references`
                           and :meth:`reference_outputs` (what a user has without the model),
                           declared :attr:`metric_columns` and :meth:`score` (per image)
inference                  declared :attr:`takes_hole`, base :attr:`input_size`,
                           :meth:`inference_batch`; base :meth:`infer` (uint8 faces and an
                           optional hole -> uint8 faces)
paste-back                 declared :attr:`paste_rule` (a :class:`~facegan.tasks.paste.PasteRule`);
                           base :meth:`paste_alpha` (blend weights in the aligned frame) and
                           :attr:`canvas_scale` (how much larger the output photo is)
pictures                   :meth:`visuals` (sample grids); declared :attr:`face_columns` and
                           :attr:`photo_row` (:mod:`facegan.tasks.pictures`), base
                           :meth:`compare_columns` and :meth:`photo_panels` (``restore --compare``)
options and checkpoints    declared :attr:`options` (name -> :class:`~facegan.tasks.option_rules.OptionRule`);
                           base :meth:`check_checkpoint`, :meth:`describe_options`,
                           :meth:`check_resume` (options another task takes:
                           :func:`facegan.tasks.registry.check_options`)
=========================  ================================================================

Images inside a task are float tensors ``(B, 3, H, W)`` in [-1, 1]; holes are ``(B, 1, S, S)``
float tensors, 1 = hole (white in a mask file); faces handed to :meth:`infer` and returned by
it are uint8 ``(N, H, W, 3)`` arrays, aligned on facegan's template (docs/design.md).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from facegan.metrics.info import MetricInfo
from facegan.tasks import option_rules
from facegan.tasks.option_rules import OptionRule
from facegan.tasks.paste import PasteRule
from facegan.tasks.pictures import (HOLE_IMAGES, Column, Panel, render_columns,
                                    render_panels)


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
    requires: str | None = None
    """A *peer* (a method users could run instead, e.g. OpenCV's fills) needs this module from an
    optional extra; eval leaves it out, with one note, when it is not installed."""
    extra: str = "peers"
    """The pip extra that brings ``requires`` (``pip install 'facegan[peers]'``)."""
    opt_in: bool = False
    """An opt-in peer: scored only when the user names its model files (the :class:`PeerModels`
    field of the same key, ``facegan eval --<key> DIR``), e.g. the slow Real-ESRGAN."""

    def available(self, peers: PeerModels | None = None) -> bool:
        """Whether the row can be scored here: its optional module is installed and, for an
        opt-in peer, ``peers`` names its model files."""
        import importlib.util

        if not self.asked(peers):
            return False
        return self.requires is None or importlib.util.find_spec(self.requires) is not None

    def asked(self, peers: PeerModels | None = None) -> bool:
        """Whether the user wants this row: every row but an opt-in peer whose files ``peers``
        does not name."""
        return not self.opt_in or getattr(peers or PeerModels(), self.key, None) is not None


@dataclass(frozen=True)
class PeerModels:
    """Model files of the opt-in peers a user asked eval to score (None = not asked)."""

    realesrgan: Path | None = None
    """Folder with ``realesrgan-x4plus.param`` / ``.bin`` (:mod:`facegan.models.realesrgan`)."""

    def files(self) -> dict[str, tuple[Path, ...]]:
        """The model files of each peer asked for (checked: a FaceganError names a missing one)."""
        from facegan.models.realesrgan import model_files

        return {"realesrgan": model_files(self.realesrgan)} if self.realesrgan is not None else {}


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


def _tuple_of(kind: type, non_empty: bool = True) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, tuple) and (bool(v) or not non_empty) and all(isinstance(x, kind) for x in v)


#: The class data a task declares: attribute -> (what it must be, the test it must pass).
#: Those without a default on :class:`Task` are required.
DECLARED: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "name": ("a non-empty str", lambda v: isinstance(v, str) and bool(v)),
    "noun": ("a non-empty str", lambda v: isinstance(v, str) and bool(v)),
    "recipe_type": ("a class (its recipes' RecipeBase subclass)", lambda v: isinstance(v, type)),
    "references": ("a non-empty tuple of Reference", _tuple_of(Reference)),
    "metric_columns": ("a non-empty tuple of MetricInfo", _tuple_of(MetricInfo)),
    "paste_rule": ("a PasteRule", lambda v: isinstance(v, PasteRule)),
    "options": ("a mapping of TaskOptions field -> OptionRule",
                lambda v: isinstance(v, Mapping) and all(isinstance(r, OptionRule) for r in v.values())
                and set(v) <= set(vars(TaskOptions()))),
    "takes_hole": ("a bool", lambda v: isinstance(v, bool)),
    "progress_terms": ("a tuple of str", _tuple_of(str, non_empty=False)),
    "face_columns": ("a non-empty tuple of Column", _tuple_of(Column)),
    "photo_row": ("a non-empty tuple of Panel", _tuple_of(Panel)),
}


class Task(abc.ABC):
    """A face-restoration task; see the module docstring for the method table."""

    # ---- declared data (see DECLARED) -----------------------------------------------------------

    #: The ``task`` value of its recipes.
    name: ClassVar[str]
    #: What the task is called in prose ("inpainting").
    noun: ClassVar[str]
    #: Its recipe schema (a :class:`facegan.tasks.recipes.RecipeBase` subclass with ``task: Literal[name]``).
    recipe_type: ClassVar[type]
    #: The no-model rows eval scores beside the model, in table order.
    references: ClassVar[tuple[Reference, ...]]
    #: (key, header, format) of the per-image metrics of :meth:`score`; eval adds ``id_cos``.
    metric_columns: ClassVar[tuple[MetricInfo, ...]]
    #: How a restored face is blended back into its photo (:meth:`paste_alpha`).
    paste_rule: ClassVar[PasteRule]
    #: The :class:`TaskOptions` fields it takes, each with what a checkpoint fixes about it (others
    #: are refused with one line by :func:`facegan.tasks.registry.check_options`).
    options: ClassVar[Mapping[str, OptionRule]] = MappingProxyType({})
    #: Whether inference takes a hole (inpainting) or the whole face (super-resolution).
    takes_hole: ClassVar[bool] = False
    #: The log column of each loss term, shown in the progress line (``rec`` -> ``g_rec``).
    progress_terms: ClassVar[tuple[str, ...]] = ("rec",)
    #: ``restore --compare``: the columns of each face's row (:meth:`compare_columns`).
    face_columns: ClassVar[tuple[Column, ...]] = (Column("input", "input"), Column("restored", "restored"))
    #: ``restore --compare``: the whole-photo panels (:meth:`photo_panels`).
    photo_row: ClassVar[tuple[Panel, ...]] = (Panel("input", "photo"), Panel("restored", "restored"))

    @classmethod
    def undeclared(cls) -> list[str]:
        """The declarations this class lacks or gets wrong, as words (empty when complete)."""
        problems = []
        for attr, (what, ok) in DECLARED.items():
            if not hasattr(cls, attr):
                problems.append(f"{attr} (missing: {what})")
            elif not ok(getattr(cls, attr)):
                problems.append(f"{attr} (not {what})")
        if getattr(cls, "takes_hole", True) is False:
            for attr in ("face_columns", "photo_row"):
                if any(item.image in HOLE_IMAGES for item in getattr(cls, attr, ())):
                    problems.append(f"{attr} (shows a hole, but takes_hole is False)")
        return problems

    def __init__(self, recipe) -> None:
        missing = type(self).undeclared()
        if missing:  # as ABC refuses a class with abstract methods left
            name = type(self).__name__
            raise TypeError(f"Can't instantiate task class {name} without declaring {'; '.join(missing)}")
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

    # ---- options (from :attr:`options`) -----------------------------------------------------

    @classmethod
    def check_checkpoint(cls, info: dict, options: TaskOptions, where: str) -> None:
        """FaceganError when a checkpoint of this task cannot serve ``options`` (e.g. another scale)."""
        option_rules.check_checkpoint(cls.options, info, options, where)

    @classmethod
    def describe_options(cls, options: TaskOptions) -> str:
        """The options as words after "a '<task>' run" (" of scale ×2"), for "none found" messages."""
        return option_rules.describe(cls.options, options)

    def check_resume(self, info: dict, where: str) -> None:
        """FaceganError when the checkpoint ``info`` cannot be resumed as this task."""
        option_rules.check_resume(self.options, info, self.checkpoint_info(), where)

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
        ``options`` (already checked by :func:`~facegan.tasks.registry.check_options`);
        ``size`` is the dataset's side."""

    @abc.abstractmethod
    def eval_batch(self, images: torch.Tensor, landmarks: torch.Tensor, indices, settings: EvalSettings) -> TaskBatch:
        """Deterministic inputs for images ``indices`` of a split: image i's inputs depend only
        on (settings, i), never on the batch it is in."""

    def available_references(self, peers: PeerModels | None = None) -> tuple[Reference, ...]:
        """The :attr:`references` that can be scored here (peers whose extra is installed; opt-in
        peers only when ``peers`` names their files)."""
        return tuple(r for r in self.references if r.available(peers))

    @abc.abstractmethod
    def reference_outputs(self, batch: TaskBatch, keys: tuple[str, ...],
                          peers: PeerModels | None = None) -> dict[str, torch.Tensor]:
        """What a user has without the model, for each reference in ``keys`` (some of
        :meth:`available_references`): (B,3,S,S) in [-1, 1]."""

    def lmd_landmarks(self, settings: EvalSettings) -> tuple[int, ...]:
        """dlib's 68-point landmarks the landmark distance ``lmd`` is taken over (default: all)."""
        from facegan.metrics.realism import LANDMARKS

        return LANDMARKS["all"]

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
        from facegan.metrics.quality import to_uint8

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

    # ---- paste-back and pictures (from :attr:`paste_rule`, :attr:`face_columns`, :attr:`photo_row`)

    def paste_alpha(self, hole: np.ndarray | None, aligned: bool) -> np.ndarray:
        """Blend weights (S,S) float64 of a restored face in the aligned frame (1 = take the
        model's pixel); ``aligned``: the photo is the aligned face itself."""
        return self.paste_rule.alpha(self.size, hole, aligned)

    @abc.abstractmethod
    def visuals(self, batch: TaskBatch, raw: torch.Tensor, result: torch.Tensor) -> list[Visual]:
        """The columns of a sample grid (training samples, eval grids)."""

    def compare_columns(self, inputs: np.ndarray, holes: np.ndarray | None, outputs: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """``restore --compare``, one row per face: (title, uint8 (N,S,S,3)) columns from the
        model inputs (N,s,s,3), the holes (N,S,S) bool or None, and the results."""
        return render_columns(self.face_columns, self.size, inputs, holes, outputs, scale=self.scale)

    def photo_panels(self, photo: np.ndarray, canvas: np.ndarray, occluded: np.ndarray | None, restored: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """``restore --compare``, the whole-photo row: (title, uint8 image) panels."""
        images = {"photo": photo, "canvas": canvas, "occluded": occluded, "restored": restored}
        return render_panels(self.photo_row, images, scale=self.scale)
