"""VGG19 perceptual ("content") loss: MSE of frozen ImageNet VGG19 features (SRGAN).

The feature extractor is torchvision's ``vgg19().features`` cut right after the chosen layer,
built here with the same module indices (so torchvision's state-dict keys ``features.N.*``
fit), frozen and always in eval mode. Layers are named as in the SRGAN paper and torchvision:
``convB_I`` is the I-th conv of block B *before* its ReLU, ``reluB_I`` after it, ``poolB`` the
max-pool closing block B. SRGAN's content loss uses ``conv5_4`` (``features[:35]``).

Inputs are facegan images in [-1, 1]; they are mapped to [0, 1] and normalised with the
ImageNet mean and std, as torchvision's VGG19 was trained.

Weights (torchvision's IMAGENET1K_V1 file ``vgg19-dcbb9e9d.pth``) come through
:mod:`facegan.models.pretrained`: ``loss.vgg_weights``, ``$FACEGAN_WEIGHTS_VGG19``, the torch hub cache
(where torchvision keeps the same file), or a one-time verified download. Only the
``features.*`` tensors up to the chosen layer are used, so a file holding just those works too.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facegan.core.errors import FaceganError
from facegan.models.pretrained import read_state_dict, resolve_weights
from facegan.models.vgg import vgg19_features, vgg_layer_index

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_vgg_features(layer: str = "conv5_4", weights: str | Path | None = None) -> nn.Sequential:
    """VGG19 features up to and including ``layer`` with ImageNet weights, frozen, in eval mode.

    ``weights`` is an explicit file (``loss.vgg_weights``); without it the file is found as
    :func:`facegan.models.pretrained.resolve_weights` describes (one clear FaceganError when offline and
    missing). FaceganError naming the file when it lacks a needed tensor or one has the wrong shape.
    """
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
