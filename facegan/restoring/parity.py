"""Parity of an exported file with PyTorch, on real aligned faces.

After every export the file is run (:class:`facegan.restoring.exported_file.ExportedFile`) on
:func:`example_faces` and compared with the PyTorch :class:`~facegan.restoring.contract.Contract`
it was made from (:func:`max_difference`); an fp32 export differing by more than
:data:`MAX_FP32_DIFF` is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from facegan.restoring.exported_file import ExportedFile, as_list, as_tensors, feeds

#: Largest |exported - PyTorch| accepted for an fp32 export (outputs in 0..1).
MAX_FP32_DIFF = 1e-4
#: Faces the parity check runs on.
PARITY_FACES = 4


def example_faces(task, n: int = PARITY_FACES) -> tuple[np.ndarray, np.ndarray | None]:
    """Real aligned faces at the task's input size (the bundled sample photos, detected and
    aligned), and holes for a task that takes them (the 'eyes' mask of each face, uint8
    (N,S,S), 255 = hole)."""
    from PIL import Image

    from facegan.data.masks import eval_masks
    from facegan.data.prepare import SAMPLE_DIR
    from facegan.faces.align import align_face
    from facegan.faces.detect import find_faces
    from facegan.faces.geometry import template_points
    from facegan.faces.images import load_photo

    photos = sorted((SAMPLE_DIR / "deepface").glob("*.jpg"))[: 3 * n]
    faces = []
    for path in photos:
        photo = load_photo(path)
        found = find_faces(photo)
        if found:
            faces.append(align_face(np.asarray(photo), found[0].landmarks, task.size)[0])
        if len(faces) == n:
            break
    full = np.stack(faces)
    s = task.input_size
    inputs = np.stack([np.asarray(Image.fromarray(f).resize((s, s), Image.Resampling.LANCZOS)) for f in full])
    holes = None
    if task.takes_hole:
        lms = torch.tensor(template_points(task.size), dtype=torch.float32)[None].expand(len(full), -1, -1)
        holes = (eval_masks("eyes", list(range(len(full))), task.size, landmarks=lms)[:, 0].numpy() * 255).astype(np.uint8)
    return inputs, holes


def max_difference(reference: nn.Module, path: Path, fmt: str, faces: np.ndarray, holes: np.ndarray | None) -> float:
    """Largest |file - reference| over every output, for ``faces`` (and ``holes``) fed to both
    as the file takes them (:func:`facegan.restoring.exported_file.feeds`)."""
    exported = ExportedFile(path, fmt)
    with torch.no_grad():
        want = as_list(reference(*as_tensors(feeds(faces, holes, exported.float_input))))
    got = exported.run(faces, holes)
    return max(float(np.abs(w.numpy() - g).max()) for w, g in zip(want, got))
