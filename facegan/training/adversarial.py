"""The adversarial term: what the discriminator and the generator minimise (``loss.adversarial_loss``).

- ``bce``: the non-saturating GAN loss on logits (Goodfellow et al. 2014).
- ``hinge``: D minimises mean(relu(1 - real)) + mean(relu(1 + fake)), G minimises -mean(fake)
  (Lim & Ye 2017; SAGAN, BigGAN). Its loss stops paying D once a logit is past the margin, which
  keeps a strong discriminator from saturating.
- ``relativistic``: the relativistic average GAN (Jolicoeur-Martineau 2018) as ESRGAN uses it: D
  judges whether a real face is *more* real than the average generated one, and G is paid on both
  sides, so real faces' gradients reach the generator too.

Every loss is computed in float32 whatever the autocast precision of the logits.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

AdversarialLoss = Literal["bce", "hinge", "relativistic"]


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def discriminator_loss(logit_real: torch.Tensor, logit_fake: torch.Tensor,
                       kind: AdversarialLoss = "bce") -> torch.Tensor:
    """What D minimises: real faces judged real, generated ones fake."""
    real, fake = logit_real.float(), logit_fake.float()
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "relativistic":
        return 0.5 * (_bce(real - fake.mean(), 1.0) + _bce(fake - real.mean(), 0.0))
    return 0.5 * (_bce(real, 1.0) + _bce(fake, 0.0))


def generator_loss(logit_fake: torch.Tensor, logit_real: torch.Tensor | None = None,
                   kind: AdversarialLoss = "bce") -> torch.Tensor:
    """The generator's side: its outputs judged real. ``relativistic`` needs D's logits on the real
    faces of the same step (``logit_real``, without gradient)."""
    fake = logit_fake.float()
    if kind == "hinge":
        return -fake.mean()
    if kind == "relativistic":
        if logit_real is None:
            raise ValueError("the relativistic generator loss needs the real faces' logits")
        real = logit_real.float()
        return 0.5 * (_bce(real - fake.mean(), 0.0) + _bce(fake - real.mean(), 1.0))
    return _bce(fake, 1.0)
