"""A picture of the fidelity knob: the same faces through the PSNR model, the GAN model and the
default fidelity, beside the input and the ground truth (docs/models.md).

    python scripts/fidelity_grid.py MODEL --data PACKED [--mask eyes] [--faces 6] [--split test]
        [--fidelity F ...] --out docs/images/MODEL.png

MODEL is a GAN model (bundled or a run) with a PSNR partner. The inputs are eval's deterministic
ones (eval's mask or bicubic reduction for each face index). Columns: the input (SR: enlarged,
nearest), F = 1 (the PSNR model), each extra F asked for, the model's default F when it has one,
F = 0 (the GAN model), the ground truth. Faces are shown at twice their size (nearest), so a model
pixel is a 2x2 block: look at them at 100%.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--data", required=True)
    ap.add_argument("--mask")
    ap.add_argument("--split", default="test")
    ap.add_argument("--faces", type=int, default=6)
    ap.add_argument("--fidelity", type=float, nargs="*", default=[])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import torch

    from facegan.checkpoints.checkpoint import Checkpoint
    from facegan.checkpoints.fidelity import default_fidelity
    from facegan.core.report import grid_image, save_image
    from facegan.metrics.quality import to_uint8
    from facegan.scoring.inputs import eval_batches, eval_inputs

    options = {"mask": args.mask} if args.mask else {}
    base = Checkpoint.load(args.model)
    default = default_fidelity(base)
    steps = [1.0, *sorted(set(args.fidelity), reverse=True)]
    if default is not None and default not in steps:
        steps.append(default)
    steps.append(0.0)
    columns: list[tuple[str, np.ndarray]] = []
    target = shown_input = None
    for f in steps:
        inputs = eval_inputs(args.model, args.data, args.split, args.faces, fidelity=f, **options)
        gen = inputs.ckpt.build_generator("cpu")
        _, _, batch = next(eval_batches(inputs))
        with torch.no_grad():
            _, result = inputs.task.run(gen, batch)
        if target is None:
            target = to_uint8(batch.target)
            shown = batch.inputs[0]
            if shown.shape[-1] != target.shape[1]:  # SR: the small input, enlarged (nearest)
                shown = torch.nn.functional.interpolate(shown, size=target.shape[1:3], mode="nearest")
            shown_input = to_uint8(shown[:, :3])
        label = "PSNR model (F=1)" if f == 1 else "GAN model (F=0)" if f == 0 else f"F={f:g}"
        if f == default:
            label += ", default"
        columns.append((label, to_uint8(result.clamp(-1, 1))))
    columns = [("input", shown_input), *columns, ("ground truth", target)]
    columns = [(t, imgs.repeat(2, axis=1).repeat(2, axis=2)) for t, imgs in columns]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid_image(columns), out)
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
