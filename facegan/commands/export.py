"""`facegan export`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from facegan.commands.common import FIDELITY_HELP
from facegan.commands.common import console as _console
from facegan.commands.common import reflowed, user_errors


class Format(str, Enum):
    """``--format``: :data:`facegan.restoring.export.FORMATS` (a test keeps them equal)."""

    onnx = "onnx"
    torchscript = "torchscript"


@user_errors
@reflowed
def export(
    source: str = typer.Argument(..., help="Run folder, checkpoint file, or bundled model name (facegan models).", show_default=False),
    fmt: Format = typer.Option(Format.onnx, "--format", "-f", help="The file's format."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="File to write \\[default: <name>.onnx / <name>.pt in the current folder].", show_default=False),
    opset: int = typer.Option(18, "--opset", help="ONNX opset (18 up to the newest the installed onnx knows)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing file at the output path (never the source or a file of its run)."),
    fp16: bool = typer.Option(False, "--fp16", help="Weights and compute in float16 (half the file; the parity figure is printed, not enforced)."),
    float_input: bool = typer.Option(False, "--float-input", help="Take float32 faces (and masks) in 0..1 instead of uint8 0..255."),
    fidelity: Optional[float] = typer.Option(None, "--fidelity", help=FIDELITY_HELP, show_default=False),
    benchmark: bool = typer.Option(False, "--benchmark", help="Also time the exported file and the PyTorch restorer per face at batch 1 and 8 (CPU)."),
) -> None:
    """Export a restorer as one ONNX or TorchScript file that runs without facegan's training stack.

    The file holds the EMA generator with the task's input contract built in. Inputs: "face",
    aligned faces uint8 (N, s, s, 3) RGB (s: the model's input size, size / scale for
    super-resolution) and, for inpainting, "mask" uint8 (N, S, S), white (> 127) = hole.
    Outputs, float32 (N, S, S, 3) RGB in 0..1: "restored" (inpainting: the composite, the input
    kept outside the hole) and, for inpainting, "raw" (the generator's whole output). The
    batch axis is dynamic; the ONNX metadata holds the task, scale, size, template, recipe,
    facegan version and this contract.

    After the export the file is run on real aligned faces (the bundled sample photos) and
    compared with PyTorch: the largest difference is printed, and an fp32 file that differs by
    more than 1e-4 is refused. `facegan restore --backend onnx MODEL.onnx` runs the whole
    detect, align and paste-back pipeline on it.

    Examples:
      facegan export inpaint-128 --format onnx --out inpaint-128.onnx
      facegan export runs/sr_identity --format torchscript --fp16
    """
    from facegan.checkpoints.checkpoint import Checkpoint
    from facegan.checkpoints.fidelity import at_fidelity
    from facegan.data.build import human_bytes
    from facegan.restoring.benchmark import latency
    from facegan.restoring.export import check_opset
    from facegan.restoring.export import export as run
    from facegan.restoring.export import export_target

    fmt = fmt.value
    if fmt == "onnx":
        check_opset(opset)
    ckpt = at_fidelity(Checkpoint.load(source), fidelity)
    target = export_target(ckpt, out, fmt, fp16, force)
    console = _console()
    console.print(f"exporting {ckpt.describe()} ({ckpt.task_name}) to {fmt}{' (fp16)' if fp16 else ''} ...")
    result = run(ckpt, fmt, target, opset=opset, fp16=fp16, float_input=float_input)
    console.print(f"wrote {result.path}: {human_bytes(result.bytes)} in {result.seconds:.1f} s; "
                  f"parity on real faces: max |Δ| = {result.max_diff:.2e} (outputs in 0..1)"
                  + ("" if fp16 else " ≤ 1e-4"))
    if benchmark:
        figures = latency(result.path, fmt, ckpt)
        for b in (1, 8):
            console.print(f"batch {b}: {fmt} {figures[fmt][b]:.2f} ms/face, PyTorch {figures['pytorch'][b]:.2f} ms/face "
                          f"({figures['pytorch'][b] / figures[fmt][b]:.2f}x)")
