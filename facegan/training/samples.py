"""The training run's sample phase: the generator on the first validation faces, scored.

Every ``train.sample_every`` steps (and at the end) the trainer hands its EMA generator here:
the first :data:`SAMPLE_FACES` faces of the validation split (the eval split when the data has
no val split) go through the task's fixed evaluation inputs (the same masks or reductions as
``facegan eval``), the task's own metrics go to ``log.jsonl`` as a ``val`` record, the task's
visual columns become ``samples/step_N.png``, and the loss and validation curves are redrawn.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

#: Faces the sample phase scores and shows.
SAMPLE_FACES = 8


def sample_split(dataset, eval_split: str):
    """The split samples come from (val, else ``eval_split``), or None when it is empty."""
    names = dataset.split_names
    name = "val" if "val" in names else eval_split
    split = dataset.split(name) if name in names else None
    return split if split is not None and len(split) > 0 else None


@torch.no_grad()
def write_samples(task, generator: nn.Module, split, settings: dict, step: int, out: Path, log,
                  device: torch.device) -> str:
    """Score ``generator`` on the split's first faces, write the grid, the ``val`` record and
    the curves; returns the progress line's note (the task's first two metrics)."""
    from facegan.core.report import grid_image, plot_curves, read_log, save_image
    from facegan.data.loader import to_model_range
    from facegan.metrics import quality as metrics

    k = min(SAMPLE_FACES, len(split))
    images = to_model_range(torch.from_numpy(split.images[:k].copy()).to(device))
    lms = torch.from_numpy(split.landmarks[:k].copy()).to(device)
    batch = task.eval_batch(images, lms, range(k), settings)
    was_training = generator.training
    generator.eval()
    raw, result = task.run(generator, batch)
    generator.train(was_training)
    scores = task.score(metrics.to_uint8(result), metrics.to_uint8(batch.target), batch)
    vals = {key: float(v.mean()) for key, v in scores.items()}
    columns = [(v.title, metrics.to_uint8(v.images)) for v in task.visuals(batch, raw, result)]
    save_image(grid_image(columns), out / "samples" / f"step_{step:07d}.png")
    log.write([dict(kind="val", step=step, split=split.name, **vals)])
    plot_curves(read_log(log.path), out)
    shown = ", ".join(f"{m.header} {m.fmt.format(vals[m.key])}" for m in task.metric_columns[:2])
    return f"step {step}: {split.name} {shown}"
