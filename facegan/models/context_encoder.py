"""Inpainting generator: the context encoder of the source design.

Encoder: four stride-2 4x4 convolutions (``width`` -> 2w -> 4w -> 8w; 64 -> 512 in the
source), LeakyReLU 0.2, BatchNorm after all but the first. Bottleneck: Pathak et al.'s
channel-wise fully connected layer (each channel's (S/16)^2 map is mapped by its own dense
layer, then a 1x1 convolution mixes channels), which gives every output pixel a view of the
whole face; with ``bottleneck="none"`` the code passes straight to the decoder as in the
source (5.5 M parameters), whose receptive field (46 px) cannot see past a large hole.
Decoder: four 4x4 stride-2 transposed convolutions back to RGB, BatchNorm + ReLU, tanh.

Input: the masked image (hole filled with 0, i.e. mid-grey in [-1, 1]) concatenated with the
mask (1 = hole): 4 channels. Output: a full RGB image in [-1, 1]; the engine composites it
into the known pixels.
"""

from __future__ import annotations

import torch
from torch import nn


class ChannelWiseFC(nn.Module):
    """Per-channel dense layer over the spatial map, then a 1x1 conv across channels."""

    def __init__(self, channels: int, spatial: int) -> None:
        super().__init__()
        n = spatial * spatial
        self.weight = nn.Parameter(torch.randn(channels, n, n) / n**0.5)
        self.bias = nn.Parameter(torch.zeros(channels, n))
        self.mix = nn.Conv2d(channels, channels, 1)
        self.norm = nn.BatchNorm2d(channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        flat = x.reshape(b, c, h * w)
        y = torch.einsum("bcn,cnm->bcm", flat, self.weight) + self.bias
        return self.act(self.norm(self.mix(y.reshape(b, c, h, w))))


class ContextEncoder(nn.Module):
    """Encoder-decoder inpainting generator (masked RGB + mask -> RGB in [-1, 1])."""

    def __init__(self, size: int = 128, width: int = 64, bottleneck: str = "channel_fc") -> None:
        super().__init__()
        if size % 16:
            raise ValueError(f"ContextEncoder needs a size divisible by 16, got {size}")
        w = width
        chans = [4, w, 2 * w, 4 * w, 8 * w]
        enc: list[nn.Module] = []
        for i in range(4):
            enc.append(nn.Conv2d(chans[i], chans[i + 1], 4, 2, 1, bias=i == 0))
            if i > 0:
                enc.append(nn.BatchNorm2d(chans[i + 1]))
            enc.append(nn.LeakyReLU(0.2, inplace=True))
        self.encoder = nn.Sequential(*enc)
        self.bottleneck = ChannelWiseFC(8 * w, size // 16) if bottleneck == "channel_fc" else nn.Identity()
        dec: list[nn.Module] = []
        out_chans = [8 * w, 4 * w, 2 * w, w, 3]
        for i in range(4):
            last = i == 3
            dec.append(nn.ConvTranspose2d(out_chans[i], out_chans[i + 1], 4, 2, 1, bias=last))
            dec.append(nn.Tanh() if last else nn.Sequential(nn.BatchNorm2d(out_chans[i + 1]), nn.ReLU(inplace=True)))
        self.decoder = nn.Sequential(*dec)
        self.apply(_init_weights)

    def forward(self, masked: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = torch.cat([masked, mask.to(masked.dtype)], dim=1)
        return self.decoder(self.bottleneck(self.encoder(x)))


def _init_weights(m: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) convolutions, N(1, 0.02) BatchNorm scales."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)
