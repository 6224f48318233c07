"""The task contract: every task in facegan.tasks.registry.TASKS, every method, on a tiny model.

A new task is one module and one line in TASKS; this file then tells its author what the
module still lacks: the abstract methods it has not written and the class data it has not
declared (``Task.undeclared``), each by name (start by adding its tiny recipe to TINY below).
"""

from __future__ import annotations

import typing

import numpy as np
import pytest
import torch
from PIL import Image

from facegan.core.errors import FaceganError
from facegan.data.loader import to_model_range
from facegan.data.packed import PackedDataset
from facegan.metrics.info import MetricInfo
from facegan.tasks.base import EvalSettings, Task, TaskBatch, TaskOptions, Visual
from facegan.tasks.recipes import RecipeBase, load_recipe
from facegan.tasks.registry import TASKS, check_options, make_task, task_class, task_names

from helpers import REPO

#: Each task's recipe and the overrides that make it a tiny model on 64-px faces.
TINY = {
    "inpaint": ("quickstart_inpaint.yaml", ["model.width=8", "model.d_width=8"]),
    "sr": ("quickstart_sr.yaml", ["model.width=8", "model.num_blocks=1", "model.d_width=8", "model.d_head=16"]),
}
N = 4


@pytest.fixture(params=task_names())
def task(request, sample_data) -> Task:
    name = request.param
    if name not in TINY:
        pytest.fail(f"task {name!r} has no tiny recipe: add one to TINY in {__file__}")
    recipe_file, overrides = TINY[name]
    recipe = load_recipe(REPO / "recipes" / recipe_file, [*overrides, "data.size=64", f"data.path={sample_data}"])
    assert recipe.task == name, f"recipes/{recipe_file} is not a '{name}' recipe"
    torch.manual_seed(0)
    return make_task(recipe)


@pytest.fixture(scope="module")
def faces(sample_data) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    split = PackedDataset(sample_data).split("test")
    u8 = np.array(split.images[:N])
    return u8, to_model_range(torch.from_numpy(u8)), torch.from_numpy(np.array(split.landmarks[:N]))


def _hole(task: Task, n: int = N) -> np.ndarray | None:
    if not task.takes_hole:
        return None
    hole = np.zeros((n, task.size, task.size), dtype=bool)
    hole[:, task.size // 4 : task.size // 2, task.size // 4 : 3 * task.size // 4] = True
    return hole


def test_the_table_names_task_classes():
    for name, target in TASKS.items():
        cls = task_class(name)
        assert issubclass(cls, Task) and cls.name == name, target
        with pytest.raises(FaceganError, match="unknown task"):
            task_class(name + "-nope")


def _gaps(cls: type[Task]) -> list[str]:
    """What ``cls`` leaves out, by name: abstract methods, then declarations."""
    return [f"method {m}" for m in sorted(getattr(cls, "__abstractmethods__", ()))] + cls.undeclared()


@pytest.mark.parametrize("name", task_names())
def test_class_leaves_nothing_out(name):
    cls = task_class(name)
    assert not _gaps(cls), f"{cls.__name__} leaves out: {'; '.join(_gaps(cls))}"


def test_a_task_that_leaves_things_out_is_told_which():
    class Half(Task):  # writes one method, declares nothing
        def run(self, generator, batch):
            raise NotImplementedError

    gaps = " ".join(_gaps(Half))
    for name in ("build_generator", "score", "visuals", "name", "noun", "recipe_type", "references",
                 "metric_columns", "paste_rule"):
        assert name in gaps, f"a task without {name} is not told so: {gaps}"
    assert "method run" not in gaps

    class Declared(Half):
        name, noun = "half", "halving"

    gaps = Declared.undeclared()
    assert not any(g.startswith(("name", "noun")) for g in gaps) and any(g.startswith("paste_rule") for g in gaps)


def test_a_task_without_its_declarations_cannot_be_made():
    from facegan.tasks.inpaint import InpaintTask

    class NoPaste(InpaintTask):
        paste_rule = None

    with pytest.raises(TypeError, match="without declaring paste_rule"):
        NoPaste(None)


def test_declared_data_of_the_wrong_kind_is_named():
    from facegan.tasks.inpaint import InpaintTask
    from facegan.tasks.paste import PasteRule
    from facegan.tasks.pictures import Column, Panel

    class NoHole(InpaintTask):
        takes_hole = False
        paste_rule = PasteRule("face", feather=0.1)
        options = {"mask": "any"}

    gaps = " ".join(NoHole.undeclared())
    assert "options (not" in gaps and "face_columns (shows a hole" in gaps and "photo_row (shows a hole" in gaps
    for make in (lambda: PasteRule("halo", 0.1), lambda: Column("x", "photo"), lambda: Panel("x", "bicubic")):
        with pytest.raises(ValueError, match="unknown"):
            make()


def test_class_declares_the_interface(task):
    cls = type(task)
    assert not _gaps(cls), f"{cls.__name__} leaves out: {'; '.join(_gaps(cls))}"
    assert cls.noun and cls.name
    assert issubclass(cls.recipe_type, RecipeBase)
    assert typing.get_args(cls.recipe_type.model_fields["task"].annotation) == (cls.name,)
    assert isinstance(task.recipe, cls.recipe_type)
    keys = [r.key for r in cls.references]
    assert keys and len(set(keys)) == len(keys), "a task needs at least one no-model reference, with unique keys"
    assert cls.metric_columns and all(isinstance(c, MetricInfo) for c in cls.metric_columns)
    assert set(cls.options) <= set(vars(TaskOptions())), "options must be fields of TaskOptions"
    assert set(cls.progress_terms) <= set(task.loss_weights()) | {"rec"}


def test_training_methods(task, faces):
    _, images, lms = faces
    G, D = task.build_generator(), task.build_discriminator()
    task.prepare_training(torch.device("cpu"))
    batch = task.train_batch(images, lms, torch.Generator().manual_seed(1))
    again = task.train_batch(images, lms, torch.Generator().manual_seed(1))
    assert isinstance(batch, TaskBatch) and batch.target.shape == (N, 3, task.size, task.size)
    for a, b in zip(batch.inputs, again.inputs):  # a pure function of the step's generator
        assert torch.equal(a, b)
    raw, result = task.run(G, batch)
    assert result.shape == (N, 3, task.size, task.size) and result.dtype == torch.float32
    assert D(result).shape[0] == N
    terms = task.losses(raw, result, batch)
    weights = task.loss_weights()
    assert terms and set(terms) <= set(weights), f"loss terms {set(terms) - set(weights)} have no weight"
    total = sum(weights[k] * v for k, v in terms.items())
    assert all(v.ndim == 0 and torch.isfinite(v) for v in terms.values())
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())


