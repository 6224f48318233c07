"""VGG19's feature stack (Simonyan & Zisserman, configuration "E"), as torchvision builds it.

Same modules and indices as torchvision's ``vgg19().features``, so torchvision's state-dict keys
``features.N.*`` fit. Layers are named as in the SRGAN paper and torchvision: ``convB_I`` is the
I-th conv of block B *before* its ReLU, ``reluB_I`` after it, ``poolB`` the max-pool closing
block B. The content loss built on it: :mod:`facegan.models.perceptual`.
"""

from __future__ import annotations

from torch import nn

from facegan.core.errors import FaceganError

#: VGG19's convolutional configuration ("E" in the paper): output channels, "M" = max-pool.
VGG19_CFG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)


def _layer_names() -> tuple[str, ...]:
    """Names of the modules of ``vgg19().features`` in order: conv1_1, relu1_1, ..., pool5."""
    names: list[str] = []
    block, index = 1, 1
    for c in VGG19_CFG:
        if c == "M":
            names.append(f"pool{block}")
            block, index = block + 1, 1
        else:
            names += [f"conv{block}_{index}", f"relu{block}_{index}"]
            index += 1
    return tuple(names)


#: Module names of VGG19's feature stack; position = index in ``vgg19().features``.
VGG19_LAYERS: tuple[str, ...] = _layer_names()


def vgg_layer_index(layer: str) -> int:
    """Index of ``layer`` (e.g. ``conv5_4`` -> 34) in torchvision's ``vgg19().features``."""
    try:
        return VGG19_LAYERS.index(layer)
    except ValueError:
        raise FaceganError(f"unknown VGG19 layer {layer!r}; expected e.g. conv5_4, relu5_4, conv2_2") from None


def vgg19_features(n_modules: int = len(VGG19_LAYERS)) -> nn.Sequential:
    """The first ``n_modules`` modules of VGG19's feature stack, randomly initialised.

    Same modules and indices as torchvision's ``vgg19().features`` (3x3 convs with padding 1,
    in-place ReLUs, 2x2 max-pools), so its state dict keys match torchvision's ``features.*``
    keys without the prefix.
    """
    layers: list[nn.Module] = []
    channels = 3
    for c in VGG19_CFG:
        if c == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(c), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = int(c)
    return nn.Sequential(*layers[:n_modules])


class VGG19Trunk(nn.Module):
    """The whole VGG19 feature stack under the name ``features`` (torchvision's key layout);
    what :mod:`facegan.models.pretrained` checks a downloaded VGG19 file against."""

    def __init__(self) -> None:
        super().__init__()
        self.features = vgg19_features()
