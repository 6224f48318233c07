"""The models that ship inside facegan (``facegan/assets/models``): restore works at install.

A bundled model is two files:

* ``<name>.safetensors``: the EMA generator's weights (fp16 or fp32; safetensors, so loading
  them can never run code);
* ``<name>.json``, its card: task, scale, size, template, the full recipe it was trained with,
  the training data, the step count (and the earlier stages of a fine-tuned model), the SHA-256 of the weights file, the licence, and the eval
  table (test-split scores beside the no-model references).

:func:`load_bundled` checks the SHA-256 and returns the model in the shape of a training
checkpoint (``format``, ``task``, ``scale``, ``size``, ``template``, ``recipe``, ``ema``,
``step``), so everything that takes a checkpoint (``restore``, ``eval``, ``export``) takes a
bundled model's name too. :func:`write_bundle` makes one from a run (``scripts/bundle_model.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from facegan.errors import FaceganError

#: Where the bundled models live.
MODELS_DIR = Path(__file__).resolve().parent / "assets" / "models"
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
    """The bundled model of ``task`` (and of ``scale``, for super-resolution; the smallest
    scale when none is asked), or None."""
    models = [m for m in list_models(folder) if m.task == task and (scale is None or m.scale == scale)]
    return min(models, key=lambda m: (m.scale or 0, m.name)) if models else None


def load_bundled(model: BundledModel) -> dict:
    """The model as a checkpoint dict (fp32 EMA weights), after checking its SHA-256."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from facegan.engines.checkpoint import FORMAT
    from facegan.weights import sha256_file

    expected = model.card.get("sha256")
    actual = sha256_file(model.weights)
    if actual != expected:
        raise FaceganError(f"the bundled model {model.name} is corrupted ({model.weights}: sha256 {actual[:12]}..., "
                           f"expected {str(expected)[:12]}...): reinstall facegan")
    try:
        state = load_file(str(model.weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise FaceganError(f"the bundled model {model.name} cannot be read ({exc}): reinstall facegan") from None
    card = model.card
    return {
        "format": FORMAT,
        "format_version": 1,
        "facegan_version": card.get("facegan_version"),
        "task": card["task"],
        "scale": card.get("scale"),
        "size": card["size"],
        "template": card.get("template"),
        "recipe": card["recipe"],
        "earlier_stages": card.get("earlier_stages", []),
        "step": card.get("steps"),
        "ema": {k: v.float() if v.is_floating_point() else v for k, v in state.items()},
        "bundled": model.name,
        "path": SCHEME + model.name,
    }


def write_bundle(ckpt: dict, name: str, folder: Path, training_data: str, licence: str, notes: str = "",
                 fp16: bool = True) -> BundledModel:
    """Write a checkpoint's EMA generator as the bundled model ``name`` into ``folder``.

    The card gets the checkpoint's task, scale, size, template, recipe and step (and, for a
    fine-tuned run, ``earlier_stages``: each earlier stage's source, recipe and steps), the training
    data and licence given here, and an empty ``eval`` table (:func:`set_eval` fills it from
    scores of the bundled weights themselves).
    """
    import torch
    from safetensors.torch import save

    from facegan import __version__
    from facegan.atomic import atomic_write_bytes
    from facegan.weights import sha256_file

    state = ckpt.get("ema") or ckpt["generator"]
    tensors = {k: (v.half() if fp16 and v.is_floating_point() else v).contiguous().cpu() for k, v in state.items()}
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{name}.safetensors"
    atomic_write_bytes(weights, save(tensors, metadata={"facegan_model": name, "task": str(ckpt["task"])}))
    card = {
        "format": "facegan-bundled-model",
        "name": name,
        "task": ckpt["task"],
        "scale": ckpt.get("scale"),
        "size": ckpt["size"],
        "template": ckpt.get("template"),
        "dtype": "float16" if fp16 else "float32",
        "parameters": int(sum(v.numel() for v in state.values() if v.is_floating_point())),
        "recipe": ckpt["recipe"],
        "earlier_stages": ckpt.get("earlier_stages") or [],
        "training_data": training_data,
        "steps": int(ckpt["step"]),
        "licence": licence,
        "notes": notes,
        "facegan_version": __version__,
        "torch_version": torch.__version__,
        "sha256": sha256_file(weights),
        "eval": {},
    }
    atomic_write_bytes(folder / f"{name}.json", (json.dumps(card, indent=2) + "\n").encode())
    return BundledModel(name, weights, card)


def set_eval(model: BundledModel, key: str, summary: dict) -> None:
    """Record an eval summary of the bundled weights (``facegan eval`` JSON) in the card under ``key``."""
    from facegan.atomic import atomic_write_bytes

    keep = ("metrics", "ci95", "references", "n_images", "split", "mask", "mask_seed", "scale", "identity_net",
            "judge", "dataset", "paired", "mirror_ensemble")
    card = dict(model.card)
    card.setdefault("eval", {})[key] = {k: summary[k] for k in keep if k in summary}
    atomic_write_bytes(model.weights.with_suffix(".json"), (json.dumps(card, indent=2) + "\n").encode())
