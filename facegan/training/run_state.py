"""A run's state beyond one step: the EMA generator, which recipe changes a resume allows, and
the checks on weights (finite before a save, identical across DDP processes, an intact
checkpoint to point to when ``last.pt`` is damaged)."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from facegan.core.errors import FaceganError
from facegan.models.digest import weights_digest
from facegan.tasks.schema import Recipe

#: Model keys that change how the trained generator is run, not its weights: train.init_from
#: accepts a source that differs in them, and a resumed run may change them.
INFERENCE_ONLY_MODEL_KEYS = {"mirror_ensemble"}
#: Model keys that shape only the discriminator: a GAN fine-tune (train.init_from a PSNR model)
#: may give its own, and a source's discriminator is loaded only when they match.
DISCRIMINATOR_MODEL_KEYS = {"discriminator", "d_width", "d_head", "d_layers", "d_spectral_norm"}
#: Recipe keys that may change when a run is resumed (the rest must match the checkpoint).
RESUMABLE_CHANGES = {"train.steps", "train.epochs", "train.log_every", "train.sample_every",
                     "train.checkpoint_every", "train.keep_checkpoints", "train.device", "data.placement", "name",
                     "train.compile", "train.channels_last", "train.identity_cache",
                     *(f"model.{k}" for k in INFERENCE_ONLY_MODEL_KEYS)}


class EMA:
    """Exponential moving average of a model's parameters (buffers are copied)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        # Warm-up (as in many GAN codebases): early on the average follows the weights closely.
        d = min(self.decay, (1 + step) / (10 + step))
        ema_p = list(self.model.parameters())
        torch._foreach_lerp_(ema_p, [p.detach() for p in model.parameters()], 1 - d)
        for eb, b in zip(self.model.buffers(), model.buffers()):
            eb.copy_(b)


def flat_keys(d: dict, prefix: str = "") -> dict:
    """A nested dict as one level of dotted keys ({"a": {"b": 1}} -> {"a.b": 1})."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat_keys(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def check_resume_compatible(stored: dict, current: Recipe) -> None:
    from facegan.tasks.recipes import validate_recipe

    # Re-validated so that keys added to the schema since the checkpoint compare as their defaults.
    stored = validate_recipe(stored, source="the checkpoint's recipe").model_dump(mode="json")
    a, b = flat_keys(stored), flat_keys(current.model_dump(mode="json"))
    diff = [k for k in differing_keys(a, b) if k not in RESUMABLE_CHANGES]
    if diff:
        raise FaceganError(
            "cannot resume: the recipe differs from the checkpoint's in " + ", ".join(diff)
            + " (only the length, intervals and device may change)"
        )


def differing_keys(a: dict, b: dict) -> list[str]:
    """The keys (sorted) whose values differ between two flat dicts, a key missing on one side included."""
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def generator_differences(a: dict, b: dict) -> list[str]:
    """The ``model`` keys (flat) in which two model sections give different generators."""
    return [k for k in differing_keys(a, b) if k not in INFERENCE_ONLY_MODEL_KEYS | DISCRIMINATOR_MODEL_KEYS]


def load_init_weights(recipe: Recipe, task: str, generator: nn.Module, ema: EMA | None,
                      discriminator: nn.Module) -> list[dict]:
    """train.init_from: load the generator (EMA weights when present; they also seed the run's
    EMA) and the discriminator (when the source has one of the same shape) of another run,
    checkpoint or bundled model, of the same task, generator and size; anything else is refused
    in one line.

    Returns the stages the loaded weights were trained in, oldest first: the source's own
    ``earlier_stages`` and then the source itself (``source``, ``recipe``, ``steps``). The run
    keeps them in its checkpoints, and a bundled model's card lists them, so a fine-tuned model
    names every recipe that made it."""
    from facegan.checkpoints.checkpoint import Checkpoint
    from facegan.tasks.recipes import validate_recipe

    source = recipe.train.init_from
    where = f"train.init_from={source}"
    ckpt = Checkpoint.load(source, task=task)
    stored = validate_recipe(ckpt.stored_recipe, source=f"{where} (its stored recipe)")
    a, b = flat_keys(stored.model.model_dump(mode="json")), flat_keys(recipe.model.model_dump(mode="json"))
    diff = generator_differences(a, b)
    same_discriminator = all(a.get(k) == b.get(k) for k in DISCRIMINATOR_MODEL_KEYS)
    if diff:
        raise FaceganError(f"{where}: its model differs from this recipe's in "
                           + ", ".join(f"model.{k} ({a.get(k)} there, {b.get(k)} here)" for k in diff))
    if ckpt.size != recipe.data.size:
        raise FaceganError(f"{where}: it was trained on {ckpt.size} px faces, this recipe on {recipe.data.size} px")
    state = ckpt.weights
    try:
        generator.load_state_dict(state)
        if ema is not None:
            ema.model.load_state_dict(state)
        if same_discriminator and (ckpt.state or {}).get("discriminator") is not None:
            discriminator.load_state_dict(ckpt.state["discriminator"])
    except (RuntimeError, TypeError, AttributeError) as err:
        raise FaceganError(f"{where}: its weights do not fit this recipe's model ({str(err).splitlines()[0]})") from None
    return ckpt.earlier_stages + [
        {"source": str(source), "recipe": stored.model_dump(mode="json"), "steps": ckpt.step}]


def agreed_weights_digest(modules, world: int, step: int) -> str:
    """Under torchrun: every rank's :func:`weights_digest`, gathered; the digest when all ranks
    agree (DDP keeps the weights bit-identical), else a one-line error (nothing is saved)."""
    digests = [None] * world
    torch.distributed.all_gather_object(digests, weights_digest(modules))
    if len(set(digests)) > 1:
        raise FaceganError(f"step {step}: the {world} processes hold different weights "
                           "(DDP should keep them identical); not saving")
    return digests[0]


def all_finite(tensors) -> bool:
    """Whether every tensor holds only finite values (one host sync)."""
    flags = [torch.isfinite(t).all() for t in tensors if t.is_floating_point()]
    return bool(torch.stack(flags).all()) if flags else True


def intact_hint(last: Path) -> str:
    """Where to resume from when last.pt is damaged or missing: the newest checkpoint that loads
    (last.pt itself when it is intact and at least as new as every step_*.pt)."""
    from facegan.checkpoints.format import read_checkpoint

    def step_of(path: Path) -> int | None:
        try:
            return int(read_checkpoint(path, mmap=True).get("step") or 0)
        except FaceganError:
            return None

    last_step = step_of(last) if last.is_file() else None
    for candidate in sorted(last.parent.glob("step_*.pt"), reverse=True):
        step = step_of(candidate)
        if step is None:
            continue
        if last_step is not None and last_step >= step:
            break
        return f"the newest intact checkpoint is {candidate} (step {step}): copy it to {last} and --resume again"
    if last_step is not None:
        return f"{last} is intact (step {last_step})"
    return "no intact step_*.pt is left beside it: start the run again with --out"
