"""MobileFaceNet (Chen et al., 2018, "MobileFaceNets: Efficient CNNs for Accurate Real-Time Face
Verification on Mobile Devices"), laid out to load the weights facegan ships
(``facegan/assets/weights/mobilefacenet.safetensors``, from foamliu/MobileFaceNet) with ``strict=True``.

The body follows the paper's Table 1 for a 112x112 input:

=========================  ======  ===  ===  =====
stage                      t       c    n    s
=========================  ======  ===  ===  =====
conv 3x3                   -       64   1    2
depthwise conv 3x3 + 1x1   -       64   1    1
bottleneck                 2       64   5    2
bottleneck                 4       128  1    2
bottleneck                 2       128  6    1
bottleneck                 4       128  1    2
bottleneck                 2       128  2    1
conv 1x1                   -       512  1    1
linear GDConv 7x7          -       512  1    1
linear conv 1x1 + BN       -       128  1    1
=========================  ======  ===  ===  =====

Activations as in these weights' ONNX export (not the paper's PReLU): ReLU6 after the stem, the
bottleneck expansions and ``conv2``; plain ReLU inside the depthwise-separable ``dw_conv``; the
bottleneck projections, the global depthwise conv and the embedding layer are linear.

Input: ``(B, 3, 112, 112)`` RGB, each channel ``(x - mean) / std`` with ImageNet statistics on a
[0, 1] scale (:data:`MEAN`, :data:`STD`). Output: a ``(B, 128)`` embedding, *not* normalised.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

#: Input normalisation the weights were trained with (ImageNet mean/std of RGB in [0, 1]).
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
INPUT_SIZE = 112
EMBEDDING_DIM = 128

#: (expansion t, output channels c, repeats n, first stride s) of the bottleneck stages.
BOTTLENECKS = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


class ConvBNReLU6(nn.Sequential):
    """Conv (no bias) -> BatchNorm -> ReLU6; a depthwise conv when ``groups == channels``."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class DepthwiseSeparable(nn.Module):
    """Depthwise 3x3 -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU (the paper's second layer)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, 3, 1, 1, groups=channels, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.pointwise = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.depthwise(x)))
        return self.relu(self.bn2(self.pointwise(x)))


class Bottleneck(nn.Module):
    """MobileNetV2 inverted residual: expand 1x1, depthwise 3x3, linear project 1x1.

    The shortcut is added when the block keeps both resolution and width.
    """

    def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        self.residual = stride == 1 and cin == cout
        self.conv = nn.Sequential(
            ConvBNReLU6(cin, hidden, 1),
            ConvBNReLU6(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        return x + y if self.residual else y


class GlobalDepthwiseConv(nn.Module):
    """Linear global depthwise conv (GDConv): a learned per-channel 7x7 weighted pooling + BN."""

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, kernel, groups=channels, bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.depthwise(x))


class MobileFaceNet(nn.Module):
    """MobileFaceNet: ``(B, 3, 112, 112)`` normalised RGB -> ``(B, 128)`` raw embedding."""

    def __init__(self, embedding_dim: int = EMBEDDING_DIM) -> None:
        super().__init__()
        self.conv1 = ConvBNReLU6(3, 64, 3, stride=2)
        self.dw_conv = DepthwiseSeparable(64)
        blocks: list[nn.Module] = []
        cin = 64
        for expansion, cout, repeats, stride in BOTTLENECKS:
            for i in range(repeats):
                blocks.append(Bottleneck(cin, cout, stride if i == 0 else 1, expansion))
                cin = cout
        self.features = nn.Sequential(*blocks)
        self.conv2 = ConvBNReLU6(cin, 512, 1)
        self.gdconv = GlobalDepthwiseConv(512, INPUT_SIZE // 16)
        self.conv3 = nn.Conv2d(512, embedding_dim, 1)
        self.bn = nn.BatchNorm2d(embedding_dim)

    def forward(self, x: Tensor) -> Tensor:
        x = self.dw_conv(self.conv1(x))
        x = self.conv2(self.features(x))
        x = self.bn(self.conv3(self.gdconv(x)))
        return torch.flatten(x, 1)
