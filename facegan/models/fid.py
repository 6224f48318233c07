"""FID's Inception v3: the network whose 2048-d pool3 features ``facegan eval --fid-weights`` compares.

FID (Heusel et al., 2017) is the Fréchet distance between Gaussians fitted to Inception features
of two sets of images (:func:`facegan.metrics.realism.frechet_distance`). Its numbers are only
comparable with other papers' when the features come from the network the reference TensorFlow
code used (the 2015-12-05 Inception graph), which differs from torchvision's ImageNet Inception v3
in its weights (1008 classes) and in three places of its structure, all kept here:

* the average-pooling branch of every InceptionA, InceptionC and the first InceptionE block
  averages over the window's pixels inside the image only (TensorFlow's pooling:
  ``count_include_pad=False``);
* the last InceptionE block (``Mixed_7c``) max-pools in that branch instead;
* inputs are resized to 299x299 (bilinear, ``align_corners=False``) and scaled to [-1, 1].

The features are the output of the final global average pool (``pool3``), before dropout and the
classifier. The weights are pytorch-fid's conversion of that graph, ``pt_inception-2015-12-05-
6726825d.pth`` from its release page (:data:`RELEASE_PAGE`). facegan never downloads them: the
path is given (``--fid-weights``, else ``$FACEGAN_WEIGHTS_FID``), and the file is refused unless
its keys and shapes are exactly those of this network (torchvision's own Inception weights have a
1000-class classifier and are refused too).

Importing this module imports neither torch nor torchvision; the network is built on first use.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from facegan.core.errors import FaceganError

#: The file pytorch-fid publishes (its name is its only identification: no checksum is published).
WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
#: Where to get it.
RELEASE_PAGE = "https://github.com/mseitzer/pytorch-fid/releases/tag/fid_weights"
#: Environment variable ``facegan eval`` reads the file's path from when ``--fid-weights`` is not given.
ENV_VAR = "FACEGAN_WEIGHTS_FID"
#: Side of the square the network sees, and the size of its features.
INPUT_SIZE = 299
FEATURES = 2048
#: Classes of the 2015 graph's classifier (unused; its weights are in the file).
CLASSES = 1008
#: Images per forward pass in :func:`fid_features`.
BATCH = 32

_HINT = f"FID needs {WEIGHTS_FILE} from pytorch-fid's release page, {RELEASE_PAGE}"


def fid_weights_path(path: str | Path | None, env: bool = True) -> Path | None:
    """The FID weights file: ``path``, else ``$FACEGAN_WEIGHTS_FID`` (when ``env``), else None (no
    FID). FaceganError naming where the path came from when it is not a file; the contents are
    checked by :func:`load_fid_inception`."""
    source = "--fid-weights"
    if path is None and env and os.environ.get(ENV_VAR, "").strip():
        path, source = os.environ[ENV_VAR].strip(), f"${ENV_VAR}"
    if path is None:
        return None
    file = Path(path).expanduser()
    if not file.is_file():
        what = "is a folder, not a file" if file.is_dir() else "not found"
        raise FaceganError(f"{source}: {file} {what} ({_HINT})")
    return file


def build_fid_inception() -> Any:
    """FID's Inception v3 with untrained weights (eval mode, frozen): load weights into it with
    :func:`load_fid_inception`; tests use it as it is."""
    net = _network_class()()
    net.eval()
    net.requires_grad_(False)
    return net


def load_fid_inception(path: str | Path, device: Any = "cpu") -> Any:
    """FID's Inception v3 with the weights of the file at ``path``, on ``device``.

    FaceganError (one line, naming the file) when the file is missing, is not a PyTorch state
    dict, or its keys or shapes are not those of the network (BatchNorm's ``num_batches_tracked``
    counters, which no evaluation reads, may be absent)."""
    from facegan.models.pretrained import read_state_dict

    file = fid_weights_path(path, env=False)
    try:
        state = read_state_dict(file)
    except FaceganError as err:
        raise FaceganError(f"FID weights: {err} ({_HINT})") from None
    net = build_fid_inception()
    _check_fits(state, net.state_dict(), file)
    net.load_state_dict(state, strict=False)  # strict but for the counters: checked above
    net.weights_file = file
    return net.to(device)


def fid_features(net: Any, images: Any, batch_size: int = BATCH) -> Any:
    """``(N, 2048)`` float64 numpy pool3 features of ``images``, ``batch_size`` at a time, on the
    network's device (the CPU unless it was moved).

    ``images``: uint8 ``(N, H, W, 3)`` (numpy or torch; what :func:`facegan.metrics.quality.to_uint8`
    gives, what a PNG holds), or a float torch tensor ``(N, 3, H, W)`` in [-1, 1] (facegan's model
    images). Any size; each is resized to 299x299 as FID does."""
    import numpy as np
    import torch

    device = next(net.parameters()).device
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(f"fid_features expects 4-d images, got {type(images).__name__} "
                         f"{tuple(getattr(images, 'shape', ()))}")
    if images.dtype == torch.uint8 and images.shape[-1] != 3:
        raise ValueError(f"fid_features expects uint8 images as (N, H, W, 3), got {tuple(images.shape)}")
    if images.dtype != torch.uint8 and images.shape[1] != 3:
        raise ValueError(f"fid_features expects float images as (N, 3, H, W), got {tuple(images.shape)}")
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size].to(device)
            if x.dtype == torch.uint8:
                x = x.permute(0, 3, 1, 2).float() / 127.5 - 1
            out.append(net(x.float()).double().cpu())
    if not out:
        return np.zeros((0, FEATURES))
    return torch.cat(out).numpy()


def _check_fits(state: dict, expected: dict, file: Path) -> None:
    """FaceganError unless ``state`` has exactly ``expected``'s keys and shapes (BatchNorm counters aside)."""
    def counted(keys) -> list[str]:
        return [k for k in keys if not k.endswith("num_batches_tracked")]

    missing = counted(k for k in expected if k not in state)
    unexpected = counted(k for k in state if k not in expected)
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape)]
    problems = [f"{len(items)} {what} (e.g. {', '.join(items[:2])})"
                for what, items in (("missing keys", missing), ("unexpected keys", unexpected),
                                    ("shape mismatches", wrong)) if items]
    if problems:
        raise FaceganError(f"FID weights: {file} are not FID's Inception v3 weights: {'; '.join(problems)} ({_HINT})")


