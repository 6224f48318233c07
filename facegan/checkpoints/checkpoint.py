"""A trained model as ``eval``, ``restore``, ``export`` and ``train.init_from`` see it: :class:`Checkpoint`.

One typed object, whatever the model came from (docs/design.md, "Checkpoints"):

=====================================  ===========================================================
:meth:`Checkpoint.from_file`           a checkpoint file written by ``facegan train``
:meth:`Checkpoint.from_run`            a run folder (its ``checkpoints/last.pt``)
:meth:`Checkpoint.from_bundled`        a model that ships inside facegan (``facegan models``)
:meth:`Checkpoint.from_onnx_metadata`  the metadata of a file made by ``facegan export`` (no weights)
:meth:`Checkpoint.load`                any of the first three, by a path or a bundled name
:meth:`Checkpoint.find`                ``restore``'s choice when no checkpoint is named
=====================================  ===========================================================

It builds its task (:attr:`Checkpoint.task`, from its stored recipe) and its generator
(:meth:`Checkpoint.build_generator`), and :meth:`Checkpoint.check` is the one place that checks it
against the task and task options a command asks for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facegan.checkpoints import bundled as bundled_models
from facegan.checkpoints.format import read_checkpoint, resolve_checkpoint
from facegan.core.errors import FaceganError
from facegan.tasks.base import Task, TaskOptions
from facegan.tasks.recipes import validate_recipe
from facegan.tasks.registry import check_options, make_task, task_class
from facegan.tasks.schema import Recipe


@dataclass
class Checkpoint:
    """A trained model: what it is (task, sizes, recipe, template), where it came from, its weights."""

    path: str
    """Where it came from: a checkpoint file, ``bundled:NAME``, or an exported ``.onnx`` file."""
    task_name: str
    size: int
    """Side of the faces it outputs."""
    scale: int | None
    stored_recipe: dict
    """The recipe it was trained with, as stored (validated on use: :attr:`recipe`)."""
    template: dict | None
    """The aligned-face template it was trained on (``points`` as fractions of the side)."""
    step: int | None
    weights: dict[str, torch.Tensor] | None
    """The generator's weights (EMA when the run kept them); None for an exported file's metadata."""
    bundled: str | None = None
    """The bundled model's name, when it is one."""
    earlier_stages: list[dict] = field(default_factory=list)
    """The stages its starting weights came from (``train.init_from``), oldest first."""
    state: dict[str, Any] | None = None
    """The whole training state of a checkpoint file (optimizers, discriminator, ...), for ``--resume``."""
    fidelity: float | None = None
    """Set when its weights are a GAN model blended with its PSNR model (:mod:`facegan.checkpoints.fidelity`)."""

    # ---- constructors -----------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | Path, mmap: bool = False) -> Checkpoint:
        """The checkpoint file ``path`` (``mmap``: tensors mapped, not read, for a quick look)."""
        state = read_checkpoint(Path(path), mmap=mmap)
        return cls(path=str(path), task_name=str(state.get("task")), size=state.get("size"), scale=state.get("scale"),
                   stored_recipe=state.get("recipe"), template=state.get("template"), step=state.get("step"),
                   weights=state.get("ema") or state.get("generator"),
                   earlier_stages=list(state.get("earlier_stages") or []), state=state)

    @classmethod
    def from_run(cls, folder: str | Path) -> Checkpoint:
        """A run folder's ``checkpoints/last.pt``."""
        return cls.from_file(resolve_checkpoint(folder))

    @classmethod
    def from_bundled(cls, model: str | bundled_models.BundledModel) -> Checkpoint:
        """A bundled model, by name (``bundled:`` prefix allowed) or as listed; weights SHA-256-checked."""
        if isinstance(model, str):
            found = bundled_models.find_model(model)
            if found is None:
                names = ", ".join(m.name for m in bundled_models.list_models()) or "none"
                raise FaceganError(f"no bundled model called {model!r} (bundled: {names})")
            model = found
        card = model.card
        return cls(path=bundled_models.SCHEME + model.name, task_name=card["task"], size=card["size"],
                   scale=card.get("scale"), stored_recipe=card["recipe"], template=card.get("template"),
                   step=card.get("steps"), weights=bundled_models.read_weights(model), bundled=model.name,
                   earlier_stages=list(card.get("earlier_stages") or []))

    @classmethod
    def from_onnx_metadata(cls, path: str | Path, meta: dict[str, str]) -> Checkpoint:
        """What a file made by ``facegan export`` says about itself (its metadata, no weights)."""
        if "recipe" not in meta or "task" not in meta:
            raise FaceganError(f"{path} is not an ONNX model exported by `facegan export`")
        try:
            recipe = json.loads(meta["recipe"])
            template = json.loads(meta.get("template") or "null")
            scale = json.loads(meta.get("scale") or "null")
            step = json.loads(meta.get("step") or "null")
        except ValueError:
            raise FaceganError(f"{path}: its facegan metadata is not valid JSON; export it again") from None
        size = int(meta["size"]) if str(meta.get("size", "")).isdigit() else (recipe or {}).get("data", {}).get("size")
        return cls(path=str(path), task_name=meta["task"], size=size, scale=scale, stored_recipe=recipe,
                   template=template, step=step, weights=None)

    @classmethod
    def load(cls, source: str | Path, task: str | None = None, options: TaskOptions = TaskOptions()) -> Checkpoint:
        """A checkpoint file, a run folder, or a bundled model's name (a file or folder of that
        name comes first), checked against ``task`` and ``options`` (:meth:`check`)."""
        path = Path(source)
        if path.suffix == ".safetensors" and path.is_file():
            ckpt = cls.from_bundled(_bundled_at(path))
        elif path.exists() or bundled_models.find_model(str(source)) is None:
            ckpt = cls.from_file(resolve_checkpoint(source))
        else:
            ckpt = cls.from_bundled(str(source))
        return ckpt.check(task, options)

    @classmethod
    def find(cls, source: str | Path | None, task: str, options: TaskOptions = TaskOptions(), console=None) -> Checkpoint:
        """``source`` when given; else the bundled model of ``task`` (and scale), said on
        ``console``. A run is used only when named: the newest folder under ``runs/`` is often a
        smoke test."""
        if source is not None:
            return cls.load(source, task, options)
        model = bundled_models.default_model(task, options.scale)
        if model is None:
            what = f"'{task}' model" + task_class(task).describe_options(options)
            raise FaceganError(f"no bundled {what}; pass --checkpoint FILE_OR_RUN (a run folder, a checkpoint file)")
        if console is not None:
            console.print(f"using the bundled model {model.name} ({model.card.get('training_data', '')}; "
                          f"licence: {model.card.get('licence', '?')}); pass --checkpoint to choose")
        return cls.from_bundled(model).check(task, options)

    # ---- what it is -------------------------------------------------------------------------

    def check(self, task: str | None = None, options: TaskOptions = TaskOptions()) -> Checkpoint:
        """FaceganError unless it is a ``task`` model (when given) that serves ``options``; returns itself."""
        if task is not None and self.task_name != task:
            raise FaceganError(f"{self.path} is a '{self.task_name}' checkpoint, not '{task}'")
        check_options(self.task_name, options, checkpoint={"scale": self.scale, "size": self.size}, where=self.path)
        return self

    @cached_property
    def recipe(self) -> Recipe:
        """Its stored recipe, validated."""
        return validate_recipe(self.stored_recipe, source=f"{self.path} (stored recipe)")

    @cached_property
    def task(self) -> Task:
        """Its task engine, built from its recipe."""
        return make_task(self.recipe)

    @property
    def template_points(self) -> np.ndarray | None:
        """The five template landmarks it was trained on (fractions of the side), if recorded."""
        points = (self.template or {}).get("points")
        return np.asarray(points, dtype=np.float64) if points else None

    @property
    def name(self) -> str:
        """A short name for files made from it: the bundled name, the run folder's name for a
        run's ``checkpoints/last.pt``, else the file's stem."""
        return self._base_name + (f"-fidelity{self.fidelity:g}" if self.fidelity is not None else "")

    @property
    def _base_name(self) -> str:
        if self.bundled:
            return self.bundled
        path = Path(self.path)
        if path.name == "last.pt" and path.parent.name == "checkpoints":
            return path.parent.parent.resolve().name or "model"
        return path.name.removesuffix(".pt").removesuffix(".onnx") or "model"

    def describe(self) -> str:
        """Where it came from, in words (for "using ..." lines)."""
        where = f"the bundled model {self.bundled}" if self.bundled else self.path
        return where + (f" at fidelity {self.fidelity:g}" if self.fidelity is not None else "")

    def build_generator(self, device: torch.device | str = "cpu", mirror: bool | None = None) -> torch.nn.Module:
        """Its generator with its weights, in eval mode; wrapped in a
        :class:`~facegan.models.mirror.MirrorEnsemble` when its recipe asks for
        ``model.mirror_ensemble`` (``mirror`` True/False overrides the recipe)."""
        gen = self.task.build_generator()
        state = self.weights
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise FaceganError(f"{self.path} holds no generator weights")
        if not all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point()):
            raise FaceganError(f"{self.path} holds non-finite generator weights (NaN or inf): it comes from a diverged "
                               "run; use an earlier checkpoint (checkpoints/step_*.pt)")
        try:
            gen.load_state_dict(state)
        except FaceganError as err:  # e.g. SR weights of another scale
            raise FaceganError(f"{self.path}: {err}") from None
        except RuntimeError as err:
            raise FaceganError(f"{self.path}: generator weights do not fit its recipe ({str(err).splitlines()[0]})") from None
        if self.recipe.model.mirror_ensemble if mirror is None else mirror:
            from facegan.models.mirror import MirrorEnsemble

            gen = MirrorEnsemble(gen)
        return gen.to(device).eval()


def _bundled_at(path: Path) -> bundled_models.BundledModel:
    """The bundled model whose weights file is ``path`` (its card beside it), else a one-line error."""
    for model in bundled_models.list_models(path.parent):
        if model.weights.resolve() == path.resolve():
            return model
    raise FaceganError(f"{path} is a safetensors file but not a facegan bundled model (no model card "
                       f"{path.with_suffix('.json').name} beside it); pass a checkpoint, a run folder or a bundled "
                       "model's name (facegan models)")
