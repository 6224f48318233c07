"""The before/after pictures of README's "Restore your photos" (bundled sample photos only).

    python scripts/readme_pictures.py [--out docs/images]

- ``restore-sr.png``: a bundled sample photo reduced until its face is ``--face-px`` wide (32: the
  size ``sr4-128`` is made for; the "small photo" a user has), then
  bicubic x4, `facegan restore --task sr --scale 4` (the defaults), and the original; the face
  region of the output, every pixel shown as a 3x3 block (the photo is small).
- ``restore-inpaint.png``: a bundled sample photo with the eyes hole, then
  `facegan restore --mask eyes` (the defaults) and the original; the face region at full
  resolution, enlarged 2x (nearest) because the sample photos are small.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SAMPLE = Path(__file__).resolve().parents[1] / "facegan" / "assets" / "sample_faces" / "deepface"


def _panel(images: list[tuple[str, Image.Image]], header: int = 18) -> Image.Image:
    w = sum(im.width for _, im in images) + 2 * (len(images) + 1)
    h = max(im.height for _, im in images) + header + 4
    canvas = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(canvas)
    x = 2
    for title, im in images:
        draw.text((x + 2, 3), title, fill="black")
        canvas.paste(im, (x, header + 2))
        x += im.width + 2
    return canvas


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="docs/images")
    ap.add_argument("--photo", default="img11.jpg")
    ap.add_argument("--face-px", type=float, default=31)
    args = ap.parse_args()
    from typer.testing import CliRunner

    from facegan.cli import app

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    original = Image.open(SAMPLE / args.photo).convert("RGB")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        from facegan.faces.detect import find_faces
        from facegan.faces.geometry import affine_scale, similarity_matrix, template_points

        face = find_faces(original)[0]
        fit = similarity_matrix(np.asarray(face.landmarks, np.float64), template_points(128))
        k = args.face_px / (128 / affine_scale(fit))
        small = original.resize((round(original.width * k), round(original.height * k)), Image.Resampling.BICUBIC)
        small.save(tmp / "small.png")
        res = CliRunner().invoke(app, ["restore", str(tmp / "small.png"), "--task", "sr", "--scale", "4",
                                       "--out", str(tmp / "sr"), "--device", "cpu"])
        assert res.exit_code == 0, res.output
        print(res.output)
        restored = Image.open(tmp / "sr" / "small_restored.png").convert("RGB")
        bicubic = small.resize(restored.size, Image.Resampling.BICUBIC)
        ref = original.resize(restored.size, Image.Resampling.BICUBIC) if original.size != restored.size else original
        box = (restored.width // 6, restored.height // 8, restored.width * 5 // 6, restored.height * 5 // 8)
        nearest = small.resize(restored.size, Image.Resampling.NEAREST)
        zoom = lambda im: im.crop(box).resize(((box[2] - box[0]) * 3, (box[3] - box[1]) * 3), Image.Resampling.NEAREST)
        _panel([(f"input {small.width}x{small.height}", zoom(nearest)), ("bicubic x4", zoom(bicubic)),
                ("facegan restore --scale 4", zoom(restored)), ("original", zoom(ref))]).save(out / "restore-sr.png")

        res = CliRunner().invoke(app, ["restore", str(SAMPLE / args.photo), "--mask", "eyes", "--out", str(tmp / "in"),
                                       "--device", "cpu", "--ext", "png", "--save-faces"])
        assert res.exit_code == 0, res.output
        print(res.output)
        filled = Image.open(tmp / "in" / f"{Path(args.photo).stem}_restored.png").convert("RGB")
        changed = np.abs(np.asarray(filled).astype(int) - np.asarray(original)).max(-1) > 0
        occluded = np.asarray(original).copy()
        occluded[changed] = 128
        ys, xs = np.nonzero(changed)
        cy, cx = int(ys.mean()), int(xs.mean())
        half = 60
        box = (max(cx - half * 3 // 2, 0), max(cy - half, 0), cx + half * 3 // 2, cy + half)
        big = lambda im: im.crop(box).resize(((box[2] - box[0]) * 2, (box[3] - box[1]) * 2), Image.Resampling.NEAREST)
        _panel([("the hole (eyes)", big(Image.fromarray(occluded))), ("facegan restore --mask eyes", big(filled)),
                ("original", big(original))]).save(out / "restore-inpaint.png")
    print(f"wrote {out / 'restore-sr.png'} and {out / 'restore-inpaint.png'}")


if __name__ == "__main__":
    sys.exit(main())
