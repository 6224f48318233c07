"""The fidelity knob (``--fidelity F`` on ``restore``, ``eval`` and ``export``; docs/models.md).

A GAN model is a PSNR model fine-tuned with an adversarial term (``train.init_from`` the PSNR
model, so both have the same generator). ESRGAN's *network interpolation* (Wang et al. 2018)
blends their weights, parameter by parameter::

    weights(F) = F * weights(PSNR model) + (1 - F) * weights(GAN model)

F = 1 is the PSNR model (what PSNR rewards: the average of the plausible faces), F = 0 the GAN
model (detail the discriminator asks for, some of it invented); the values between trade one for
the other smoothly, with no second network to run.

Which PSNR model a GAN model pairs with:

* a bundled GAN model's card names it (``fidelity.psnr_model``) with the SHA-256 of the weights it
  was fine-tuned from, so a later retrained PSNR model is never blended with the wrong GAN
  weights; the card also holds the default F that the measured curve chose (``fidelity.default``);
* a run's checkpoint names it as the last of its ``earlier_stages`` (its ``train.init_from``).

A PSNR model asked for ``--fidelity`` pairs with the bundled GAN model fine-tuned from it.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from facegan.checkpoints import bundled as bundled_models
from facegan.checkpoints.checkpoint import Checkpoint
from facegan.core.errors import FaceganError


def is_gan(ckpt: Checkpoint) -> bool:
    """Whether ``ckpt`` was trained with an adversarial term."""
    return ckpt.recipe.loss.adversarial > 0


def _bundled_gan_for(psnr: Checkpoint) -> Checkpoint | None:
    """The bundled GAN model whose card names the bundled PSNR model ``psnr`` as its partner."""
    if not psnr.bundled:
        return None
    for model in bundled_models.list_models():
        if (model.card.get("fidelity") or {}).get("psnr_model") == psnr.bundled:
            return Checkpoint.from_bundled(model)
    return None


def _psnr_for(gan: Checkpoint) -> Checkpoint:
    """The PSNR model ``gan`` was fine-tuned from; one FaceganError when it cannot be had."""
    if gan.bundled:
        card = bundled_models.find_model(gan.bundled).card.get("fidelity") or {}
        name = card.get("psnr_model")
        partner = bundled_models.find_model(name) if name else None
        if partner is None:
            raise FaceganError(f"{gan.describe()} names no bundled PSNR model to blend with (--fidelity needs one)")
        from facegan.core.hashing import sha256_file

        if sha256_file(partner.weights) != card.get("psnr_sha256"):
            raise FaceganError(f"--fidelity: {gan.describe()} was fine-tuned from other {name} weights than the "
                               f"bundled ones; blending them would mix two different networks")
        return Checkpoint.from_bundled(partner)
    if not gan.earlier_stages:
        raise FaceganError(f"--fidelity: {gan.describe()} was not fine-tuned from a PSNR model (no train.init_from), "
                           "so it has none to blend with")
    return Checkpoint.load(gan.earlier_stages[-1]["source"], task=gan.task_name)


def default_fidelity(ckpt: Checkpoint) -> float | None:
    """The F a bundled GAN model runs at when none is asked (its card), else None (as it is)."""
    if not ckpt.bundled or not is_gan(ckpt):
        return None
    return (bundled_models.find_model(ckpt.bundled).card.get("fidelity") or {}).get("default")


def realism_default(ckpt: Checkpoint) -> float | None:
    """The F ``restore`` runs a model at when none is asked: a bundled GAN model's card default,
    or for a bundled PSNR model the default of the bundled GAN model made from it; None (as it
    is) for anything else."""
    if is_gan(ckpt):
        return default_fidelity(ckpt)
    gan = _bundled_gan_for(ckpt)
    return default_fidelity(gan) if gan is not None else None


def blend(gan: dict[str, torch.Tensor], psnr: dict[str, torch.Tensor], fidelity: float) -> dict[str, torch.Tensor]:
    """``fidelity * psnr + (1 - fidelity) * gan``, key by key (floating tensors; others from ``gan``)."""
    if gan.keys() != psnr.keys() or any(gan[k].shape != psnr[k].shape for k in gan):
        raise FaceganError("--fidelity: the GAN and PSNR models have different generators; they cannot be blended")
    return {k: torch.lerp(g.float(), psnr[k].float(), fidelity) if g.is_floating_point() else g
            for k, g in gan.items()}


def at_fidelity(ckpt: Checkpoint, fidelity: float | None) -> Checkpoint:
    """``ckpt`` at ``fidelity`` (None: the default of :func:`default_fidelity`, or as it is).

    A GAN model is blended with its PSNR model; a PSNR model with the bundled GAN model made from
    it (F = 1 is the PSNR model itself). The result is a Checkpoint like any other (its
    ``fidelity`` set), so eval, restore and export treat it as one model."""
    if fidelity is not None and not 0.0 <= fidelity <= 1.0:
        raise FaceganError(f"--fidelity must be within 0..1, got {fidelity}")
    if fidelity is None:
        fidelity = default_fidelity(ckpt)
        if fidelity is None:
            return ckpt
    if ckpt.weights is None:
        raise FaceganError(f"--fidelity: {ckpt.describe()} holds no weights to blend (an exported file runs as it "
                           "was exported; export with --fidelity)")
    if is_gan(ckpt):
        gan, psnr = ckpt, _psnr_for(ckpt)
    else:
        gan, psnr = _bundled_gan_for(ckpt), ckpt
        if gan is None:
            raise FaceganError(f"--fidelity: {ckpt.describe()} is a PSNR model with no GAN model made from it; "
                               "pass a GAN model (facegan models)")
    return replace(gan, weights=blend(gan.weights, psnr.weights, float(fidelity)), fidelity=float(fidelity))
