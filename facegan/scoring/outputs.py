"""The files of ``facegan eval``: a per-image CSV, the JSON summary and a grid of the first faces.

They go into one folder (``<run>/eval`` unless ``--out``), named by split and setting
(``test_eyes.csv``, ``test_eyes.json``, ``test_eyes.png``); ``--json`` writes the summary to a
second place too. Every file is written atomically.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from facegan.core.errors import FaceganError
from facegan.scoring.evaluation import Evaluation


@dataclass(frozen=True)
class EvalPaths:
    """Where one evaluation's files go: ``<folder>/<stem>.csv``, ``.json`` and ``.png``."""

    folder: Path
    stem: str
    """``<split>_<setting label>``, e.g. ``test_eyes``."""

    @property
    def csv(self) -> Path:
        return self.folder / f"{self.stem}.csv"

    @property
    def json(self) -> Path:
        return self.folder / f"{self.stem}.json"

    @property
    def grid(self) -> Path:
        return self.folder / f"{self.stem}.png"


def eval_dir_for(ckpt_path: Path, bundled: str | None = None) -> Path:
    """<run>/eval for a run's checkpoint, runs/eval-<name> for a bundled model, else
    <checkpoint stem>_eval beside the file."""
    if bundled:
        return Path("runs") / f"eval-{bundled}"
    if ckpt_path.parent.name == "checkpoints":
        return ckpt_path.parent.parent / "eval"
    return ckpt_path.parent / f"{ckpt_path.stem}_eval"


def check_outputs(out_dir: Path | None, json_out: Path | None) -> None:
    """Refuse the output options that cannot be written, before anything is loaded."""
    from facegan.core.atomic import check_writable

    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise FaceganError(f"--out {out_dir} is a file; pass a folder for the CSV, JSON and grid")
    if json_out is not None:
        check_writable(json_out, "--json")  # a folder, or no permission


def write_outputs(evaluation: Evaluation, paths: EvalPaths, also_json: Path | None = None) -> None:
    """Write the per-image CSV, the grid picture and the JSON summary (also to ``also_json``)."""
    write_csv(paths.csv, evaluation)
    write_grid(paths.grid, evaluation)
    write_json(paths.json, evaluation.summary, also_json)


def write_csv(path: Path, evaluation: Evaluation) -> None:
    """One row per image: the model's metrics, then each reference's as ``<reference>_<metric>``
    (e.g. ``bicubic_psnr_y``), so any paired comparison can be redone from the file."""
    from facegan.core.atomic import atomic_write_bytes

    columns = list(evaluation.per_image.items())
    columns += [(f"{ref}_{k}", v) for ref, ref_values in evaluation.references.items() for k, v in ref_values.items()]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["index", "file", "identity", *(name for name, _ in columns)])
    for i, (file, identity) in enumerate(zip(evaluation.files, evaluation.identities)):
        writer.writerow([i, file, identity, *(repr(float(v[i])) for _, v in columns)])
    atomic_write_bytes(path, buf.getvalue().encode())


def write_grid(path: Path, evaluation: Evaluation) -> None:
    """The first faces' panels (inputs, outputs, ground truth) side by side."""
    from facegan.core.report import grid_image, save_image

    save_image(grid_image(evaluation.grid), path)


def _json_safe(value):
    """``value`` as strict JSON can hold it: NaN and infinities (no interval from one image, a
    metric undefined on an image) become null, numpy numbers plain numbers."""
    import math

    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (bool, str, int)) or value is None:
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return number if math.isfinite(number) else None


def write_json(path: Path, summary: dict, also: Path | None = None) -> None:
    """The summary as indented JSON at ``path`` (and ``also``)."""
    from facegan.core.atomic import atomic_write_bytes

    text = json.dumps(_json_safe(summary), indent=2, allow_nan=False).encode()
    atomic_write_bytes(path, text)
    if also is not None:
        atomic_write_bytes(also, text)
