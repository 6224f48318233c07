"""`facegan restore` for an already-aligned face photo.

The photo (any size) is resized to the model's resolution with antialiasing, occluded with
the requested mask (named masks are placed on the template landmarks, since the face is
aligned), filled by the generator (EMA weights), and the filled pixels are resized back and
composited into the *original-resolution* photo inside the hole only: pixels outside the hole
are the input's, bit for bit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facegan.errors import FaceganError


def find_checkpoint(checkpoint: str | Path | None, task: str, runs_dir: Path, console=None) -> dict:
    """Load ``checkpoint`` (file or run folder), or the newest run of ``task`` in ``runs_dir``."""
    from facegan.engines.checkpoint import load_checkpoint, newest_run_checkpoint

    if checkpoint is None:
        path = newest_run_checkpoint(runs_dir, task)
        if console is not None:
            console.print(f"using the newest {task} run: {path.parent.parent} (pass --checkpoint to choose)")
        checkpoint = path
    return load_checkpoint(checkpoint, task=task)


def restore_aligned(
    image_path: str | Path,
    mask: str = "eyes",
    checkpoint: str | Path | None = None,
    out_dir: str | Path = "restored",
    device: str = "auto",
    runs_dir: str | Path = "runs",
    seed: int = 0,
    console=None,
) -> tuple[Path, Path]:
    """Inpaint an aligned face photo; returns (restored PNG, side-by-side PNG)."""
    from facegan.data import mask_files
    from facegan.data import masks as masklib
    from facegan.data.loader import to_model_range
    from facegan.engines.checkpoint import build_eval_generator
    from facegan.engines.gan import pick_device
    from facegan.faces import load_image
    from facegan.geometry import template_points
    from facegan.metrics import to_uint8
    from facegan.report import grid_image, save_image

    image_path = Path(image_path)
    photo = np.asarray(load_image(image_path))
    spec = mask_files.parse_mask_spec(mask)
    ckpt = find_checkpoint(checkpoint, "inpaint", Path(runs_dir), console)
    size = int(ckpt["size"])
    dev = pick_device(device)
    h, w = photo.shape[:2]

    out_dir = Path(out_dir)
    restored_path = out_dir / f"{image_path.stem}_restored.png"
    compare_path = out_dir / f"{image_path.stem}_compare.png"
    for p in (restored_path, compare_path):
        if p.resolve() == image_path.resolve():
            raise FaceganError(f"refusing to overwrite the input {image_path}; choose another --out")

    # Mask at the model's resolution and at the photo's.
    if isinstance(spec, str):
        tpl = np.asarray(ckpt.get("template", {}).get("points") or [], dtype=np.float64)
        lms = torch.tensor(template_points(size, tpl if tpl.size else None), dtype=torch.float32)[None]
        small = masklib.eval_masks(spec, [0], size, landmarks=lms, seed=seed)  # canonical shape; box/freeform seeded
        full = torch.nn.functional.interpolate(small, size=(h, w), mode="nearest")
    else:
        full = mask_files.load_mask_for_photo(spec, w, h)
        small = torch.nn.functional.interpolate(full, size=(size, size), mode="area").gt(0.5).float()
    if small.sum() == 0:
        raise FaceganError(f"the mask '{mask}' leaves no hole at {size}px")

    face = Image.fromarray(photo).resize((size, size), Image.LANCZOS)
    x = to_model_range(torch.from_numpy(np.asarray(face).copy())[None].to(dev))
    gen = build_eval_generator(ckpt, dev)
    small = small.to(dev)
    with torch.no_grad():
        out = gen(x * (1 - small), small).float().clamp(-1, 1)

    filled = Image.fromarray(to_uint8(out)[0]).resize((w, h), Image.BICUBIC)
    hole = full[0, 0].numpy() > 0.5
    restored = photo.copy()
    restored[hole] = np.asarray(filled)[hole]
    occluded = photo.copy()
    occluded[hole] = 128

    out_dir.mkdir(parents=True, exist_ok=True)
    save_image(Image.fromarray(restored), restored_path)
    save_image(grid_image([("input", photo[None]), ("occluded", occluded[None]), ("restored", restored[None])]), compare_path)
    return restored_path, compare_path
