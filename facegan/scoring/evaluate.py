"""`facegan eval`: score a checkpoint's EMA generator on fixed inputs (docs/design.md, "Metrics").

:func:`evaluate` puts the pieces together:

1. :mod:`facegan.scoring.inputs`: the checkpoint, its task and the faces of the split, with the
   task's deterministic inputs (an inpainting hole depends only on mask type, image index and
   seed; super-resolution uses plain bicubic reductions), so two runs are scored on the same
   inputs and can be compared image by image;
2. :mod:`facegan.scoring.scorer`: the model and the task's no-model references (inpainting: the
   hole left grey and scikit-image's biharmonic fill; super-resolution: bicubic upscaling) scored
   per image by the same code, each row's means with 95% Student-t intervals, and the model
   paired with each reference (:class:`facegan.scoring.evaluation.Evaluation`);
3. :mod:`facegan.scoring.summary`: the JSON summary;
4. :mod:`facegan.scoring.outputs`: a per-image CSV, the JSON and a grid of the first faces, in
   ``<run>/eval/``;
5. :mod:`facegan.scoring.console`: the tables.

It returns the :class:`Evaluation`, whose per-image values ``ablate`` compares image by image.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from facegan.core.atomic import check_writable
from facegan.scoring.console import print_evaluation
from facegan.scoring.evaluation import Evaluation
from facegan.scoring.inputs import eval_inputs
from facegan.scoring.outputs import EvalPaths, check_outputs, eval_dir_for, write_outputs
from facegan.scoring.scorer import score
from facegan.scoring.summary import summary_of
from facegan.tasks.base import PeerModels


def evaluate(
    checkpoint: str | Path,
    data: str | Path | None = None,
    split: str | None = None,
    json_out: str | Path | None = None,
    identity_net: str | None = None,
    device: str = "auto",
    max_images: int | None = None,
    out_dir: str | Path | None = None,
    judge: str | None = None,
    console=None,
    references: bool = True,
    mirror: bool | None = None,
    reference_cache: bool = True,
    peers: PeerModels | None = None,
    fidelity: float | None = None,
    fid_weights: str | Path | None = None,
    **options,
) -> Evaluation:
    """Score a checkpoint and write its CSV, JSON and grid; returns the :class:`Evaluation`.

    ``options`` are the task's options (``mask=`` for inpainting, ``scale=`` for super-
    resolution, which refuses a checkpoint of another scale); an option of another task is
    refused. ``identity_net`` overrides the scoring identity network
    (:mod:`facegan.scoring.identity_rule`); ``judge`` names an independent judge.
    ``references=False`` skips the no-model rows (``ablate`` does not print them).
    ``mirror`` True/False overrides the recipe's ``model.mirror_ensemble`` (mirror self-ensemble).
    ``reference_cache`` reuses the reference rows scored before on the same batches by the same
    code and networks (:mod:`facegan.scoring.reference_cache`); False neither reads nor writes them.
    ``peers`` names the model files of opt-in peers to score beside the model (Real-ESRGAN).
    ``fidelity`` blends a GAN model with its PSNR model (:mod:`facegan.checkpoints.fidelity`; None:
    a bundled GAN model's default); the output files' names then carry it.
    ``fid_weights`` is pytorch-fid's Inception weights file (:mod:`facegan.models.fid`): every row
    then also gets ``fid`` over the split; the file must exist (checked before any work).
    """
    from facegan.models.fid import fid_weights_path

    fid_file = fid_weights_path(fid_weights, env=False)
    out_path = Path(out_dir) if out_dir is not None else None
    json_path = Path(json_out) if json_out is not None else None
    check_outputs(out_path, json_path)
    inputs = eval_inputs(checkpoint, data, split, max_images, fidelity=fidelity, **options)
    _check_peers(peers, inputs.task)
    folder = out_path if out_path is not None else eval_dir_for(Path(inputs.ckpt.path), inputs.ckpt.bundled)
    at = f"_fidelity{inputs.ckpt.fidelity:g}" if inputs.ckpt.fidelity is not None else ""
    paths = EvalPaths(folder, f"{inputs.split}_{inputs.settings.label}{at}")
    check_writable(paths.json, "eval output")  # the default folder (<run>/eval) too, before the work
    scored = score(inputs, identity_net=identity_net, device=device, judge=judge, references=references,
                   mirror=mirror, reference_cache=reference_cache, console=console, peers=peers,
                   fid_weights=fid_file)
    located = replace(scored, per_image_csv=paths.csv)
    evaluation = replace(located, summary=summary_of(located))
    write_outputs(evaluation, paths, json_path)
    if console is not None:
        print_evaluation(console, evaluation, paths)
    return evaluation


def _check_peers(peers: PeerModels | None, task) -> None:
    """Refuse an opt-in peer the task does not score, or whose files are missing, before any work."""
    from facegan.core.errors import FaceganError

    for key in (peers.files() if peers is not None else {}):
        if key not in {r.key for r in task.references}:
            raise FaceganError(f"--{key}: {task.noun} has no {key} peer to score")
