"""What people look at: sample grids, loss curves and metric tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from facegan.core.atomic import atomic_write_bytes
from facegan.metrics.info import MetricInfo

#: Grey level that marks a hole in pictures (occluded panels, comparison images).
HOLE_GREY = 128

def save_image(image: Image.Image, path: Path, quality: int = 95) -> None:
    """``image`` written atomically in the format of ``path``'s suffix: PNG, JPEG (``quality``,
    4:4:4 chroma; an alpha channel is flattened onto white) or WebP (``quality``)."""
    import io

    suffix = Path(path).suffix.lower()
    buf = io.BytesIO()
    if suffix in (".jpg", ".jpeg"):
        if image.mode in ("RGBA", "LA"):
            flat = Image.new("RGB", image.size, "white")
            flat.paste(image, mask=image.getchannel("A"))
            image = flat
        image.convert("RGB").save(buf, format="JPEG", quality=quality, subsampling=0)
    elif suffix == ".webp":
        image.save(buf, format="WEBP", quality=quality)
    else:
        image.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def grid_image(columns: Sequence[tuple[str, np.ndarray]], header: int = 18) -> Image.Image:
    """A grid with one titled column per (title, (N,H,W,3) uint8) entry, one row per image."""
    n, h, w, _ = columns[0][1].shape
    pad = 2
    canvas = Image.new("RGB", (len(columns) * (w + pad) + pad, header + n * (h + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for c, (title, imgs) in enumerate(columns):
        x = pad + c * (w + pad)
        draw.text((x + 2, 3), title, fill="black")
        for r in range(n):
            canvas.paste(Image.fromarray(imgs[r]), (x, header + pad + r * (h + pad)))
    return canvas


def read_log(path: Path) -> list[dict]:
    """Records of a run's log.jsonl (a torn last line from a crash is ignored)."""
    out = []
    if not path.is_file():
        return out
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


#: (key in log.jsonl, panel title) of the loss-curve figure.
LOSS_PANELS = [
    ("d", "D loss"),
    ("g", "G total"),
    ("g_adv", "G adversarial"),
    ("g_rec", "G reconstruction"),
    ("g_id", "G identity (1 - cos)"),
    ("g_content", "G content (VGG)"),
    ("g_tv", "G total variation"),
    ("d_real", "D(x) / D(G(z))"),
]
VAL_PANELS = [("psnr", "val PSNR (dB)"), ("ssim", "val SSIM")]


def _smooth(values: np.ndarray, k: int) -> np.ndarray:
    if len(values) < 3 or k <= 1:
        return values
    k = min(k, len(values))
    kernel = np.ones(k) / k
    padded = np.concatenate([np.full(k - 1, values[0]), values])
    return np.convolve(padded, kernel, mode="valid")


def plot_curves(records: Iterable[dict], out_dir: Path) -> list[Path]:
    """loss_curves.png (D, G total/adv/rec/id, D(x) vs D(G(z))) and val_curves.png (PSNR, SSIM)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = list(records)
    steps = [r for r in records if r.get("kind") == "step"]
    vals = [r for r in records if r.get("kind") == "val"]
    written = []
    if steps:
        # a panel per quantity this run logs (SR adds content and TV; inpainting has neither)
        panels = [(k, t) for k, t in LOSS_PANELS if any(np.isfinite(r.get(k, np.nan)) for r in steps)]
        rows = (len(panels) + 2) // 3
        fig, axes = plt.subplots(rows, 3, figsize=(13, 3.25 * rows), squeeze=False)
        for ax in axes.flat[len(panels):]:
            ax.axis("off")
        x = np.array([r["step"] for r in steps])
        for ax, (key, title) in zip(axes.flat, panels):
            if key == "d_real":
                for k, label in (("d_real", "D(x)"), ("d_fake", "D(G(z))")):
                    y = np.array([r.get(k, np.nan) for r in steps], dtype=float)
                    ax.plot(x, _smooth(y, max(1, len(y) // 50)), label=label)
                ax.set_ylim(0, 1)
                ax.legend(loc="best", fontsize=8)
            else:
                y = np.array([r.get(key, np.nan) for r in steps], dtype=float)
                ax.plot(x, y, alpha=0.25, color="C0")
                ax.plot(x, _smooth(y, max(1, len(y) // 50)), color="C0")
            ax.set_title(title)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        fig.tight_layout()
        written.append(_save_fig(fig, out_dir / "loss_curves.png"))
        plt.close(fig)
    if vals:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
        x = np.array([r["step"] for r in vals])
        for ax, (key, title) in zip(axes, VAL_PANELS):
            ax.plot(x, [r.get(key, np.nan) for r in vals], marker="o")
            ax.set_title(title)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        fig.tight_layout()
        written.append(_save_fig(fig, out_dir / "val_curves.png"))
        plt.close(fig)
    return written


def _save_fig(fig, path: Path) -> Path:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    atomic_write_bytes(path, buf.getvalue())
    return path


def metrics_table(title: str, rows: Sequence[tuple[str, dict]], columns: Sequence[MetricInfo], caption: str = ""):
    """A rich Table: one row per (label, {metric: Estimate}), one column per metric.

    Each cell is ``mean ± half-width`` of the estimate's 95% interval (the same format for
    both), or ``-`` when the row has no such metric.
    """
    import math

    def cell(est, fmt: str) -> str:
        return fmt.format(est.mean) + ("" if math.isnan(est.half) else f" ± {fmt.format(est.half)}")

    return _table(title, rows, columns, caption, cell)


def paired_table(title: str, rows: Sequence[tuple[str, dict]], columns: Sequence[MetricInfo], caption: str = ""):
    """A rich Table of paired differences: one row per (label, {metric: PairedDifference});
    each cell is :func:`paired_text` of its difference (``-`` when the row has no such metric)."""
    return _table(title, rows, columns, caption, lambda d, fmt: paired_text(d.diff, d.lo, d.hi, fmt))


def paired_text(diff: float, lo: float, hi: float, fmt: str, sep: str = " ") -> str:
    """A paired difference and its interval in a metric's format, ``+1.14 [+1.10, +1.17]``; a
    rate (a ``%`` format) in percentage points, ``+4.4 pp [+2.0, +7.0]``; ``-`` when undefined.
    ``sep`` separates the difference from its interval."""
    import math

    signed, unit = fmt.replace("{:", "{:+"), (" pp" if fmt.endswith("%}") else "")

    def num(x: float) -> str:  # Python's % format already multiplies by 100
        return signed.format(x).removesuffix("%")

    if math.isnan(diff):
        return "-"
    if math.isnan(lo):
        return num(diff) + unit
    return f"{num(diff)}{unit}{sep}[{num(lo)}, {num(hi)}]"


def _table(title: str, rows: Sequence[tuple[str, dict]], columns: Sequence[MetricInfo], caption: str, cell):
    """The rich Table both tables share: a label column, then one right-aligned column per
    metric; ``cell(value, format)`` renders a present value, ``-`` a missing one."""
    from rich.table import Table

    table = Table(title=title, caption=caption, caption_justify="left")
    table.add_column("")
    for m in columns:
        table.add_column(m.header, justify="right")
    for label, values in rows:
        table.add_row(label, *["-" if values.get(m.key) is None else cell(values[m.key], m.fmt) for m in columns])
    return table
