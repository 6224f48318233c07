"""`facegan ablate`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from facegan.commands.common import console as _console
from facegan.commands.common import reflowed, user_errors

DEFAULT_SPEC = Path("recipes/ablate_inpaint.yaml")


@user_errors
@reflowed
def ablate(
    spec: Path = typer.Argument(DEFAULT_SPEC, help="Ablation spec: a base recipe and its variants (recipes/ablate_*.yaml)."),
    seeds: Optional[int] = typer.Option(None, "--seeds", min=1, help="Training seeds per variant \\[default: the spec's]."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Study folder \\[default: runs/ablate_<spec stem>, +_quick with --quick]."),
    quick: bool = typer.Option(False, "--quick", help="Apply the spec's quick overrides: few steps, small model, sample data (CPU, minutes)."),
    overrides: Optional[List[str]] = typer.Option(None, "--set", "-s", help="Recipe override for every run, KEY=VALUE (repeatable), applied after each variant's own and the quick ones."),
    judge_net: Optional[str] = typer.Option(None, "--judge-net", help="Judge: dlib, or an identity network no variant trains with \\[default: the spec's eval.judge, dlib]."),
    no_judge: bool = typer.Option(False, "--no-judge", help="Score identity by the training network only."),
    max_images: Optional[int] = typer.Option(None, "--max-images", min=1, help="Score only the first N test images."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda (training and evaluation)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate every run's recipe and list the runs; train nothing."),
) -> None:
    """Train every variant x seed of an ablation spec, score all runs on the same test images and masks, and compare each variant with the baseline image by image.

    Finished runs are not trained again and unfinished ones resume, so an interrupted study picks up where it stopped. It runs one process (one GPU): under torchrun it refuses; train a variant with `torchrun ... -m facegan train` into the run folder --dry-run names, and ablate then scores it without training it again.

    One table: per variant PSNR, SSIM (PSNR-Y/SSIM-Y for super-resolution), identity cosine by the training network and by an independent judge, and the judge's verification rate, each as mean ± 95% CI over images; under each variant its paired difference with the baseline (95% bootstrap CI over images, two-sided sign-flip permutation p). Writes results.md, results.csv and results.png into the study folder.

    Examples:
      facegan ablate --quick
      facegan ablate recipes/ablate_sr.yaml --seeds 3 --out runs/ablate_sr
    """
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from facegan.core.errors import FaceganError

        raise FaceganError("facegan ablate trains its runs one after another in one process and is not started by "
                           "torchrun; to train a variant on several GPUs, run `torchrun ... -m facegan train` with "
                           "its recipe (facegan ablate --dry-run lists them), then re-run facegan ablate to score them")
    if spec == DEFAULT_SPEC and not spec.is_file():
        from facegan.core.errors import FaceganError

        raise FaceganError(f"{DEFAULT_SPEC} not found: run from the facegan repository, or pass a spec file")
    if dry_run:
        from facegan.study.run import planned_runs

        con = _console()
        for variant, seed, run_dir, sets in planned_runs(spec, out=out, seeds=seeds, quick=quick, sets=overrides or []):
            con.print(f"{variant} seed {seed} -> {run_dir}\n  --set " + " --set ".join(sets))
        return
    from facegan.study.run import run_study

    run_study(spec, out=out, seeds=seeds, quick=quick, sets=overrides or [], judge=judge_net, no_judge=no_judge,
              device=device, max_images=max_images, console=_console())
