"""Super-resolution degradations: high-resolution faces -> low-resolution inputs, on the device.

Images are float tensors ``(B, 3, H, W)`` in [-1, 1] (facegan's model range), on any device;
a whole batch is degraded at once, with per-image random parameters drawn from the
``torch.Generator`` of the training step, so a step's inputs are a pure function of its
generator.

- **Bicubic** (always): ``F.interpolate(mode="bicubic", antialias=True)`` by ``1/scale``, the
  same antialiased bicubic filter (Keys, a = -0.5, widened by the scale) as PIL's
  ``Image.resize(..., BICUBIC)`` and MATLAB's ``imresize``. Without antialiasing a ×8 bicubic
  reduction would sample 4 of every 64 pixels and alias badly.
- **Blind** options (``data.degradation``, training only): Gaussian blur of the high-resolution
  face before the reduction, Gaussian noise on the low-resolution face, then JPEG compression
  (PIL's libjpeg on the CPU, one image at a time: the low-resolution faces are small, and the
  result goes straight back to the device; no gradient is needed on the input side).
- The low-resolution face is always quantised to 8 bits, as a saved image would be, so the
  model trains on what it will be given (evaluation and ``restore`` read uint8 images).

Evaluation uses plain bicubic (:func:`bicubic_lr`), deterministic per image.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor


class DegradationSpec(Protocol):
    """What :func:`degrade` reads (``facegan.tasks.recipes.DegradationConfig`` is one)."""

    blur_sigma: tuple[float, float]
    noise_std: tuple[float, float]
    jpeg_quality: tuple[int, int] | None


def _check(images: Tensor, scale: int) -> None:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected (B, 3, H, W) images, got {tuple(images.shape)}")
    if scale < 1 or images.shape[-1] % scale or images.shape[-2] % scale:
        raise ValueError(f"a {images.shape[-2]}x{images.shape[-1]} image cannot be reduced by {scale}")


def quantize(images: Tensor) -> Tensor:
    """Round [-1, 1] images to the 256 levels of an 8-bit image (as ``metrics.to_uint8`` does)."""
    return ((images + 1) * 127.5).round().clamp(0, 255) / 127.5 - 1


def downscale(images: Tensor, scale: int) -> Tensor:
    """Antialiased bicubic reduction by ``scale`` (float, clamped to [-1, 1], not quantised)."""
    _check(images, scale)
    h, w = images.shape[-2] // scale, images.shape[-1] // scale
    out = F.interpolate(images.float(), size=(h, w), mode="bicubic", align_corners=False, antialias=True)
    return out.clamp(-1, 1)


def bicubic_lr(images: Tensor, scale: int) -> Tensor:
    """The deterministic evaluation degradation: antialiased bicubic by ``scale``, 8-bit levels."""
    return quantize(downscale(images, scale))


def upscale_bicubic(images: Tensor, scale: int) -> Tensor:
    """Bicubic enlargement by ``scale``, clamped to [-1, 1]: the no-model reference of SR."""
    h, w = images.shape[-2] * scale, images.shape[-1] * scale
    return F.interpolate(images.float(), size=(h, w), mode="bicubic", align_corners=False).clamp(-1, 1)


def upscale_nearest(images: Tensor, scale: int) -> Tensor:
    """Nearest-neighbour enlargement by ``scale``: how a low-resolution input is shown."""
    return images.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)


def gaussian_blur(images: Tensor, sigma: Tensor) -> Tensor:
    """Separable Gaussian blur with one ``sigma`` (pixels) per image; sigma 0 leaves it unchanged.

    The kernel radius is ``ceil(3 * max(sigma))``; borders are reflected.
    """
    b, c, h, w = images.shape
    sigma = sigma.to(images.device, torch.float32).reshape(b)
    radius = int(math.ceil(3 * float(sigma.max()))) if b else 0
    radius = min(radius, h - 1, w - 1)
    if radius < 1:
        return images
    t = torch.arange(-radius, radius + 1, device=images.device, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (t[None] / sigma.clamp_min(1e-6)[:, None]) ** 2)
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (B*C, k)
    x = F.pad(images.float().reshape(1, b * c, h, w), (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel[:, None, None, :], groups=b * c)
    x = F.conv2d(x, kernel[:, None, :, None], groups=b * c)
    return x.reshape(b, c, h, w).to(images.dtype)


def jpeg(images: Tensor, quality: Tensor) -> Tensor:
    """JPEG-compress each image at its own ``quality`` (1..100) and decode it (PIL's libjpeg, CPU)."""
    import io

    import numpy as np
    from PIL import Image

    u8 = ((images.detach().float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    u8 = u8.permute(0, 2, 3, 1).cpu().numpy()
    out = []
    for img, q in zip(u8, quality.tolist()):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=int(q))
        out.append(np.asarray(Image.open(buf).convert("RGB")))
    decoded = torch.from_numpy(np.stack(out)).to(images.device).permute(0, 3, 1, 2)
    return decoded.float() / 127.5 - 1


def _uniform(rng: tuple[float, float], u: Tensor) -> Tensor:
    return rng[0] + (rng[1] - rng[0]) * u


def degrade(images: Tensor, scale: int, spec: DegradationSpec | None = None,
            generator: torch.Generator | None = None) -> Tensor:
    """Training inputs: ``images`` (B,3,H,W) in [-1, 1] -> (B,3,H/scale,W/scale) in [-1, 1].

    With no blind option in ``spec`` this is :func:`bicubic_lr`. Otherwise, per image with
    parameters drawn uniformly from ``spec``'s ranges using ``generator`` (on the images'
    device): blur (sigma in ``blur_sigma``, high-resolution pixels), bicubic reduction, noise
    (std in ``noise_std`` on the 0..255 scale), 8-bit quantisation, JPEG (quality in
    ``jpeg_quality``). The same generator state gives the same result.
    """
    _check(images, scale)
    if spec is None or not _is_blind(spec):
        return bicubic_lr(images, scale)
    b, dev = images.shape[0], images.device
    u = torch.rand(3, b, generator=generator, device=dev)
    x = images.float()
    if spec.blur_sigma[1] > 0:
        x = gaussian_blur(x, _uniform(spec.blur_sigma, u[0]))
    x = downscale(x, scale)
    if spec.noise_std[1] > 0:
        std = _uniform(spec.noise_std, u[1]) * (2 / 255)
        x = x + std[:, None, None, None] * torch.randn(x.shape, generator=generator, device=dev)
    x = quantize(x.clamp(-1, 1))
    if spec.jpeg_quality is not None:
        lo, hi = spec.jpeg_quality
        quality = (lo + (u[2] * (hi - lo + 1)).floor()).clamp(max=hi)
        x = jpeg(x, quality)
    return x


def _is_blind(spec: DegradationSpec) -> bool:
    return spec.blur_sigma[1] > 0 or spec.noise_std[1] > 0 or spec.jpeg_quality is not None
