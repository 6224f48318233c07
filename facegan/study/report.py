"""What `facegan ablate` shows: one rich table, results.md, results.csv and results.png.

Every cell is ``mean ± 95% CI`` over test images (Student t; each image first averaged over
seeds). Under each variant other than the baseline, a "Δ vs baseline" row gives the mean
paired per-image difference, its 95% bootstrap CI and the two-sided sign-flip permutation
p-value (:mod:`facegan.metrics.stats`). With several seeds, a "seeds" row gives the mean ± 95% CI of
the per-seed means, i.e. the run-to-run spread the single-run claims of the source projects
could not show.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from facegan.core.atomic import atomic_write_bytes
from facegan.core.report import paired_text
from facegan.metrics.info import MetricInfo
from facegan.metrics.stats import Estimate, PairedDifference
from facegan.study.result import JUDGE_KEYS, StudyResult

NA = "n/a"


def header(result: StudyResult, m: MetricInfo) -> str:
    """Column title naming the network behind an identity column."""
    if m.key == "id_cos":
        return f"identity cos ({result.identity_net})"
    if m.key == "judge_cos":
        return f"judge cos ({result.judge or 'none'})"
    if m.key == "judge_verified":
        return f"verified by {result.judge or 'judge'}"
    return m.header


def fmt_estimate(est: Estimate, m: MetricInfo) -> str:
    """``24.12 ± 0.15`` (``93.3% ± 4.1`` for rates); no ``±`` part from a single value."""
    if not math.isfinite(est.mean):
        return NA
    scale, unit = (100.0, "%") if m.percent else (1.0, "")
    text = f"{est.mean * scale:.{m.decimals}f}{unit}"
    return text if not math.isfinite(est.half) else f"{text} ± {est.half * scale:.{m.decimals}f}"


def fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return "p n/a"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def fmt_diff(d: PairedDifference | None, m: MetricInfo, sep: str = " ") -> str:
    """``+0.39 [+0.12, +0.66] p=0.004`` (percentage points for rates); ``sep`` separates the
    three parts (the table puts them on three lines)."""
    if d is None or not math.isfinite(d.diff):
        return NA
    return f"{paired_text(d.diff, d.lo, d.hi, m.fmt, sep)}{sep}{fmt_p(d.p)}"


def _cell(result: StudyResult, variant, m: MetricInfo, what: str, sep: str = " ") -> str:
    got = variant.metrics.get(m.key)
    if got is None:
        return NA
    if what == "diff":
        return fmt_diff(got.diff, m, sep)
    return fmt_estimate(got.seeds if what == "seeds" else got.estimate, m)


def describe_setup(result: StudyResult) -> str:
    """One paragraph: what was trained and how it was scored."""
    spec = result.study.spec
    steps = ", ".join(f"{v} {s}" for v, s in result.steps.items())
    mask = f", mask '{result.mask or 'recipe default'}'" if result.task == "inpaint" else ""
    judge = (f"judge {result.judge} (never used in training)" if result.judge else (result.judge_note or "no judge"))
    return (
        f"{result.n_images} images of {result.data}/{result.split}{mask}, the same for every run; "
        f"{result.seeds} seed{'s' if result.seeds > 1 else ''} per variant; steps: {steps}"
        f"{' (--quick)' if result.quick else ''}. Identity cosine by {result.identity_net}; {judge}. "
        f"Base recipe {spec.base}; baseline '{result.baseline}'."
    )


STATS_NOTE = (
    "mean ± 95% CI over images (Student t; each image averaged over seeds first). Δ: mean paired "
    "per-image difference variant − baseline, 95% percentile bootstrap CI over images, two-sided "
    "sign-flip permutation p."
)


def results_table(result: StudyResult):
    """The rich table `facegan ablate` prints."""
    from rich.markup import escape
    from rich.table import Table

    caption = escape(describe_setup(result) + " " + STATS_NOTE)
    table = Table(title=f"facegan ablate: {result.study.name}", caption=caption, caption_justify="left")
    table.add_column("variant", no_wrap=True)
    for m in result.metrics:
        table.add_column(header(result, m), justify="right")
    for v in result.variants:
        table.add_row(f"[bold]{v.name}[/]", *[_cell(result, v, m, "estimate") for m in result.metrics])
        if result.seeds > 1:
            table.add_row("  [dim]seed means[/]", *[_cell(result, v, m, "seeds") for m in result.metrics])
        if v.name != result.baseline:
            table.add_row(f"  Δ vs {result.baseline}", *[_cell(result, v, m, "diff", "\n") for m in result.metrics])
    return table


def results_markdown(result: StudyResult) -> str:
    """results.md: the table as the source projects present it, then the paired differences."""
    spec = result.study.spec
    heads = [header(result, m) for m in result.metrics]
    lines = [f"# Ablation: {result.study.name}", ""]
    if spec.description:
        lines += [spec.description.strip(), ""]
    lines += ["| Variant | " + " | ".join(heads) + " |", "|:--|" + "--:|" * len(heads)]
    for v in result.variants:
        label = v.name + (f" ({', '.join(v.overrides)})" if v.overrides else "")
        lines.append(f"| {label} | " + " | ".join(_cell(result, v, m, "estimate") for m in result.metrics) + " |")
    lines += ["", f"Mean ± 95% CI over the {result.n_images} test images (Student t).", ""]
    lines += [f"Paired difference against **{result.baseline}** on the same images and masks: mean of the "
              f"per-image differences (variant − {result.baseline}), [95% bootstrap CI over images], two-sided "
              f"sign-flip permutation p-value.", ""]
    lines += [f"| Variant − {result.baseline} | " + " | ".join("Δ " + h for h in heads) + " |",
              "|:--|" + "--:|" * len(heads)]
    for v in result.variants:
        if v.name != result.baseline:
            lines.append(f"| {v.name} | " + " | ".join(_cell(result, v, m, "diff") for m in result.metrics) + " |")
    if result.seeds > 1:
        lines += ["", f"Across {result.seeds} seeds (mean ± 95% t CI of the per-seed means):", "",
                  "| Variant | " + " | ".join(heads) + " |", "|:--|" + "--:|" * len(heads)]
        for v in result.variants:
            lines.append(f"| {v.name} | " + " | ".join(_cell(result, v, m, "seeds") for m in result.metrics) + " |")
    lines += ["", "## Setup", "", describe_setup(result), ""]
    if result.judge_note:
        lines += [f"Judge columns: {result.judge_note}.", ""]
    lines += ["Runs (per-image scores in each run's eval CSV):", ""]
    for v in result.variants:
        for r in v.runs:
            lines.append(f"- {v.name} seed {r.seed}: `{r.run_dir}` (step {r.step}), `{r.per_image_csv}`")
    lines += ["", "Metrics: images quantised to uint8, per-image values; inpainting PSNR/SSIM on the composite "
              "(see `facegan eval --help`).", ""]
    return "\n".join(lines)


def results_csv(result: StudyResult) -> str:
    """results.csv: one row per (variant, metric), the table's metrics and the others."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["variant", "metric", "n_images", "n_seeds", "mean", "ci95_lo", "ci95_hi", "seed_mean", "seed_ci95_lo",
                "seed_ci95_hi", "baseline", "diff", "diff_ci95_lo", "diff_ci95_hi", "p_sign_flip", "scored_by"])
    keys = [m.key for m in result.metrics] + result.extra_metrics
    for v in result.variants:
        for k in keys:
            got = v.metrics.get(k)
            by = result.identity_net if k == "id_cos" else (result.judge or "") if k in JUDGE_KEYS else ""
            if got is None:
                w.writerow([v.name, k, 0, len(v.runs), *[""] * 10, result.judge_note or ""])
                continue
            e, s, d = got.estimate, got.seeds, got.diff
            diff = ["", "", "", ""] if d is None else [_num(d.diff), _num(d.lo), _num(d.hi), _num(d.p)]
            w.writerow([v.name, k, e.n, len(v.runs), _num(e.mean), _num(e.lo), _num(e.hi), _num(s.mean), _num(s.lo),
                        _num(s.hi), result.baseline, *diff, by])
    return buf.getvalue()


