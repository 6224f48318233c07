"""The models that ship inside facegan (``facegan/assets/models``): restore works at install.

A bundled model is two files:

* ``<name>.safetensors``: the EMA generator's weights (fp16 or fp32; safetensors, so loading
  them can never run code);
* ``<name>.json``, its card: task, scale, size, template, the full recipe it was trained with,
  the training data, the step count (and the earlier stages of a fine-tuned model), the SHA-256 of the weights file, the licence, and the eval
  table (test-split scores beside the no-model references).

:func:`read_weights` checks the SHA-256; :meth:`facegan.checkpoints.checkpoint.Checkpoint.from_bundled`
turns a bundled model into a checkpoint, so everything that takes a checkpoint (``restore``,
``eval``, ``export``) takes a bundled model's name too. :mod:`facegan.checkpoints.bundle_writer`
makes one from a run (``scripts/bundle_model.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from facegan.core.errors import FaceganError

#: Where the bundled models live.
MODELS_DIR = Path(__file__).resolve().parent.parent / "assets" / "models"
#: Prefix of a bundled model's ``path`` in a checkpoint dict.
SCHEME = "bundled:"


@dataclass(frozen=True)
class BundledModel:
    """A bundled model's card (its JSON sidecar) and where its weights are."""

    name: str
    weights: Path
    card: dict

    @property
    def task(self) -> str:
        return self.card["task"]

    @property
    def scale(self) -> int | None:
        return self.card.get("scale")

    @property
    def size_bytes(self) -> int:
        return self.weights.stat().st_size


def list_models(folder: Path | None = None) -> list[BundledModel]:
    """Every bundled model (name order); a model whose card cannot be read is left out."""
    folder = folder or MODELS_DIR
    found = []
    for card_path in sorted(folder.glob("*.json")):
        weights = card_path.with_suffix(".safetensors")
        try:
            card = json.loads(card_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if weights.is_file() and isinstance(card, dict) and card.get("format") == "facegan-bundled-model":
            found.append(BundledModel(card_path.stem, weights, card))
    return found


def find_model(name: str, folder: Path | None = None) -> BundledModel | None:
    """The bundled model called ``name`` (``bundled:`` prefix allowed), or None."""
    name = name.removeprefix(SCHEME)
    return next((m for m in list_models(folder) if m.name == name), None)


def default_model(task: str, scale: int | None = None, folder: Path | None = None) -> BundledModel | None:
    """The bundled model of ``task`` (and of ``scale``, for super-resolution; when none is asked,
    x4, the usual scale, if it ships, else the smallest), or None."""
    models = [m for m in list_models(folder) if m.task == task and (scale is None or m.scale == scale)]
    return min(models, key=lambda m: (m.scale != 4, m.scale or 0, m.name)) if models else None


def read_weights(model: BundledModel) -> dict:
    """The model's generator weights (fp32), after checking the file's SHA-256 against its card."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from facegan.core.hashing import sha256_file

    expected = model.card.get("sha256")
    actual = sha256_file(model.weights)
    if actual != expected:
        raise FaceganError(f"the bundled model {model.name} is corrupted ({model.weights}: sha256 {actual[:12]}..., "
                           f"expected {str(expected)[:12]}...): reinstall facegan")
    try:
        state = load_file(str(model.weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise FaceganError(f"the bundled model {model.name} cannot be read ({exc}): reinstall facegan") from None
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
