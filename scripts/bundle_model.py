"""Make a bundled model (facegan/assets/models) from a finished run, and score the shipped weights.

    python scripts/bundle_model.py pack RUN NAME --training-data TEXT --licence TEXT [--notes TEXT] [--fp32]
    python scripts/bundle_model.py score NAME [--mask eyes --mask mouth ...] [--data DIR] [--judge] [--max-images N]
    python scripts/bundle_model.py fidelity NAME F      (a GAN model's default --fidelity)
    python scripts/bundle_model.py table [NAME ...]

`pack` writes NAME.safetensors (the EMA generator, fp16 unless --fp32) and NAME.json (the card:
task, scale, size, template, recipe, training data, steps, licence, SHA-256). `score` evaluates
the *bundled* weights (what users get, fp16 rounding included) with `facegan eval` on the test
split, every reference row beside it, and records each summary in the card's `eval` table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from facegan.checkpoints.bundle_writer import set_eval, write_bundle
from facegan.checkpoints.bundled import MODELS_DIR, find_model
from facegan.checkpoints.checkpoint import Checkpoint
from facegan.core.report import paired_text
from facegan.scoring.evaluate import evaluate


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
    fid = sub.add_parser("fidelity", help="set a GAN model's default --fidelity (from the measured curve)")
    fid.add_argument("name")
    fid.add_argument("value", type=float)
    table = sub.add_parser("table")
    table.add_argument("names", nargs="*")
    args = ap.parse_args()

    if args.cmd == "table":
        from facegan.checkpoints.bundled import list_models

        for model in list_models():
            if not args.names or model.name in args.names:
                print(markdown_scores(model.card))
        return

    if args.cmd == "pack":
        model = write_bundle(Checkpoint.load(args.run), args.name, Path(args.dir), args.training_data, args.licence,
                             args.notes, fp16=not args.fp32)
        speed = training_speed(Path(args.run) / "log.jsonl")
        if speed:
            set_card_field(model, "training", speed)
        print(f"wrote {model.weights} ({model.size_bytes / 2**20:.1f} MiB) and its card; trained {speed}")
        return
    model = find_model(args.name)
    if model is None:
        raise SystemExit(f"no bundled model {args.name}")
    if args.cmd == "fidelity":
        if "fidelity" not in model.card or not 0 <= args.value <= 1:
            raise SystemExit(f"{args.name} is not a GAN model with a PSNR partner, or {args.value} is not in 0..1")
        set_card_field(model, "fidelity", {**model.card["fidelity"], "default": args.value})
        print(f"{args.name}: default fidelity {args.value:g}")
        return
    from facegan.commands.common import console

    settings = [{"mask": m} for m in args.mask] or [{}]
    for options in settings:
        result = evaluate(model.name, data=args.data, device="cpu", max_images=args.max_images,
                          out_dir=Path(args.out) / model.name, judge="dlib" if args.judge else None,
                          console=console(), **options)
        key = options.get("mask") or f"x{model.scale}"
        set_eval(model, key, result.summary)
        model = find_model(args.name)  # the card changed
        print(f"recorded {key} in {model.weights.with_suffix('.json')}")


def training_speed(log: Path) -> dict:
    """Training throughput from a run's log: images per second over the whole run, and its minutes.

    Each flushed step record carries the img/s of the steps since the previous flush, so the
    time of a flush window is (steps in it) x (global batch) / img/s; summing the windows gives
    the training time without counting start-up, checkpoints or the identity-target cache.
    """
    import json

    if not log.is_file():
        return {}
    batch, device, prev, seconds, images = 0, "", 0, 0.0, 0
    for line in log.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("kind") == "start":
            batch, device, prev = rec.get("global_batch", 0), rec.get("device", ""), rec.get("step", 0)
        elif rec.get("kind") == "step" and rec.get("img_s"):
            n = (rec["step"] - prev) * batch
            seconds += n / rec["img_s"]
            images += n
            prev = rec["step"]
    if not seconds:
        return {}
    return {"img_s": round(images / seconds, 2), "minutes": round(seconds / 60, 1), "device": device,
            "images": images}


def markdown_scores(card: dict) -> str:
    """The card's eval table in Markdown: one row for the model and one per reference, per setting."""
    from dataclasses import replace

    from facegan.metrics import info as mi

    # (metric, whether its cell shows the 95% CI): the headline metric does
    if card["task"] == "inpaint":
        cols = [(mi.PSNR, True), (mi.SSIM, False), (mi.HOLE_L1, False)]
    else:
        cols = [(mi.PSNR_Y, True), (mi.SSIM_Y, False), (replace(mi.PSNR, header="PSNR RGB (dB)"), False)]
    cols += [(m, False) for m in mi.JUDGE]
    if any("detail" in ev["metrics"] for ev in card.get("eval", {}).values()):  # scored with the realism metrics
        cols += [(mi.DETAIL, False), (mi.LMD, False), (mi.FD_DLIB, False)]
    head = "| setting | row | " + " | ".join(m.header for m, _ in cols) + " |"
    lines = [f"### `{card['name']}`", "", head, "|" + "---|" * (len(cols) + 2)]
    for key, ev in card.get("eval", {}).items():
        rows = [(f"**{card['name']}**", ev["metrics"], ev["ci95"])]
        rows += [(r["name"], r["metrics"], r["ci95"]) for r in ev.get("references", {}).values()]
        for label, metrics, ci in rows:
            cells = []
            for m, with_ci in cols:
                if m.key not in metrics:
                    cells.append("–")
                    continue
                cell = m.fmt.format(metrics[m.key])
                cells.append(f"{cell} ± {ci[m.key]:.2f}" if with_ci else cell)
            lines.append(f"| {key} | {label} | " + " | ".join(cells) + " |")
        for ref, diffs in ev.get("paired", {}).items():
            cells = [paired_text(diffs[m.key]["diff"], diffs[m.key]["lo"], diffs[m.key]["hi"], m.fmt)
                     if m.key in diffs else "–" for m, _ in cols]
            lines.append(f"| {key} | {card['name']} − {ref}, paired | " + " | ".join(cells) + " |")
    n = {ev.get("n_images") for ev in card.get("eval", {}).values()}
    paired = any(ev.get("paired") for ev in card.get("eval", {}).values())
    lines += ["", f"Images per setting: {', '.join(str(x) for x in sorted(n, key=str))}; mean ± 95% CI (Student t)"
              + ("; a paired row is the mean per-image difference [95% bootstrap CI]." if paired else ".")]
    return "\n".join(lines) + "\n"


def set_card_field(model, key: str, value) -> None:
    import json

    from facegan.core.atomic import atomic_write_bytes

    card = dict(model.card)
    card[key] = value
    atomic_write_bytes(model.weights.with_suffix(".json"), (json.dumps(card, indent=2) + "\n").encode())


if __name__ == "__main__":
    main()
