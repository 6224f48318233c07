"""Frozen face-recognition networks for the identity loss and the identity metric.

An :class:`IdentityNet` takes facegan's aligned faces (``(B, 3, S, S)`` in [-1, 1], on the
template of :mod:`facegan.faces.geometry`, any square size ``S``), re-crops them on the device to the
geometry its backbone was trained on, normalises them the way the backbone expects, and returns
L2-normalised embeddings. It is always frozen (eval mode, no parameter gradients) but
differentiable with respect to its input, so :func:`identity_loss` can train a generator.

Backbones are chosen by name from :data:`IDENTITY_NETS`; their weights come from
:mod:`facegan.models.pretrained` (an explicit path, an environment variable, the package, or the torch
hub cache).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facegan.core.errors import FaceganError
from facegan.faces import geometry
from facegan.models import mobilefacenet
from facegan.models.pretrained import load_weights

#: The standard ArcFace / InsightFace 5-point template of a 112x112 crop (pixel-index
#: coordinates, as cv2.warpAffine uses them). MobileFaceNet was trained on faces aligned to it.
ARCFACE_112 = (
    (38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366),
    (41.5493, 92.3655), (70.7299, 92.2041),
)

#: The 5 landmarks of a facenet-pytorch MTCNN face crop at 160x160 (pixel-index coordinates).
#: Such crops are the detector's box resized to 160x160 (no landmark alignment), which is what
#: InceptionResnetV1 saw in training, so there is no published template. Derived by running
#: facenet-pytorch 2.5.3's MTCNN on the five 160x160 crops of facenet-pytorch's own test images
#: (``data/test_images_aligned/*/1.png``, our fixtures ``facenet_pytorch_aligned_160``), each
#: padded by 80 px of grey (MTCNN is unstable when a face fills the whole frame: the boxes it
#: then finds on the padded crops coincide with the crop, as they should), on each image and its
#: mirror image (mirrored back, left/right swapped), and averaging the 10 detections. The crops
#: are the box resized non-uniformly, so a similarity transform fits this template to facegan's
#: to within ~4 px at 160 px (the eyes-to-mouth distance is relatively shorter here).
FACENET_MTCNN_160 = (
    (46.2, 67.2), (117.1, 67.5), (82.2, 101.4),
    (49.8, 125.5), (114.6, 124.9),
)

#: ``fixed_image_standardization`` of facenet-pytorch, (x*255 - 127.5) / 128, written as a
#: mean/std on [0, 1] RGB.
_FACENET_MEAN = (0.5, 0.5, 0.5)
_FACENET_STD = (128 / 255, 128 / 255, 128 / 255)

#: Downscaling by more than this factor (backbone pixels per input pixel below it) first
#: resizes the input with an antialiasing filter, since bilinear sampling alone would alias.
_ANTIALIAS_BELOW = 0.75


@dataclass(frozen=True)
class IdentitySpec:
    """How to feed one face-recognition backbone."""

    #: Key in :data:`facegan.models.pretrained.WEIGHTS`; it also builds the backbone.
    weights: str
    #: Side of the square input the backbone takes.
    input_size: int
    embedding_dim: int
    #: The backbone's 5-point template, pixel-index coordinates in its input crop.
    template: tuple[tuple[float, float], ...]
    #: Per-channel normalisation of [0, 1] RGB: ``(x - mean) / std``.
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


#: The identity networks by name. Another backbone is one entry here plus its weights entry in
#: facegan.models.pretrained.WEIGHTS.
#:
#: The crop each backbone receives (see :meth:`IdentityNet.crop`): the similarity transform
#: that maps facegan's five template landmarks (``geometry.template_points(S)``) onto the
#: backbone's ``template`` in least squares, applied to the aligned ``S`` x ``S`` face by
#: bilinear resampling (antialiased first when it shrinks by more than 4/3), giving an
#: ``input_size`` x ``input_size`` crop, then normalised with ``mean``/``std``. Crop pixels that
#: fall outside the aligned face are black (zero padding).
IDENTITY_NETS: dict[str, IdentitySpec] = {
    # foamliu's MobileFaceNet, shipped with facegan: ArcFace 112x112 crops, ImageNet mean/std.
    "mobilefacenet": IdentitySpec(
        weights="mobilefacenet",
        input_size=mobilefacenet.INPUT_SIZE,
        embedding_dim=mobilefacenet.EMBEDDING_DIM,
        template=ARCFACE_112,
        mean=mobilefacenet.MEAN,
        std=mobilefacenet.STD,
    ),
    # facenet-pytorch InceptionResnetV1 trained on VGGFace2: MTCNN box crops at 160x160.
    "facenet-vggface2": IdentitySpec(
        weights="facenet-vggface2",
        input_size=160,
        embedding_dim=512,
        template=FACENET_MTCNN_160,
        mean=_FACENET_MEAN,
        std=_FACENET_STD,
    ),
    # The same InceptionResnetV1 trained on CASIA-WebFace (facenet-pytorch's other release):
    # the same MTCNN 160x160 box crops and standardisation as the VGGFace2 weights. Its file
    # carries a 10,575-class classifier (VGGFace2's has 8,631); the embedding network drops it
    # (facegan.models.pretrained: unused_prefixes).
    "facenet-casia": IdentitySpec(
        weights="facenet-casia",
        input_size=160,
        embedding_dim=512,
        template=FACENET_MTCNN_160,
        mean=_FACENET_MEAN,
        std=_FACENET_STD,
    ),
}


def load_identity_net(
    name: str, weights: str | Path | None = None, device: str | torch.device = "cpu",
    blur: float = 0.0,
) -> IdentityNet:
    """The frozen identity network ``name`` on ``device``.

    ``weights`` is an explicit weights file; without it the file is found as
    :func:`facegan.models.pretrained.resolve_weights` describes. ``blur`` is the sigma (pixels of the
    faces it is given) of a Gaussian blur applied before the crop (the identity loss's
    ``loss.identity_blur``; 0 for a metric). FaceganError for an unknown name, or weights that
    cannot be found or do not fit.
    """
    spec = IDENTITY_NETS.get(name)
    if spec is None:
        raise FaceganError(f"unknown identity network {name!r}; known: {', '.join(IDENTITY_NETS)}")
    backbone = load_weights(spec.weights, weights)
    return IdentityNet(name, spec, backbone, blur=blur).to(device)


class IdentityNet(nn.Module):
    """A frozen face-recognition backbone behind facegan's face geometry.

    ``forward(images)``: ``(B, 3, S, S)`` faces in [-1, 1] on facegan's template -> ``(B, D)``
    L2-normalised embeddings, computed in float32 on the device of the backbone and returned
    on the device of ``images``. With ``blur`` > 0 the faces are first blurred (Gaussian, that
    sigma in their own pixels): a loss network that cannot see fine detail cannot reward it.
    """

    def __init__(self, name: str, spec: IdentitySpec, backbone: nn.Module, blur: float = 0.0) -> None:
        super().__init__()
        self.name = name
        self.blur = float(blur)
        self.input_size = spec.input_size
        self.embedding_dim = spec.embedding_dim
        self.template = np.asarray(spec.template, dtype=np.float64)
        self.backbone = backbone
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("blur_kernel", gaussian_kernel(self.blur) if self.blur > 0 else None,
                             persistent=False)
        self.requires_grad_(False)
        super().train(False)
        #: Run the backbone in bf16 on CUDA (training with train.amp); the crop, the
        #: normalisation and the embeddings stay float32.
        self.amp = False

    def train(self, mode: bool = True) -> IdentityNet:
        """Stays in eval mode whatever ``mode`` is (so a parent's ``.train()`` cannot switch
        BatchNorm or dropout to training behaviour)."""
        return super().train(False)

    def forward(self, images: Tensor) -> Tensor:
        """Embeddings of faces aligned on facegan's template, ``(B, 3, S, S)`` in [-1, 1]."""
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
            raise ValueError(f"IdentityNet expects (B, 3, S, S) images, got {tuple(images.shape)}")
        param = next(self.backbone.parameters())
        with _no_autocast(param.device):
            x = images.to(device=param.device, dtype=param.dtype)
            if self.blur > 0:
                x = gaussian_blur(x, self.blur, self.blur_kernel)
            crops = self.crop(x * 0.5 + 0.5)
            emb = self._embed01(crops)
        return emb.to(images.device)

    def embed_crops(self, crops: Tensor) -> Tensor:
        """Embeddings of faces already cropped to the backbone's own geometry:
        ``(B, 3, input_size, input_size)`` in [-1, 1]."""
        param = next(self.backbone.parameters())
        with _no_autocast(param.device):
            x = crops.to(device=param.device, dtype=param.dtype)
            emb = self._embed01(x * 0.5 + 0.5)
        return emb.to(crops.device)

    def crop(self, x: Tensor) -> Tensor:
        """Resample ``(B, C, S, S)`` faces on facegan's template to the backbone's template
        and input size (bilinear, differentiable; antialiased first when shrinking a lot)."""
        size = x.shape[-1]
        scale = geometry.affine_scale(self._similarity(size))
        if scale < _ANTIALIAS_BELOW:
            size = max(self.input_size, int(np.ceil(size * scale)))
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=True)
        theta = torch.as_tensor(self._theta(size), dtype=x.dtype, device=x.device)
        out_shape = (x.shape[0], x.shape[1], self.input_size, self.input_size)
        grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), out_shape, align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def _embed01(self, x01: Tensor) -> Tensor:
        x = (x01 - self.mean) / self.std
        if self.amp and x.device.type == "cuda":
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                emb = self.backbone(x)
        else:
            emb = self.backbone(x)
        return F.normalize(emb.float(), dim=1)

    def _similarity(self, size: int) -> np.ndarray:
        """Similarity from facegan's template in a ``size`` x ``size`` image to the backbone's
        template in its input crop (pixel-index coordinates on both sides)."""
        return geometry.similarity_matrix(geometry.template_points(size), self.template)

    def _theta(self, size: int) -> np.ndarray:
        """The ``affine_grid`` matrix for :meth:`crop`: output normalised coordinates -> input
        normalised coordinates (``align_corners=False``: pixel ``k`` of ``n`` is centred at
        ``(2k + 1) / n - 1``)."""
        to_face = geometry.invert_affine(self._similarity(size))  # backbone crop -> face, pixels
        from_out = geometry.invert_affine(geometry.pixel_to_normalized(self.input_size))
        return geometry.compose(geometry.pixel_to_normalized(size), to_face, from_out)


