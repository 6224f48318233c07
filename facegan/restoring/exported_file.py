"""Running a file made by ``facegan export``: :class:`ExportedFile`, and its inputs, :func:`feeds`.

An exported file (ONNX, run by onnxruntime on the CPU, or TorchScript, run by torch.jit) takes
the inputs its contract names (:mod:`facegan.restoring.contract`): ``face`` and, for a task that
takes holes, ``mask``, as uint8 or (exported with ``float_input``) float32 in 0..1.
:func:`feeds` is the one place those inputs are made from aligned faces and holes; the ONNX
restorer, :func:`run_file`, the export's parity check and the benchmark all go through it.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch

from facegan.core.errors import FaceganError

#: The TorchScript file's extra file that holds its metadata (the ONNX file's metadata_props).
TORCHSCRIPT_METADATA = "facegan.json"


def feeds(faces: np.ndarray, holes: np.ndarray | None = None, float_input: bool = False) -> dict[str, np.ndarray]:
    """The inputs of an exported file, by name: ``face`` from uint8 aligned faces (N,s,s,3) and,
    given ``holes`` (N,S,S) or (N,1,S,S) (bool: True = hole; uint8 masks: white = hole; floats
    in 0..1: >= 0.5 = hole), ``mask`` (N,S,S); uint8, or float32 in 0..1 for a file exported
    with ``float_input``."""
    faces = np.asarray(faces, dtype=np.uint8)
    out = {"face": faces.astype(np.float32) / 255.0 if float_input else faces}
    if holes is not None:
        holes = np.asarray(holes)
        if holes.dtype != np.uint8:
            holes = (holes if holes.dtype == bool else holes >= 0.5).astype(np.uint8) * 255
        mask = holes.reshape(len(faces), *holes.shape[-2:])
        out["mask"] = mask.astype(np.float32) / 255.0 if float_input else mask
    return out


def as_tensors(inputs: dict[str, np.ndarray]) -> tuple[torch.Tensor, ...]:
    """:func:`feeds` as the positional tensors of the exported module (face, then mask)."""
    return tuple(torch.from_numpy(np.ascontiguousarray(v)) for v in inputs.values())


def as_list(outputs) -> list[torch.Tensor]:
    """A module's output (one tensor or a tuple of them) as a list."""
    return list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]


class ExportedFile:
    """An exported file, loaded and ready to run (``fmt``: ``onnx`` or ``torchscript``)."""

    def __init__(self, path: str | Path, fmt: str = "onnx") -> None:
        self.path, self.fmt = Path(path), fmt
        if not self.path.is_file():
            raise FaceganError(f"{'ONNX' if fmt == 'onnx' else 'TorchScript'} model {self.path} not found")
        if fmt == "onnx":
            self.session = onnx_session(self.path)
            self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        else:
            self.module, self.metadata = load_torchscript(self.path)
        self.float_input = self.metadata.get("input") == "float32"
        """Whether it takes float32 inputs in 0..1 (exported with ``float_input``) rather than uint8."""

    def run(self, faces: np.ndarray, holes: np.ndarray | None = None) -> list[np.ndarray]:
        """Its outputs (float32 arrays: ``restored``, then ``raw`` for a task that takes holes)
        for aligned uint8 faces and their holes (as :func:`feeds` takes them)."""
        inputs = feeds(faces, holes, self.float_input)
        if self.fmt == "onnx":
            return [np.asarray(o) for o in self.session.run(None, inputs)]
        with torch.no_grad():
            return [o.numpy() for o in as_list(self.module(*as_tensors(inputs)))]


def run_file(path: Path, fmt: str, faces: np.ndarray, holes: np.ndarray | None) -> list[np.ndarray]:
    """Run an exported file once on faces (and holes): its outputs as float32 arrays."""
    return ExportedFile(path, fmt).run(faces, holes)


def load_torchscript(path: Path) -> tuple[torch.jit.ScriptModule, dict[str, str]]:
    """A TorchScript file's module (on the CPU) and its metadata (empty when it has none)."""
    extra = {TORCHSCRIPT_METADATA: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:  # not a TorchScript file
        raise FaceganError(f"{path} is not a TorchScript model ({str(exc).splitlines()[0][:200]})") from None
    try:
        metadata = json.loads(extra[TORCHSCRIPT_METADATA] or "{}")
    except ValueError:
        metadata = {}
    return module, metadata


def onnx_session(path: Path):
    """An onnxruntime CPU session for ``path``; one-line errors when it cannot be had."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise FaceganError("running an ONNX model needs onnxruntime: pip install 'facegan[export]'") from None
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # not an ONNX file, unsupported operators...
        raise FaceganError(f"{path} is not a model onnxruntime can run ({str(exc).splitlines()[0][:200]})") from None