def _num(x: float) -> str:
    return f"{x:.6g}" if math.isfinite(x) else ""


#: results.png wraps its panels into rows of at most this many.
PANELS_PER_ROW = 5


def bar_chart(result: StudyResult) -> bytes:
    """results.png: one panel per metric, a bar per variant with its 95% CI, p vs baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [m for m in result.metrics if any(math.isfinite(v.metrics[m.key].estimate.mean)
                                               for v in result.variants if m.key in v.metrics)]
    n = max(1, len(panels))
    cols = n if n <= PANELS_PER_ROW else math.ceil(n / math.ceil(n / PANELS_PER_ROW))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 + 2.3 * cols, 0.4 + 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    names = [v.name for v in result.variants]
    for ax, m in zip(axes.flat, panels):
        scale = 100.0 if m.percent else 1.0
        est = [v.metrics[m.key].estimate for v in result.variants]
        means = [e.mean * scale for e in est]
        errs = [e.half * scale if math.isfinite(e.half) else 0.0 for e in est]
        colors = ["0.6" if n == result.baseline else f"C{i}" for i, n in enumerate(names)]
        ax.bar(range(len(names)), means, yerr=errs, capsize=4, color=colors)
        if m.percent:  # a rate: the whole 0-100% scale
            lo, hi, pad = 0.0, 100.0, 5.0
        else:  # zoomed in: the differences matter here, not the absolute level
            lo = min(a - b for a, b in zip(means, errs))
            hi = max(a + b for a, b in zip(means, errs))
            pad = max(0.35 * (hi - lo), 0.01 * abs(hi), 1e-3)
        ax.set_ylim(lo - (0 if m.percent else pad), hi + pad)
        for i, v in enumerate(result.variants):
            d = v.metrics[m.key].diff
            if d is not None and math.isfinite(d.p):
                ax.text(i, hi + pad * 0.3, fmt_p(d.p), ha="center", fontsize=7)
        ax.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
        ax.set_title(header(result, m) + (" (%)" if m.percent else ""), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{result.study.name}: mean ± 95% CI over {result.n_images} images", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def write_results(result: StudyResult) -> list[Path]:
    """Write results.md, results.csv and results.png into the study's folder (atomically)."""
    out = Path(result.out)
    files = {"results.md": results_markdown(result).encode(), "results.csv": results_csv(result).encode(),
             "results.png": bar_chart(result)}
    for name, data in files.items():
        atomic_write_bytes(out / name, data)
    return [out / name for name in files]
