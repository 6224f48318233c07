"""Writing bundled models (``scripts/bundle_model.py``): a checkpoint's generator and its card."""

from __future__ import annotations

import json
from pathlib import Path

from facegan.checkpoints.bundled import BundledModel
from facegan.checkpoints.checkpoint import Checkpoint


def write_bundle(ckpt: Checkpoint, name: str, folder: Path, training_data: str, licence: str, notes: str = "",
                 fp16: bool = True) -> BundledModel:
    """Write a checkpoint's EMA generator as the bundled model ``name`` into ``folder``.

    The card gets the checkpoint's task, scale, size, template, recipe and step (and, for a
    fine-tuned run, ``earlier_stages``: each earlier stage's source, recipe and steps), the training
    data and licence given here, and an empty ``eval`` table (:func:`set_eval` fills it from
    scores of the bundled weights themselves). A GAN model fine-tuned from a bundled PSNR model
    also gets ``fidelity``: that model's name and weights' SHA-256 (the pair ``--fidelity``
    blends; :mod:`facegan.checkpoints.fidelity`) and ``default`` (None until the measured curve
    sets it: ``scripts/bundle_model.py fidelity NAME F``).
    """
    import torch
    from safetensors.torch import save

    from facegan import __version__
    from facegan.core.atomic import atomic_write_bytes
    from facegan.core.hashing import sha256_file

    state = ckpt.weights
    tensors = {k: (v.half() if fp16 and v.is_floating_point() else v).contiguous().cpu() for k, v in state.items()}
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{name}.safetensors"
    atomic_write_bytes(weights, save(tensors, metadata={"facegan_model": name, "task": ckpt.task_name}))
    card = {
        "format": "facegan-bundled-model",
        "name": name,
        "task": ckpt.task_name,
        "scale": ckpt.scale,
        "size": ckpt.size,
        "template": ckpt.template,
        "dtype": "float16" if fp16 else "float32",
        "parameters": int(sum(v.numel() for v in state.values() if v.is_floating_point())),
        "recipe": ckpt.stored_recipe,
        "earlier_stages": ckpt.earlier_stages,
        "training_data": training_data,
        "steps": int(ckpt.step or 0),
        "licence": licence,
        "notes": notes,
        "facegan_version": __version__,
        "torch_version": torch.__version__,
        "sha256": sha256_file(weights),
        "eval": {},
    }
    partner = _psnr_partner(ckpt)
    if partner is not None:
        card["fidelity"] = {"psnr_model": partner.name, "psnr_sha256": partner.card["sha256"], "default": None}
    atomic_write_bytes(folder / f"{name}.json", (json.dumps(card, indent=2) + "\n").encode())
    return BundledModel(name, weights, card)


def _psnr_partner(ckpt: Checkpoint) -> BundledModel | None:
    """The bundled PSNR model a GAN checkpoint was fine-tuned from (its last earlier stage), if any."""
    from facegan.checkpoints.bundled import find_model

    if ckpt.recipe.loss.adversarial <= 0 or not ckpt.earlier_stages:
        return None
    return find_model(str(ckpt.earlier_stages[-1].get("source", "")))


def set_eval(model: BundledModel, key: str, summary: dict) -> None:
    """Record an eval summary of the bundled weights (``facegan eval`` JSON) in the card under ``key``."""
    from facegan.core.atomic import atomic_write_bytes

    keep = ("metrics", "ci95", "references", "n_images", "split", "mask", "mask_seed", "scale", "identity_net",
            "judge", "dataset", "paired", "mirror_ensemble")
    card = dict(model.card)
    card.setdefault("eval", {})[key] = {k: summary[k] for k in keep if k in summary}
    atomic_write_bytes(model.weights.with_suffix(".json"), (json.dumps(card, indent=2) + "\n").encode())