def gaussian_kernel(sigma: float) -> Tensor:
    """The 1-D Gaussian of ``sigma`` pixels, taps out to 3 sigma, normalised to sum 1 (float64)."""
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_blur(x: Tensor, sigma: float, kernel: Tensor | None = None) -> Tensor:
    """``(B, C, H, W)`` blurred by a separable Gaussian of ``sigma`` pixels (reflected borders);
    differentiable, the identity when ``sigma`` is 0. ``kernel`` is :func:`gaussian_kernel`'s
    result already on ``x``'s device (a training step then copies nothing to the device)."""
    if sigma <= 0:
        return x
    if kernel is None:
        kernel = gaussian_kernel(sigma).to(x.device)
    kernel = kernel.to(dtype=x.dtype)
    radius = len(kernel) // 2
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def identity_loss(net: IdentityNet, output: Tensor, target: Tensor | None = None,
                  target_emb: Tensor | None = None) -> Tensor:
    """Mean of ``1 - cosine`` between the embeddings of ``output`` and ``target``.

    The target is embedded without gradients (or its embeddings ``target_emb`` are given, e.g.
    computed once per training face); gradients flow to ``output`` only (the network is frozen).
    """
    if target_emb is None:
        if target is None or output.shape != target.shape:
            raise ValueError(f"output {tuple(output.shape)} and target {None if target is None else tuple(target.shape)} differ")
        with torch.no_grad():
            target_emb = net(target)
    return (1.0 - (net(output) * target_emb).sum(dim=1)).mean()


def _no_autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """A context that turns autocast off on ``device`` (the backbone runs in its own dtype)."""
    if device.type in ("cuda", "cpu"):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()
