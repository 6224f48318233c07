"""The fidelity curve of a GAN model: its scores against ``--fidelity F`` (docs/models.md).

    python scripts/fidelity_curve.py MODEL --data data/celeba-128 [--mask eyes ...] [--max-images N]
        [--steps 0 0.25 0.5 0.75 1] [--out runs/fidelity] [--plot docs/images/fidelity-MODEL.png]

Scores MODEL (a bundled GAN model or a GAN run) at each F with `facegan eval --judge` on the test
split (the reference rows come from eval's cache after the first F) and writes one CSV row per
(setting, F): PSNR (PSNR-Y for SR), detail, LMD, judge cosine and verified share, fd_dlib, with
their 95% intervals; then a plot of each metric against F, one line per setting, with the
PSNR model's reference values (F = 1) and the ground truth's detail (1) marked.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

METRICS = (("psnr", "PSNR (dB)"), ("detail", "detail (1 = real)"), ("lmd", "LMD (px, lower = better)"),
           ("judge_verified", "judge verified share"), ("fd_dlib", "fd_dlib (lower = better)"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--data", required=True)
    ap.add_argument("--mask", action="append", default=[])
    ap.add_argument("--max-images", type=int)
    ap.add_argument("--steps", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    ap.add_argument("--out", default="runs/fidelity")
    ap.add_argument("--plot")
    ap.add_argument("--from-csv", help="re-plot an earlier run's fidelity_curve.csv instead of scoring")
    args = ap.parse_args()
    if args.from_csv:
        rows = [{k: _number(v) for k, v in r.items()} for r in csv.DictReader(open(args.from_csv))]
        from facegan.checkpoints.checkpoint import Checkpoint
        from facegan.checkpoints.fidelity import default_fidelity

        plot(rows, Path(args.plot), args.model, default_fidelity(Checkpoint.load(args.model)))
        return

    from facegan.scoring.evaluate import evaluate

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for options in [{"mask": m} for m in args.mask] or [{}]:
        setting = options.get("mask", "sr")
        for f in args.steps:
            result = evaluate(args.model, data=args.data, device="cpu", max_images=args.max_images,
                              out_dir=out / f"{setting}_f{f:g}", judge="dlib", fidelity=f, **options)
            s = result.summary
            m, ci = s["metrics"], s.get("ci95", {})
            psnr_key = "psnr_y" if "psnr_y" in m else "psnr"
            row = {"setting": setting, "fidelity": f, "n": s.get("n_images")}
            for key in ("psnr", "detail", "lmd", "judge_cos", "judge_verified", "fd_dlib"):
                src = psnr_key if key == "psnr" else key
                row[key] = m.get(src)
                half = ci.get(src)
                if isinstance(half, (int, float)) and row[key] is not None:  # a 95% half-width
                    row[f"{key}_lo"], row[f"{key}_hi"] = row[key] - half, row[key] + half
                elif isinstance(half, (list, tuple)) and len(half) == 2:  # an interval (fd_dlib)
                    row[f"{key}_lo"], row[f"{key}_hi"] = half
                else:
                    row[f"{key}_lo"] = row[f"{key}_hi"] = None
            rows.append(row)
            print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()
                   if not k.endswith(("_lo", "_hi"))}, flush=True)
    table = out / "fidelity_curve.csv"
    with table.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {table}")
    if args.plot:
        from facegan.checkpoints.checkpoint import Checkpoint
        from facegan.checkpoints.fidelity import default_fidelity

        plot(rows, Path(args.plot), args.model, default_fidelity(Checkpoint.load(args.model)))


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return text or None


def plot(rows: list[dict], path: Path, model: str, default: float | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = list(dict.fromkeys(r["setting"] for r in rows))
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.4))
    for ax, (key, label) in zip(axes, METRICS):
        for setting in settings:
            mine = [r for r in rows if r["setting"] == setting and r[key] is not None]
            if not mine:
                continue
            xs = [r["fidelity"] for r in mine]
            ys = [r[key] for r in mine]
            ax.plot(xs, ys, marker="o", label=setting)
            lo = [r[f"{key}_lo"] for r in mine]
            hi = [r[f"{key}_hi"] for r in mine]
            if all(v is not None for v in lo + hi):
                if key == "judge_verified":  # a share: its interval ends at 1
                    lo, hi = [max(v, 0.0) for v in lo], [min(v, 1.0) for v in hi]
                ax.fill_between(xs, lo, hi, alpha=0.2)
        if key == "detail":
            ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        if default is not None:
            ax.axvline(default, color="black", lw=0.8, ls=":")
        ax.set_xlabel("fidelity F (0 = GAN, 1 = PSNR model)")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    said = f" (dotted: the default, F = {default:g})" if default is not None else ""
    fig.suptitle(f"{model}: scores against --fidelity{said}", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
