"""Acceptance measurements of `facegan restore` on held-out faces (not a timed test).

    python scripts/restore_acceptance.py sr --data data/celeba-128 [--faces 100] [--scale 4]
    python scripts/restore_acceptance.py inpaint PHOTO ... [--mask eyes --mask mouth --mask centre]

`sr`: for faces of 12, 16, 24, 32, 48, 64, 128 and 256 px in the input, the face is reduced from
an original of ``scale`` times that side (PIL bicubic, antialiased), restored by the photo
pipeline as `facegan restore --aligned --task sr --scale S` runs it (the bundled face models,
each face to the model that fits it, the SPAN background), and scored against the original:
PSNR-Y (BT.601 Y, ``scale`` px border cropped, as `facegan eval`). Beside it: bicubic x``scale``
of the same input, and the generic SPAN (the best peer). Originals: the test split's 128 px
aligned faces where ``scale`` x side <= 128 (real detail), else the same faces enlarged (LANCZOS)
to ``scale`` x side, which carry no real detail past 128 px: there the rows compare upsamplers
on a smooth original, a weaker test, and say so.

`inpaint`: each photo restored with each mask by the photo pipeline, and, inside the hole (the
changed pixels eroded by 4 px), the restored photo's gradient energy (grey, 3x3 Sobel) over the
original's; the colour step across the hole's border (mean |RGB difference| between the pixels
just inside and just outside the border) over the original's across the same border; and
whether the photo stays grey when it is grey (largest chroma); and, with `--judge`, whether dlib's
face descriptor still verifies the person (distance < 0.6) in the restored photo's face, aligned
at 256 px from the photo, against the original photo's face aligned the same way, beside the same
verdict on the model's 128 px result (its composite) against the original aligned at 128 px: the
photo path must not lose identity that the 128 px result kept.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

SIZES = (12, 16, 24, 32, 48, 64, 128, 256)


def psnr_y(a: np.ndarray, b: np.ndarray, crop: int) -> float:
    from facegan.metrics.quality import psnr

    return float(psnr(a, b, crop_border=crop, y_channel=True))


def resize(img: np.ndarray, side: int) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize((side, side), Image.Resampling.BICUBIC))


def sr(args) -> None:
    from facegan.data.packed import PackedDataset
    from facegan.models.span import span_upscale_uint8
    from facegan.restoring.backends import open_face_models
    from facegan.restoring.photo import PhotoRestorer
    from facegan.restoring.planning import PhotoItem, RestoreOptions

    faces = PackedDataset(Path(args.data)).split("test").images[: args.faces]
    models = open_face_models("sr", device="cpu")
    engine = PhotoRestorer(models, RestoreOptions(task="sr", aligned=True, scale=args.scale))
    tmp = Path(args.tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    print("| face px | model | n | facegan PSNR-Y | bicubic | SPAN (peer) | facegan − bicubic | original |")
    print("|---|---|---|---|---|---|---|---|")
    for side in args.sizes:
        out_side = side * args.scale
        scores = {"facegan": [], "bicubic": [], "span": []}
        chosen = set()
        for i, face in enumerate(faces):
            original = face if out_side == 128 else np.asarray(
                Image.fromarray(face).resize((out_side, out_side), Image.Resampling.BICUBIC if out_side < 128
                                             else Image.Resampling.LANCZOS))
            small = resize(original, side)
            path = tmp / f"face_{side}_{i}.png"
            Image.fromarray(small).save(path)
            job = engine.prepare(PhotoItem(path, None))
            engine.run(job.faces)
            restored, _ = engine.finish(job)
            chosen.add(job.choices[0].restorer.ckpt.name if job.choices[0].restorer else "background")
            span = span_upscale_uint8(small, args.scale)
            crop = args.scale
            scores["facegan"].append(psnr_y(restored, original, crop))
            scores["bicubic"].append(psnr_y(resize(small, out_side), original, crop))
            scores["span"].append(psnr_y(span, original, crop))
            path.unlink()
        m = {k: float(np.mean(v)) for k, v in scores.items()}
        d = np.array(scores["facegan"]) - np.array(scores["bicubic"])
        half = 1.96 * d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
        kind = "real" if out_side <= 128 else "enlarged"
        print(f"| {side} | {', '.join(sorted(chosen))} | {len(faces)} | {m['facegan']:.2f} | {m['bicubic']:.2f} | "
              f"{m['span']:.2f} | {d.mean():+.2f} [{d.mean() - half:+.2f}, {d.mean() + half:+.2f}] | {kind} |", flush=True)


def aligned_from(photo: np.ndarray, m: np.ndarray, model_side: int, side: int) -> np.ndarray:
    """The face at ``side`` px on facegan's template: ``m`` maps the photo to the model's aligned
    frame of ``model_side`` px. Warped at 4x ``side`` (bilinear) and reduced with antialiasing, so
    a large face is not aliased on its way down."""
    import cv2

    from facegan.faces.geometry import compose, scale_matrix

    big = 4 * side
    warp = compose(scale_matrix(big / model_side), m)
    face = cv2.warpAffine(photo, warp.astype(np.float64), (big, big), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)
    return np.asarray(Image.fromarray(face).resize((side, side), Image.Resampling.LANCZOS))


def judge_distances(judge, faces: list[np.ndarray], truths: list[np.ndarray]) -> np.ndarray:
    """dlib descriptor distances of uint8 aligned faces to their truths."""
    import torch

    def batch(imgs):
        return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 127.5 - 1.0

    return np.array([np.linalg.norm(judge.descriptors(batch([f])) - judge.descriptors(batch([t])))
                     for f, t in zip(faces, truths)])


def inpaint(args) -> None:
    from scipy import ndimage

    from facegan.restoring.backends import open_face_models
    from facegan.metrics.realism import gradient_energy
    from facegan.restoring.photo import PhotoRestorer
    from facegan.restoring.planning import PhotoItem, RestoreOptions
    from facegan.tasks.base import TaskOptions

    models = open_face_models("inpaint", device="cpu", options=TaskOptions(mask=args.mask[0]))
    judge = None
    if args.judge:
        from facegan.scoring.judge import load_judge

        judge = load_judge("dlib")
    print("| photo | size | mask | detail (restored / original, in the hole) | colour step (restored / original) | "
          "max chroma in / out |" + (" dlib distance: photo / 128 px result |" if judge else ""))
    print("|---|---|---|---|---|---|" + ("---|" if judge else ""))
    for mask in args.mask:
        ratios, steps, d_photo, d_128 = [], [], [], []
        for photo_path in args.photos:
            engine = PhotoRestorer(models, RestoreOptions(task="inpaint", mask=mask, seam=args.seam))
            job = engine.prepare(PhotoItem(Path(photo_path), mask))
            engine.run(job.faces)
            restored, _ = engine.finish(job)
            original = job.photo
            changed = np.abs(restored.astype(int) - original).max(-1) > 0
            inner = ndimage.binary_erosion(changed, iterations=4)
            g_r, g_o = gradient_energy(np.stack([restored, original]))
            ratio = float(g_r[inner].mean() / max(g_o[inner].mean(), 1e-9)) if inner.any() else float("nan")
            ring_in = changed & ~ndimage.binary_erosion(changed, iterations=2)
            ring_out = ndimage.binary_dilation(changed, iterations=2) & ~changed
            step_r = float(np.abs(restored[ring_in].mean(0) - restored[ring_out].mean(0)).mean())
            step_o = float(np.abs(original[ring_in].astype(float).mean(0) - original[ring_out].mean(0)).mean())
            chroma = lambda im: int((im.max(-1).astype(int) - im.min(-1)).max())
            ratios.append(ratio)
            steps.append(step_r / max(step_o, 1e-6))
            h, w = original.shape[:2]
            judged = ""
            if judge is not None:
                face = job.faces[0]
                side = face.output.shape[0]
                ours = judge_distances(judge, [aligned_from(restored, face.m, side, 256), face.output],
                                       [aligned_from(original, face.m, side, 256), aligned_from(original, face.m, side, side)])
                d_photo.append(float(ours[0]))
                d_128.append(float(ours[1]))
                judged = f" {ours[0]:.3f} / {ours[1]:.3f} |"
            print(f"| {Path(photo_path).name} | {w}×{h} | {mask} | {ratio:.3f} | {step_r:.2f} / {step_o:.2f} = "
                  f"{step_r / max(step_o, 1e-6):.2f} | {chroma(original)} / {chroma(restored)} |{judged}", flush=True)
        judged = ""
        if judge is not None:
            v_photo, v_128 = np.mean(np.array(d_photo) < 0.6), np.mean(np.array(d_128) < 0.6)
            judged = f" verified {v_photo:.0%} / {v_128:.0%} |"
        print(f"| **median** | | {mask} | {np.nanmedian(ratios):.3f} | {np.median(steps):.2f} | |{judged}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("sr")
    a.add_argument("--data", required=True)
    a.add_argument("--faces", type=int, default=100)
    a.add_argument("--scale", type=int, default=4)
    a.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    a.add_argument("--tmp", default="/tmp/facegan_acceptance")
    b = sub.add_parser("inpaint")
    b.add_argument("photos", nargs="+")
    b.add_argument("--mask", action="append", default=[])
    b.add_argument("--seam", default="poisson")
    b.add_argument("--judge", action="store_true", help="also the dlib verdict on the photo's face vs the 128 px result")
    args = ap.parse_args()
    if args.cmd == "inpaint" and not args.mask:
        args.mask = ["eyes", "mouth", "center"]
    {"sr": sr, "inpaint": inpaint}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
