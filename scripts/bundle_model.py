"""Make a bundled model (facegan/assets/models) from a finished run, and score the shipped weights.

    python scripts/bundle_model.py pack RUN NAME --training-data TEXT --licence TEXT [--notes TEXT] [--fp32]
    python scripts/bundle_model.py score NAME [--mask eyes --mask mouth ...] [--data DIR] [--judge] [--max-images N]

`pack` writes NAME.safetensors (the EMA generator, fp16 unless --fp32) and NAME.json (the card:
task, scale, size, template, recipe, training data, steps, licence, SHA-256). `score` evaluates
the *bundled* weights (what users get, fp16 rounding included) with `facegan eval` on the test
split, every reference row beside it, and records each summary in the card's `eval` table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from facegan.bundled import MODELS_DIR, find_model, set_eval, write_bundle
from facegan.engines.checkpoint import load_checkpoint
from facegan.evaluate import evaluate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    pack = sub.add_parser("pack")
    pack.add_argument("run")
    pack.add_argument("name")
    pack.add_argument("--training-data", required=True)
    pack.add_argument("--licence", required=True)
    pack.add_argument("--notes", default="")
    pack.add_argument("--fp32", action="store_true")
    pack.add_argument("--dir", default=str(MODELS_DIR))
    score = sub.add_parser("score")
    score.add_argument("name")
    score.add_argument("--mask", action="append", default=[])
    score.add_argument("--data")
    score.add_argument("--judge", action="store_true")
    score.add_argument("--max-images", type=int)
    score.add_argument("--out", default="runs/bundled_eval")
    args = ap.parse_args()

    if args.cmd == "pack":
        model = write_bundle(load_checkpoint(args.run), args.name, Path(args.dir), args.training_data, args.licence,
                             args.notes, fp16=not args.fp32)
        print(f"wrote {model.weights} ({model.size_bytes / 2**20:.1f} MiB) and its card")
        return
    model = find_model(args.name)
    if model is None:
        raise SystemExit(f"no bundled model {args.name}")
    from rich.console import Console

    settings = [{"mask": m} for m in args.mask] or [{}]
    for options in settings:
        result = evaluate(model.name, data=args.data, device="cpu", max_images=args.max_images,
                          out_dir=Path(args.out) / model.name, judge="dlib" if args.judge else None,
                          console=Console(), **options)
        key = options.get("mask") or f"x{model.scale}"
        set_eval(model, key, result.summary)
        model = find_model(args.name)  # the card changed
        print(f"recorded {key} in {model.weights.with_suffix('.json')}")


if __name__ == "__main__":
    main()
