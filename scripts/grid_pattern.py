"""Measure the periodic grid in a model's outputs (the "no visible checkerboard" check, as a figure).

    python scripts/grid_pattern.py MODEL [--data DIR] [--mask eyes] [--max-images 256] [--period 4 ...]

MODEL is a run folder, a checkpoint or a bundled model's name, as `facegan eval` takes it. The
first faces of the test split go through the model exactly as `facegan eval` sends them
(deterministic degradation or mask); for each period the script prints `metrics.periodic_peak`
of the model's raw output, of its result (the composite, for inpainting), of every reference row
and of the ground truth. A ratio near the ground truth's means no grid; sub-pixel or transposed
convolutions that leave one show tens.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from facegan.core.errors import FaceganError
from facegan.metrics import quality as metrics
from facegan.scoring.inputs import eval_batches, eval_inputs


def measure(model: str, data: str | None, max_images: int, periods: list[int], **options) -> dict[str, dict[int, float]]:
    """{row: {period: peak ratio}} for the model's raw output and result, each reference and the ground truth."""
    inputs = eval_inputs(model, data, max_images=max_images, **options)
    task, gen = inputs.task, inputs.ckpt.build_generator("cpu")
    rows: dict[str, list[np.ndarray]] = {}
    for _, _, batch in eval_batches(inputs):
        with torch.no_grad():
            raw, result = task.run(gen, batch)
            outputs = {"model (raw output)": raw}
            if not torch.equal(result, raw.float()):  # inpainting: the composite; SR: the raw output itself
                outputs["model (result)"] = result
            outputs.update(task.reference_outputs(batch, tuple(r.key for r in task.available_references())))
            outputs["ground truth"] = batch.target
        for name, x in outputs.items():
            rows.setdefault(name, []).append(metrics.to_uint8(x))
    return {name: {p: metrics.periodic_peak(np.concatenate(chunks), p) for p in periods} for name, chunks in rows.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--data")
    ap.add_argument("--mask", help="inpainting: the mask type (the recipe's when omitted)")
    ap.add_argument("--max-images", type=int, default=256)
    ap.add_argument("--period", type=int, action="append", help="periods in pixels (default 2, 4, 8)")
    args = ap.parse_args()
    options = {"mask": args.mask} if args.mask else {}
    periods = args.period or [2, 4, 8]
    try:
        table = measure(args.model, args.data, args.max_images, periods, **options)
    except (FaceganError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None
    print(f"spectral peak at each period over the bins around it (1 = none), {args.model}:")
    print(f"{'':22s}" + "".join(f"{f'{p} px':>9s}" for p in periods))
    for name, peaks in table.items():
        print(f"{name:22s}" + "".join(f"{peaks[p]:9.1f}" for p in periods))


if __name__ == "__main__":
    main()