@functools.cache
def _network_class() -> type:
    """The network class, built on first use (it subclasses torchvision's Inception3)."""
    import torch
    import torch.nn.functional as F
    from torchvision.models import inception as tv

    def tf_avg_pool(x):  # TensorFlow's average pool: padding pixels are not counted
        return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)

    def max_pool(x):
        return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)

    class BlockA(tv.InceptionA):
        def forward(self, x):
            b5 = self.branch5x5_2(self.branch5x5_1(x))
            b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
            return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(tf_avg_pool(x))], 1)

    class BlockC(tv.InceptionC):
        def forward(self, x):
            b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
            d7 = x
            for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                          self.branch7x7dbl_5):
                d7 = layer(d7)
            return torch.cat([self.branch1x1(x), b7, d7, self.branch_pool(tf_avg_pool(x))], 1)

    class BlockE(tv.InceptionE):
        def __init__(self, in_channels: int, pool) -> None:
            super().__init__(in_channels)
            self.pool = pool

        def forward(self, x):
            b3 = self.branch3x3_1(x)
            b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
            d3 = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            d3 = torch.cat([self.branch3x3dbl_3a(d3), self.branch3x3dbl_3b(d3)], 1)
            return torch.cat([self.branch1x1(x), b3, d3, self.branch_pool(self.pool(x))], 1)

    class FIDInception(tv.Inception3):
        """torchvision's Inception v3 (so the state dict keys are pytorch-fid's) with FID's blocks;
        ``forward`` maps ``(N, 3, H, W)`` images in [-1, 1] to their ``(N, 2048)`` pool3 features."""

        #: The layers from the input to pool3, in order (the classifier head is never run).
        LAYERS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
                  "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b",
                  "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "avgpool")

        def __init__(self) -> None:
            super().__init__(num_classes=CLASSES, aux_logits=False, transform_input=False, init_weights=False)
            self.Mixed_5b = BlockA(192, pool_features=32)
            self.Mixed_5c = BlockA(256, pool_features=64)
            self.Mixed_5d = BlockA(288, pool_features=64)
            self.Mixed_6b = BlockC(768, channels_7x7=128)
            self.Mixed_6c = BlockC(768, channels_7x7=160)
            self.Mixed_6d = BlockC(768, channels_7x7=160)
            self.Mixed_6e = BlockC(768, channels_7x7=192)
            self.Mixed_7b = BlockE(1280, tf_avg_pool)
            self.Mixed_7c = BlockE(2048, max_pool)

        def forward(self, x):
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
            for name in self.LAYERS:
                x = getattr(self, name)(x)
            return torch.flatten(x, 1)

    return FIDInception
