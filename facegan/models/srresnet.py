"""SRGAN's networks (Ledig et al. 2017): the SRResNet generator and the VGG-style discriminator.

Generator, for a low-resolution face ``(B, 3, h, w)`` in [-1, 1]:

1. 9x9 conv (3 -> width) + PReLU;
2. ``num_blocks`` residual blocks: conv3x3-BN-PReLU-conv3x3-BN plus the block's input;
3. conv3x3 + BN, plus the output of step 1 (the global skip);
4. log2(scale) upsampling stages: conv3x3 (width -> 4 width), PixelShuffle(2), PReLU;
   with ``icnr`` the conv starts as ICNR (Aitken et al. 2017, "Checkerboard artifact free
   sub-pixel convolution"): its four sub-pixel filters start equal, so each stage starts as a
   nearest-neighbour 2x resize followed by a conv, with no checkerboard at initialisation;
5. 9x9 conv (width -> 3) and tanh: ``(B, 3, scale h, scale w)`` in [-1, 1], facegan's range.

Discriminator, for a face at the high resolution: eight 3x3 convs, widths 64, 64, 128, 128,
256, 256, 512, 512 (for ``width`` 64), stride 2 on every second one, BatchNorm on all but the
first, LeakyReLU(0.2); adaptive average pooling; 1x1 convs 512 -> 1024 -> 1 with a LeakyReLU
between. It returns one logit per image, shaped ``(B, 1, 1, 1)``, for any input size.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from facegan.core.errors import FaceganError

SCALES = (2, 4, 8)


class ResidualBlock(nn.Module):
    """conv3x3-BN-PReLU-conv3x3-BN plus the input."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.PReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.BatchNorm2d(width),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class Upsample2x(nn.Module):
    """conv3x3 (C -> 4C), PixelShuffle(2), PReLU: doubles the resolution.

    ``icnr``: start the conv as ICNR. PixelShuffle(2) puts conv channel ``4c + i`` at sub-pixel
    ``i`` of output channel ``c``; giving those four channels the same filter and bias makes every
    2x2 output block equal at initialisation. The filters are the conv's own first ``C``
    (default-initialised, with the same fan-in), so no extra random numbers are drawn.
    """

    def __init__(self, width: int, icnr: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width, 4 * width, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.PReLU()
        if icnr:
            with torch.no_grad():
                self.conv.weight.copy_(self.conv.weight[:width].repeat_interleave(4, dim=0))
                self.conv.bias.copy_(self.conv.bias[:width].repeat_interleave(4, dim=0))

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.shuffle(self.conv(x)))


class SRResNet(nn.Module):
    """The SRGAN generator: (B,3,h,w) in [-1, 1] -> (B,3,scale*h,scale*w) in [-1, 1]."""

    def __init__(self, scale: int = 4, width: int = 64, num_blocks: int = 5, icnr: bool = False) -> None:
        super().__init__()
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale}")
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(3, width, 9, padding=4), nn.PReLU())
        self.blocks = nn.Sequential(*[ResidualBlock(width) for _ in range(num_blocks)])
        self.post = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width))
        self.upsample = nn.Sequential(*[Upsample2x(width, icnr) for _ in range(int(math.log2(scale)))])
        self.tail = nn.Conv2d(width, 3, 9, padding=4)

    def forward(self, lr: Tensor) -> Tensor:
        feat = self.head(lr)
        feat = feat + self.post(self.blocks(feat))
        return torch.tanh(self.tail(self.upsample(feat)))

    @staticmethod
    def scale_of_state(state: Mapping[str, Tensor]) -> int:
        """The scale an SRResNet state dict was made for (2 ** its upsampling stages)."""
        stages = {int(m.group(1)) for k in state if (m := re.match(r"upsample\.(\d+)\.", k))}
        return 2 ** len(stages)

    def load_state_dict(self, state_dict: Mapping[str, Tensor], strict: bool = True, assign: bool = False):
        """As :meth:`torch.nn.Module.load_state_dict`, but weights of another scale are refused
        with one clear FaceganError (their upsampling stages cannot be reused)."""
        theirs = self.scale_of_state(state_dict)
        if theirs != self.scale:
            raise FaceganError(
                f"these generator weights are for a ×{theirs} SRResNet; they cannot upscale ×{self.scale} "
                f"(use a ×{self.scale} checkpoint, or model.scale={theirs})"
            )
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


class SRDiscriminator(nn.Module):
    """SRGAN's VGG-style discriminator: one logit per image, (B,1,1,1), for any input size."""

    def __init__(self, width: int = 64, head: int = 1024) -> None:
        super().__init__()
        widths = [width, width, 2 * width, 2 * width, 4 * width, 4 * width, 8 * width, 8 * width]
        layers: list[nn.Module] = []
        channels = 3
        for i, w in enumerate(widths):
            layers.append(nn.Conv2d(channels, w, 3, stride=1 + i % 2, padding=1))
            if i > 0:
                layers.append(nn.BatchNorm2d(w))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            channels = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, head, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(head, 1, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))
