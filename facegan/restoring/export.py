"""`facegan export`: a trained restorer as one ONNX or TorchScript file, with its input contract.

The exported graph is the EMA generator wrapped in :class:`facegan.restoring.contract.Contract`
(the inputs, outputs and metadata are described there). The batch axis is dynamic. After every
export the file is run on real aligned faces and compared with the PyTorch generator
(:mod:`facegan.restoring.parity`): the largest absolute difference is returned, and an fp32
export differing by more than :data:`~facegan.restoring.parity.MAX_FP32_DIFF` is refused
(deleted). Running the file: :mod:`facegan.restoring.exported_file`; timing it:
:mod:`facegan.restoring.benchmark`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from facegan.checkpoints.checkpoint import Checkpoint
from facegan.core.atomic import TEMP_PATTERN
from facegan.core.errors import FaceganError
from facegan.core.locks import remove_stale
from facegan.restoring.contract import Contract, input_names, metadata, output_names
from facegan.restoring.exported_file import TORCHSCRIPT_METADATA, as_tensors, feeds
from facegan.restoring.parity import MAX_FP32_DIFF, example_faces, max_difference

#: The ONNX opsets the export writes: torch's exporter starts at 18.
MIN_OPSET = 18
DEFAULT_OPSET = 18
#: The formats ``facegan export --format`` writes.
FORMATS = ("onnx", "torchscript")


@dataclass
class ExportResult:
    """What an export wrote, how long it took, and how far the file is from PyTorch."""

    path: Path
    format: str
    seconds: float
    bytes: int
    max_diff: float
    fp16: bool


def export(ckpt: Checkpoint, fmt: str, out: Path, opset: int = DEFAULT_OPSET, fp16: bool = False,
           float_input: bool = False) -> ExportResult:
    """Export the checkpoint's EMA generator with its contract, check parity, return the figures.

    The file is written to a temp file beside ``out`` (``.<name>.<pid>.<random>.tmp``) and renamed
    over it only once its parity is checked; the temp file goes on any error, Ctrl-C or SIGTERM,
    and those that killed exports left (their process gone) are removed first."""
    if fmt not in FORMATS:
        raise FaceganError(f"--format {fmt!r}: choose {' or '.join(FORMATS)}")
    check_opset(opset)
    task = ckpt.task
    gen = ckpt.build_generator("cpu")
    reference = Contract(task, gen, float_input).eval()
    exported = Contract(task, _half_copy(gen) if fp16 else gen, float_input, half=fp16).eval()
    faces, holes = example_faces(task)
    args = as_tensors(feeds(faces, holes, float_input))
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(out.parent, TEMP_PATTERN)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        started = time.perf_counter()
        meta = metadata(ckpt, task, float_input, fp16)
        if fmt == "onnx":
            _export_onnx(exported, args, tmp, task, opset, meta)
        else:
            _export_torchscript(exported, args, tmp, meta)
        seconds = time.perf_counter() - started
        diff = max_difference(reference, tmp, fmt, faces, holes)
        if not fp16 and diff > MAX_FP32_DIFF:
            raise FaceganError(f"the exported {fmt} model differs from PyTorch by {diff:.2e} (> {MAX_FP32_DIFF:.0e}) "
                               "on real faces; not written")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportResult(out, fmt, seconds, out.stat().st_size, diff, fp16)


def export_target(ckpt: Checkpoint, out: Path | None, fmt: str, fp16: bool, force: bool) -> Path:
    """Where ``facegan export`` writes: ``out``, or ``<name>[-fp16].onnx|.pt`` in the current folder.

    Checked before any work: never the source itself nor any file of its run folder (an export
    named ``last.pt`` in ``checkpoints/`` would otherwise replace the checkpoint); an existing
    unrelated file only with ``force``; a folder or an unwritable place never."""
    from facegan.checkpoints import bundled
    from facegan.core.atomic import check_writable

    target = out or Path(f"{ckpt.name}{'-fp16' if fp16 else ''}.{'onnx' if fmt == 'onnx' else 'pt'}")
    resolved = target.resolve()
    source = (bundled.MODELS_DIR / f"{ckpt.bundled}.safetensors" if ckpt.bundled else Path(ckpt.path)).resolve()
    if resolved == source:
        raise FaceganError(f"--out {target} is the source {source} itself; pass --out with another path")
    run = source.parent.parent if source.parent.name == "checkpoints" else None
    if run is not None and run in resolved.parents and (resolved.exists() or source.parent in resolved.parents
                                                        or resolved.parent == source.parent):
        raise FaceganError(f"--out {target} would overwrite a file of the run {run}; pass --out with a path outside "
                           "its checkpoints/ and its files")
    check_writable(target, "--out")  # a folder, or no permission
    if target.exists() and not force:
        raise FaceganError(f"{target} already exists; pass --force to replace it (or --out another file)")
    return target


def check_opset(opset: int) -> None:
    """FaceganError unless ``opset`` is one the exporter writes and the installed onnx knows."""
    try:
        import onnx
    except ImportError:
        return  # the export itself says which package is missing
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise FaceganError(f"--opset {opset}: choose an ONNX opset from {MIN_OPSET} to {newest} "
                           f"(the installed onnx {onnx.__version__}; default {DEFAULT_OPSET})")


def _half_copy(gen: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(gen).half()


def _export_onnx(model: nn.Module, args: tuple, path: Path, task, opset: int, meta: dict[str, str]) -> None:
    try:
        import onnx
    except ImportError:
        raise FaceganError("ONNX export needs the onnx packages: pip install 'facegan[export]'") from None
    batch = torch.export.Dim("batch", min=1, max=4096)
    dynamic = {name: {0: batch} for name in input_names(task)}
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(model, args, str(path), input_names=input_names(task), output_names=output_names(task),
                              opset_version=opset, dynamo=True, dynamic_shapes=dynamic, external_data=False,
                              verbose=False)
    except ImportError as err:
        raise FaceganError(f"ONNX export needs {err.name or 'onnxscript'}: pip install 'facegan[export]'") from None
    proto = onnx.load(str(path))
    written = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if written != opset:
        raise FaceganError(f"--opset {opset}: the exporter wrote opset {written}; choose another opset")
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "facegan"
    onnx.save(proto, str(path))


def _export_torchscript(model: nn.Module, args: tuple, path: Path, meta: dict[str, str]) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated upstream; it is still what many deploy
        traced = torch.jit.trace(model, args, check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={TORCHSCRIPT_METADATA: json.dumps(meta)})
