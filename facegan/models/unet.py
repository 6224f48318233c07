"""Inpainting generator built for holes in faces: a U-Net with a dilated middle.

Why not the context encoder (:mod:`facegan.models.context_encoder`)? Its decoder must redraw the
whole face from an 8x8 code, so what lies right next to the hole (skin tone, the other eye, the
edge of the lips) reaches the output only through the bottleneck: the fill is blurry and its
edge does not meet the surroundings. Its transposed convolutions also print a checkerboard.
This network keeps the surroundings at every scale and fills from them:

* **Encoder**: a 3x3 convolution pair at full resolution, then three stride-2 levels
  (``width`` -> 2w -> 4w -> 8w channels at 1/2, 1/4, 1/8 of the side). Each level's output is
  kept as a skip.
* **Middle**: residual 3x3 convolutions at 1/8 of the side with dilations 2, 4, 8, 1, so every
  pixel of a 128 px face sees the whole face (a centre hole is filled from what is around it,
  not from a fixed-size window).
* **Decoder**: per level, a 1x1 convolution at the low resolution reduces the channels,
  nearest-neighbour upsampling doubles the side (``upsample="bilinear"`` gives smoother fills
  early in training but scored lower at an equal CPU budget: docs/models.md), the encoder's skip
  of that level is added, and a 3x3 convolution mixes them (*resize-convolution*: no transposed convolution, hence no
  checkerboard; the additive skip is cheap, which matters at full resolution).
* **Gated convolutions** (``gated=True``, Yu et al., DeepFill v2): every 3x3 convolution of
  the encoder and the middle computes a feature and a sigmoid gate and outputs their product,
  so the network can learn per pixel how much to trust what lies inside the hole. It doubles
  those convolutions' cost.

No normalisation layers (their statistics would differ between training batches with holes of
different sizes and a single face at restore time): He initialisation, sums of two branches
scaled by 1/sqrt(2), and an output layer that starts near zero keep the activations at unit
scale and the tanh out of saturation. LeakyReLU 0.2, tanh output. Input: the
masked image (hole = 0, mid-grey in [-1, 1]) and the mask (1 = hole), 4 channels; output: a
full RGB image in [-1, 1] that the task composites into the known pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Dilations of the middle's residual convolutions.
MIDDLE_DILATIONS = (2, 4, 8, 1)
#: Down-sampling levels (the side must be divisible by 2 ** LEVELS).
LEVELS = 3
#: Sums of two branches are scaled by this, so activations keep their scale through the
#: residual middle and the skips (He initialisation keeps it through each convolution).
_HALF_VARIANCE = 0.5**0.5


class Conv(nn.Module):
    """A convolution + LeakyReLU(0.2), optionally gated: ``act(f) * sigmoid(g)``."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1,
                 gated: bool = False) -> None:
        super().__init__()
        pad = dilation * (k - 1) // 2
        self.gated = gated
        self.conv = nn.Conv2d(cin, cout * (2 if gated else 1), k, stride, pad, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if self.gated:
            f, g = y.chunk(2, dim=1)
            return F.leaky_relu(f, 0.2) * torch.sigmoid(g)
        return F.leaky_relu(y, 0.2)


class Down(nn.Module):
    """Halve the side (4x4 stride-2 convolution), then a 3x3 convolution."""

    def __init__(self, cin: int, cout: int, gated: bool) -> None:
        super().__init__()
        self.down = Conv(cin, cout, 4, 2, gated=gated)
        self.conv = Conv(cout, cout, gated=gated)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.down(x))


class Up(nn.Module):
    """1x1 channel reduction at the low resolution, x2 resize (bilinear or nearest), add the
    skip, 3x3 convolution."""

    def __init__(self, cin: int, cout: int, mode: str = "nearest") -> None:
        super().__init__()
        self.reduce = nn.Conv2d(cin, cout, 1)
        self.conv = Conv(cout, cout)
        self.mode = mode

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        if self.mode == "nearest":
            up = F.interpolate(self.reduce(x), scale_factor=2, mode="nearest")
        else:
            up = F.interpolate(self.reduce(x), scale_factor=2, mode="bilinear", align_corners=False)
        return self.conv((up + skip) * _HALF_VARIANCE)


class FaceUNet(nn.Module):
    """U-Net inpainting generator (masked RGB + mask -> RGB in [-1, 1]); see the module doc."""

    def __init__(self, size: int = 128, width: int = 32, gated: bool = False, upsample: str = "nearest") -> None:
        super().__init__()
        if size % (2**LEVELS):
            raise ValueError(f"FaceUNet needs a size divisible by {2 ** LEVELS}, got {size}")
        w = width
        chans = [w, 2 * w, 4 * w, 8 * w]
        self.stem = nn.Sequential(Conv(4, w, gated=gated), Conv(w, w, gated=gated))
        self.downs = nn.ModuleList(Down(chans[i], chans[i + 1], gated) for i in range(LEVELS))
        self.middle = nn.ModuleList(Conv(chans[-1], chans[-1], dilation=d, gated=gated) for d in MIDDLE_DILATIONS)
        self.ups = nn.ModuleList(Up(chans[i + 1], chans[i], upsample) for i in reversed(range(LEVELS)))
        self.out = nn.Conv2d(w, 3, 3, padding=1)
        self.apply(_init_weights)
        nn.init.normal_(self.out.weight, 0.0, 1e-3)  # start from mid-grey: tanh far from saturation

    def forward(self, masked: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.stem(torch.cat([masked, mask.to(masked.dtype)], dim=1))
        skips = [x]
        for down in self.downs:
            x = down(x)
            skips.append(x)
        for conv in self.middle:
            x = (x + conv(x)) * _HALF_VARIANCE
        for up, skip in zip(self.ups, reversed(skips[:-1])):
            x = up(x, skip)
        return torch.tanh(self.out(x))


def _init_weights(m: nn.Module) -> None:
    """He initialisation for LeakyReLU(0.2); zero biases."""
    if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, a=0.2, nonlinearity="leaky_relu")
        if m.bias is not None:
            nn.init.zeros_(m.bias)
