"""VGG19 perceptual ("content") loss: MSE of frozen ImageNet VGG19 features (SRGAN).

The feature extractor is torchvision's ``vgg19().features`` cut right after the chosen layer,
built here with the same module indices (so torchvision's state-dict keys ``features.N.*``
fit), frozen and always in eval mode. Layers are named as in the SRGAN paper and torchvision:
``convB_I`` is the I-th conv of block B *before* its ReLU, ``reluB_I`` after it, ``poolB`` the
max-pool closing block B. SRGAN's content loss uses ``conv5_4`` (``features[:35]``).

Inputs are facegan images in [-1, 1]; they are mapped to [0, 1] and normalised with the
ImageNet mean and std, as torchvision's VGG19 was trained.

Weights (torchvision's IMAGENET1K_V1 file ``vgg19-dcbb9e9d.pth``) come through
:mod:`facegan.weights`: ``loss.vgg_weights``, ``$FACEGAN_WEIGHTS_VGG19``, the torch hub cache
(where torchvision keeps the same file), or a one-time verified download. Only the
``features.*`` tensors up to the chosen layer are used, so a file holding just those works too.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facegan.errors import FaceganError

#: VGG19's convolutional configuration ("E" in the paper): output channels, "M" = max-pool.
VGG19_CFG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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
    what :mod:`facegan.weights` checks a downloaded VGG19 file against."""

    def __init__(self) -> None:
        super().__init__()
        self.features = vgg19_features()


def load_vgg_features(layer: str = "conv5_4", weights: str | Path | None = None) -> nn.Sequential:
    """VGG19 features up to and including ``layer`` with ImageNet weights, frozen, in eval mode.

    ``weights`` is an explicit file (``loss.vgg_weights``); without it the file is found as
    :func:`facegan.weights.resolve_weights` describes (one clear FaceganError when offline and
    missing). FaceganError naming the file when it lacks a needed tensor or one has the wrong shape.
    """
    from facegan.weights import read_state_dict, resolve_weights

    trunk = vgg19_features(vgg_layer_index(layer) + 1)
    path = resolve_weights("vgg19", weights)
    state = read_state_dict(path)
    wanted: dict[str, Tensor] = {}
    for key, param in trunk.state_dict().items():
        value = state.get(f"features.{key}")
        if value is None:
            raise FaceganError(
                f"{path} has no tensor features.{key}, needed for VGG19 up to {layer}; expected torchvision's "
                "vgg19-dcbb9e9d.pth (a state dict with its features.* keys), set with loss.vgg_weights"
            )
        if value.shape != param.shape:
            raise FaceganError(
                f"{path}: features.{key} has shape {tuple(value.shape)}, VGG19 needs {tuple(param.shape)}; "
                "is it torchvision's vgg19-dcbb9e9d.pth?"
            )
        wanted[key] = value
    trunk.load_state_dict(wanted)
    return trunk.eval().requires_grad_(False)


class PerceptualLoss(nn.Module):
    """MSE between VGG19 features of ``output`` and ``target`` (both (B,3,H,W) in [-1, 1]).

    The network is frozen and stays in eval mode; gradients flow to ``output`` only. The MSE
    is taken in float32 whatever the autocast dtype of the features.
    """

    def __init__(self, features: nn.Sequential, layer: str = "") -> None:
        super().__init__()
        self.layer = layer
        self.features = features.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> PerceptualLoss:
        """Stays in eval mode whatever ``mode`` is."""
        return super().train(False)

    def embed(self, images: Tensor) -> Tensor:
        """VGG19 features of [-1, 1] images (ImageNet-normalised [0, 1] RGB inside)."""
        return self.features(((images + 1) * 0.5 - self.mean) / self.std)

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        if output.shape != target.shape:
            raise ValueError(f"output {tuple(output.shape)} and target {tuple(target.shape)} differ")
        with torch.no_grad():
            target_features = self.embed(target)
        return F.mse_loss(self.embed(output).float(), target_features.float())


def load_perceptual_loss(layer: str = "conv5_4", weights: str | Path | None = None,
                         device: str | torch.device = "cpu") -> PerceptualLoss:
    """The frozen VGG19 content loss at ``layer`` on ``device`` (see :func:`load_vgg_features`)."""
    return PerceptualLoss(load_vgg_features(layer, weights), layer).to(device)
