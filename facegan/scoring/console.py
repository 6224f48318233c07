"""What ``facegan eval`` prints: a progress bar while scoring, then the tables.

The first table has one row per scored row (the model, then each no-model reference), each
cell ``mean ± 95% CI``; the second pairs the model with each reference on the same images.
Then where the reference rows came from and where the files went.
"""

from __future__ import annotations

from facegan.metrics.stats import Estimate
from facegan.scoring.evaluation import Evaluation
from facegan.scoring.outputs import EvalPaths

#: How the paired table's cells read.
PAIRED_CAPTION = ("Mean of the per-image differences [95% bootstrap CI over images]; an interval that "
                  "excludes 0 is a difference beyond noise (two-sided sign-flip p in the JSON's \"paired\").")


def progress(console, total: int, label: str):
    """A transient rich progress bar over ``total`` images, or None without a console."""
    if console is None:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                    transient=True)


def print_evaluation(console, evaluation: Evaluation, paths: EvalPaths) -> None:
    """The metrics table, the paired table (with references), the cache line and the files."""
    from facegan.core.report import metrics_table, paired_table

    setup = evaluation.setup
    console.print(metrics_table(f"facegan eval ({setup.task_label})", _rows(evaluation), setup.columns,
                                caption=_caption(evaluation)))
    if setup.references:
        console.print(paired_table("model − reference, paired over the same images",
                                   [(f"model − {r.key}", evaluation.paired[r.key]) for r in setup.references],
                                   setup.columns, caption=PAIRED_CAPTION))
    if evaluation.cache is not None:
        _print_cache(console, evaluation)
    for ref in setup.skipped_references:
        console.print(f"[yellow]note:[/] peer row {ref.name} skipped: it needs {ref.requires} "
                      f"(pip install 'facegan[{ref.extra}]')")
    if setup.n_images < 2:
        console.print(f"[yellow]note:[/] {setup.n_images} image: no confidence interval and no paired test "
                      "(they need at least 2 images; null in the JSON)")
    console.print(f"per-image CSV: {paths.csv}\ngrid: {paths.grid}")


def _rows(evaluation: Evaluation) -> list[tuple[str, dict[str, Estimate]]]:
    """(label, estimates): the model, then each reference."""
    setup = evaluation.setup
    label = f"{setup.run_name} @ step {setup.step}" + (" + mirror" if setup.mirror else "")
    return [(label, evaluation.estimates),
            *((r.name, evaluation.reference_estimates[r.key]) for r in setup.references)]


def _caption(evaluation: Evaluation) -> str:
    """What was scored, how the cells read and which networks scored identity."""
    setup = evaluation.setup
    cap = (f"{setup.n_images} images of {setup.dataset}/{setup.split}, {setup.settings.caption}; mean ± 95% CI "
           f"over images (Student t); identity by {setup.identity_net}. Conventions: `facegan eval --help`.")
    if setup.mirror:
        cap += " + mirror: the mean of the generator's outputs on each face and its mirror image."
    if setup.judge is not None:
        cap += f" Judge: {setup.judge} (never used in training)."
    if setup.fid_weights is not None:
        cap += (" FID: FID's Inception v3, over the split (95% bootstrap CI); unreliable under ~1,000 images"
                + (f", and this is {setup.n_images}." if setup.n_images < 1000 else "."))
    return cap


def _print_cache(console, evaluation: Evaluation) -> None:
    """How many batches' reference rows were reused, and a cache that could not be written."""
    from rich.markup import escape

    cache = evaluation.cache
    console.print(f"reference rows: {cache.reused} of {cache.reused + cache.scored} batches reused from "
                  f"{escape(str(cache.folder))} (--rescore-references to score them again)")
    if cache.write_error:
        console.print(f"[yellow]reference cache not written:[/] {escape(cache.write_error)}")
