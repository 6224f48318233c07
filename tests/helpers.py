"""Helpers the tests share (fixtures live in conftest.py): paths, tiny recipes, a recording console."""

from __future__ import annotations

import io
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The team folder beside the repository (real faces, reference weights); absent in a user's clone.
SHARED = Path(os.environ.get("FACEGAN_SHARED", REPO.parent / "shared"))

#: Overrides that make any inpainting recipe a few-second CPU run on 64 px faces.
TINY = [
    "data.size=64",
    "model.width=8",
    "model.d_width=8",
    "train.batch=4",
    "train.steps=6",
    "train.log_every=2",
    "train.sample_every=3",
    "train.checkpoint_every=3",
    "train.lr_g=1e-3",
    "loss.identity_net=mobilefacenet",
    "loss.identity=0.1",
]


def tiny_recipe(data: Path, *extra: str):
    from facegan.tasks.recipes import load_recipe

    return load_recipe(REPO / "recipes" / "quickstart_inpaint.yaml", [*TINY, f"data.path={data}", *extra])


def recording_console(width: int = 200):
    """A rich console that records into a string (read it with ``.file.getvalue()``)."""
    from rich.console import Console

    return Console(file=io.StringIO(), width=width, force_terminal=False)


def train_state(path):
    """The whole training state (a dict) in a checkpoint file or a run folder's last.pt."""
    from facegan.checkpoints.format import read_checkpoint, resolve_checkpoint

    return read_checkpoint(resolve_checkpoint(path))
