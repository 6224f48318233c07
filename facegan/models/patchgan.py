"""PatchGAN discriminator (Isola et al., pix2pix): a grid of real/fake logits.

``layers`` stride-2 4x4 convolutions (width, 2w, 4w, ... capped at 8w) with LeakyReLU 0.2 and
BatchNorm (not on the first), one stride-1 4x4 convolution, and a 4x4 convolution to one
logit per patch. ``layers=3`` gives the classic 70x70 receptive field. Outputs raw logits:
the losses use BCE-with-logits, never a sigmoid inside the model.
"""

from __future__ import annotations

import torch
from torch import nn

from facegan.models.context_encoder import _init_weights


class PatchGAN(nn.Module):
    def __init__(self, in_channels: int = 3, width: int = 64, layers: int = 3, spectral_norm: bool = False) -> None:
        super().__init__()
        mods: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        ch = width
        for i in range(1, layers + 1):
            nxt = width * min(2**i, 8)
            stride = 2 if i < layers else 1
            norm = nn.Identity() if spectral_norm else nn.BatchNorm2d(nxt)
            mods += [nn.Conv2d(ch, nxt, 4, stride, 1, bias=spectral_norm), norm, nn.LeakyReLU(0.2, inplace=True)]
            ch = nxt
        mods.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.net = nn.Sequential(*mods)
        self.apply(_init_weights)
        if spectral_norm:
            for i, mod in enumerate(self.net):
                if isinstance(mod, nn.Conv2d):
                    self.net[i] = nn.utils.parametrizations.spectral_norm(mod)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