def test_evaluation_methods(task, faces):
    _, images, lms = faces
    G = task.build_generator().eval()
    settings = task.eval_settings(TaskOptions(), task.size)
    assert isinstance(settings, EvalSettings) and settings.label and settings.caption
    whole = task.eval_batch(images, lms, range(N), settings)
    halves = [task.eval_batch(images[i : i + 2], lms[i : i + 2], range(i, i + 2), settings) for i in (0, 2)]
    for k, x in enumerate(whole.inputs):  # image i's inputs depend only on i
        assert torch.equal(x, torch.cat([h.inputs[k] for h in halves]))
    with torch.no_grad():
        raw, result = task.run(G, whole)
        keys = tuple(r.key for r in task.available_references())
        refs = task.reference_outputs(whole, keys)
    assert set(refs) == set(keys) and set(keys) == {r.key for r in task.references if r.asked()}
    assert all(r.shape == result.shape for r in refs.values())
    from facegan.metrics.quality import to_uint8

    scores = task.score(to_uint8(result), to_uint8(whole.target), whole)
    assert list(scores) == [c.key for c in task.metric_columns]
    assert all(np.asarray(v).shape == (N,) and np.asarray(v).dtype == np.float64 for v in scores.values())
    visuals = task.visuals(whole, raw, result)
    assert visuals and all(isinstance(v, Visual) and v.images.shape[0] == N for v in visuals)


def test_inference_methods(task, faces):
    u8, _, _ = faces
    G = task.build_generator().eval()
    s = task.input_size
    small = np.stack([np.asarray(Image.fromarray(f).resize((s, s))) for f in u8])
    raw, result = task.infer(G, small, _hole(task))
    assert raw.shape == result.shape == (N, task.size, task.size, 3) and result.dtype == np.uint8
    with pytest.raises(ValueError):
        task.infer(G, np.zeros((1, s + 1, s + 1, 3), np.uint8), _hole(task, 1))
    if task.takes_hole:  # outside the hole the result is the input, bit for bit
        hole = _hole(task)
        assert np.array_equal(result[~hole], small[~hole])
    for aligned in (False, True):
        alpha = task.paste_alpha(None if not task.takes_hole else _hole(task)[0], aligned=aligned)
        assert alpha.shape == (task.size, task.size) and 0 <= alpha.min() and alpha.max() <= 1
    holes = None if not task.takes_hole else _hole(task)
    columns = task.compare_columns(small, holes, result)
    assert columns and all(a.shape == (N, task.size, task.size, 3) for _, a in columns)
    canvas = np.zeros((40 * task.canvas_scale, 30 * task.canvas_scale, 3), np.uint8)
    panels = task.photo_panels(np.zeros((40, 30, 3), np.uint8), canvas, np.zeros((40, 30, 3), np.uint8), canvas)
    assert panels and all(isinstance(t, str) and isinstance(a, np.ndarray) for t, a in panels)
    assert [t for t, _ in panels] == [p.title.format(scale=task.scale) for p in task.photo_row]


def test_options_and_checkpoints(task):
    cls = type(task)
    info = task.checkpoint_info()
    assert info["task"] == cls.name and info["size"] == task.size and "scale" in info
    cls.check_checkpoint(info, TaskOptions(), "ckpt")
    task.check_resume(info, "ckpt")
    assert isinstance(cls.describe_options(TaskOptions()), str)
    for option, rule in cls.options.items():  # an option a checkpoint fixes refuses another value
        if rule.checkpoint_field:
            other = {**info, rule.checkpoint_field: "other"}
            with pytest.raises(FaceganError, match="checkpoint; it cannot"):
                cls.check_checkpoint(other, TaskOptions(**{option: info[rule.checkpoint_field]}), "ckpt")
            with pytest.raises(FaceganError, match="cannot be resumed as"):
                task.check_resume(other, "ckpt")
    for option in set(vars(TaskOptions())) - set(cls.options):
        value = {"mask": "eyes", "scale": 4}[option]
        with pytest.raises(FaceganError, match=f"--{option} is for"):
            check_options(cls.name, TaskOptions(**{option: value}))
