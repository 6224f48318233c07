"""The adversarial term: what the discriminator and the generator minimise.

Both losses are the non-saturating GAN loss on logits (Goodfellow et al. 2014), computed in
float32 whatever the autocast precision of the logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def discriminator_loss(logit_real: torch.Tensor, logit_fake: torch.Tensor) -> torch.Tensor:
    """Real faces towards 1, generated ones towards 0, averaged."""
    real, fake = logit_real.float(), logit_fake.float()
    return 0.5 * (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                  + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))


def generator_loss(logit_fake: torch.Tensor) -> torch.Tensor:
    """The generator's side: its outputs judged real."""
    fake = logit_fake.float()
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
