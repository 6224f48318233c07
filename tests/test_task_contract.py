"""The task contract: every task in facegan.engines.tasks.TASKS, every method, on a tiny model.

A new task is one module and one line in TASKS; this file then tells its author what the
module still lacks (start by adding its tiny recipe to TINY below).
"""

from __future__ import annotations

import typing

import numpy as np
import pytest
import torch
from PIL import Image

from facegan.data.loader import to_model_range
from facegan.data.packed import PackedDataset
from facegan.engines.task import EvalSettings, Task, TaskBatch, TaskOptions, Visual
from facegan.engines.tasks import TASKS, make_task, refuse_options, task_class, task_names
from facegan.metric_info import MetricInfo
from facegan.errors import FaceganError
from facegan.recipe import RecipeBase, load_recipe
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


def test_class_declares_the_interface(task):
    cls = type(task)
    assert not getattr(cls, "__abstractmethods__", None), f"{cls.__name__} leaves abstract: {cls.__abstractmethods__}"
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
        refs = task.reference_outputs(whole)
    assert set(refs) == {r.key for r in task.references}
    assert all(r.shape == result.shape for r in refs.values())
    from facegan.metrics import to_uint8

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
    alpha = task.paste_alpha(None if not task.takes_hole else _hole(task)[0], aligned=False)
    assert alpha.shape == (task.size, task.size) and 0 <= alpha.min() and alpha.max() <= 1
    holes = None if not task.takes_hole else _hole(task)
    columns = task.compare_columns(small, holes, result)
    assert columns and all(a.shape == (N, task.size, task.size, 3) for _, a in columns)
    canvas = np.zeros((40 * task.canvas_scale, 30 * task.canvas_scale, 3), np.uint8)
    panels = task.photo_panels(np.zeros((40, 30, 3), np.uint8), canvas, np.zeros((40, 30, 3), np.uint8), canvas)
    assert panels and all(isinstance(t, str) and isinstance(a, np.ndarray) for t, a in panels)


def test_options_and_checkpoints(task):
    cls = type(task)
    info = task.checkpoint_info()
    assert info["task"] == cls.name and info["size"] == task.size and "scale" in info
    cls.check_checkpoint(info, TaskOptions(), "ckpt")
    task.check_resume(info, "ckpt")
    assert isinstance(cls.describe_options(TaskOptions()), str)
    for option in set(vars(TaskOptions())) - set(cls.options):
        value = {"mask": "eyes", "scale": 4}[option]
        with pytest.raises(FaceganError, match=f"--{option} is for"):
            refuse_options(cls, TaskOptions(**{option: value}))
