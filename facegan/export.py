"""`facegan export`: a trained restorer as one ONNX or TorchScript file, with its input contract.

The exported graph is the EMA generator wrapped in :class:`Contract`, which does what
`facegan restore` does around the generator, through the task's own methods
(:meth:`~facegan.engines.task.Task.inference_batch` and :meth:`~facegan.engines.task.Task.run`):

* input ``face``: aligned faces, uint8 ``(N, s, s, 3)`` RGB in 0..255 (or, exported with
  ``float_input``, float32 in 0..1), s = the model's input size (``size / scale`` for
  super-resolution);
* input ``mask`` (inpainting only): ``(N, S, S)``, white = hole (uint8: > 127; float: >= 0.5);
* output ``restored``: float32 ``(N, S, S, 3)`` RGB in 0..1 (inpainting: the composite, the
  input kept outside the hole); output ``raw`` (inpainting only): the generator's whole output.

The batch axis is dynamic. The ONNX file's metadata holds the task, scale, size, template,
the recipe, the facegan version and this contract in words. After every export the file is run
(onnxruntime, or the saved TorchScript module) on real aligned faces and compared with the
PyTorch generator: the largest absolute difference is printed, and an fp32 export differing by
more than :data:`MAX_FP32_DIFF` is refused (deleted).
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from facegan.errors import FaceganError

#: Largest |exported - PyTorch| accepted for an fp32 export (outputs in 0..1).
MAX_FP32_DIFF = 1e-4
#: Faces the parity check runs on.
PARITY_FACES = 4
FORMATS = ("onnx", "torchscript")


class Contract(nn.Module):
    """The generator with the task's input and output conventions built in (see the module doc)."""

    def __init__(self, task, generator: nn.Module, float_input: bool = False, half: bool = False) -> None:
        super().__init__()
        self.task, self.generator, self.float_input, self.half = task, generator, float_input, half

    def forward(self, face: torch.Tensor, mask: torch.Tensor | None = None):
        x = face.permute(0, 3, 1, 2).float()
        x = x * 2.0 - 1.0 if self.float_input else x / 127.5 - 1.0
        hole = None
        if self.task.takes_hole:
            threshold = 0.5 if self.float_input else 127.5
            hole = (mask.float() > threshold).float()[:, None]
        if self.half:
            x = x.half()
            hole = hole.half() if hole is not None else None
        raw, result = self.task.run(self.generator, self.task.inference_batch(x, hole))
        restored = _to01(result)
        return (restored, _to01(raw)) if self.task.takes_hole else restored


def _to01(images: torch.Tensor) -> torch.Tensor:
    return ((images.float().clamp(-1.0, 1.0) + 1.0) * 0.5).permute(0, 2, 3, 1)


@dataclass
class ExportResult:
    path: Path
    format: str
    seconds: float
    bytes: int
    max_diff: float
    fp16: bool


def input_names(task) -> list[str]:
    return ["face", "mask"] if task.takes_hole else ["face"]


def output_names(task) -> list[str]:
    return ["restored", "raw"] if task.takes_hole else ["restored"]


def metadata(ckpt: dict, task, float_input: bool, fp16: bool) -> dict[str, str]:
    """What the exported file says about itself (ONNX metadata_props; TorchScript extra file)."""
    from facegan import __version__

    s, S = task.input_size, task.size
    face = (f"float32 (N,{s},{s},3) RGB in 0..1" if float_input else f"uint8 (N,{s},{s},3) RGB in 0..255")
    contract = {"face": face + ", aligned on facegan's template (the 'template' entry)",
                "restored": f"float32 (N,{S},{S},3) RGB in 0..1"}
    if task.takes_hole:
        contract["mask"] = (f"float32 (N,{S},{S}) in 0..1, >= 0.5 = hole" if float_input
                            else f"uint8 (N,{S},{S}), > 127 (white) = hole")
        contract["raw"] = f"float32 (N,{S},{S},3) RGB in 0..1: the generator's whole output"
        contract["restored"] += ": generated pixels in the hole, the input elsewhere"
    return {
        "facegan_version": __version__,
        "task": task.name,
        "scale": json.dumps(task.scale),
        "size": str(task.size),
        "input_size": str(task.input_size),
        "template": json.dumps(ckpt.get("template")),
        "recipe": json.dumps(ckpt["recipe"]),
        "source": str(ckpt.get("bundled") or ckpt.get("path")),
        "step": json.dumps(ckpt.get("step")),
        "precision": "fp16" if fp16 else "fp32",
        "input": "float32" if float_input else "uint8",
        "contract": json.dumps(contract),
    }


def example_faces(task, n: int = PARITY_FACES) -> tuple[np.ndarray, np.ndarray | None]:
    """Real aligned faces at the task's input size (the bundled sample photos, detected and
    aligned), and holes for a task that takes them (the 'eyes' mask of each face)."""
    from PIL import Image

    from facegan.data.masks import eval_masks
    from facegan.data.prepare import SAMPLE_DIR
    from facegan.faces import align_face, find_faces, load_photo
    from facegan.geometry import template_points

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


def export(ckpt: dict, fmt: str, out: Path, opset: int = 18, fp16: bool = False, float_input: bool = False,
           console=None) -> ExportResult:
    """Export the checkpoint's EMA generator with its contract, check parity, return the figures."""
    from facegan.engines.checkpoint import build_eval_generator
    from facegan.engines.tasks import make_task
    from facegan.recipe import validate_recipe

    if fmt not in FORMATS:
        raise FaceganError(f"--format {fmt!r}: choose {' or '.join(FORMATS)}")
    task = make_task(validate_recipe(ckpt["recipe"], source=f"{ckpt.get('path')} (stored recipe)"))
    gen = build_eval_generator(ckpt, "cpu")
    reference = Contract(task, gen, float_input).eval()
    exported = Contract(task, _half_copy(gen) if fp16 else gen, float_input, half=fp16).eval()
    faces, holes = example_faces(task)
    args = _inputs(task, faces, holes, float_input)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    started = time.perf_counter()
    meta = metadata(ckpt, task, float_input, fp16)
    if fmt == "onnx":
        _export_onnx(exported, args, tmp, task, opset, meta)
    else:
        _export_torchscript(exported, args, tmp, meta)
    seconds = time.perf_counter() - started
    with torch.no_grad():
        want = _as_list(reference(*args))
    got = run_file(tmp, fmt, faces, holes, float_input)
    diff = max(float(np.abs(w.numpy() - g).max()) for w, g in zip(want, got))
    if not fp16 and diff > MAX_FP32_DIFF:
        tmp.unlink(missing_ok=True)
        raise FaceganError(f"the exported {fmt} model differs from PyTorch by {diff:.2e} (> {MAX_FP32_DIFF:.0e}) on "
                           "real faces; not written")
    tmp.replace(out)
    return ExportResult(out, fmt, seconds, out.stat().st_size, diff, fp16)


def _half_copy(gen: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(gen).half()


def _inputs(task, faces: np.ndarray, holes: np.ndarray | None, float_input: bool) -> tuple[torch.Tensor, ...]:
    face = torch.from_numpy(faces)
    mask = torch.from_numpy(holes) if holes is not None else None
    if float_input:
        face = face.float() / 255.0
        mask = mask.float() / 255.0 if mask is not None else None
    return (face, mask) if task.takes_hole else (face,)


def _as_list(outputs) -> list[torch.Tensor]:
    return list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]


def _export_onnx(model: nn.Module, args: tuple, path: Path, task, opset: int, meta: dict[str, str]) -> None:
    try:
        import onnx
    except ImportError:
        raise FaceganError("ONNX export needs the onnx packages: pip install 'facegan[export]'") from None
    batch = torch.export.Dim("batch", min=1, max=4096)
    dynamic = {name: {0: batch} for name in input_names(task)}
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(model, args, str(path), input_names=input_names(task), output_names=output_names(task),
                              opset_version=opset, dynamo=True, dynamic_shapes=dynamic, external_data=False,
                              verbose=False)
    except ImportError as err:
        raise FaceganError(f"ONNX export needs {err.name or 'onnxscript'}: pip install 'facegan[export]'") from None
    proto = onnx.load(str(path))
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "facegan"
    onnx.save(proto, str(path))


def _export_torchscript(model: nn.Module, args: tuple, path: Path, meta: dict[str, str]) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated upstream; it is still what many deploy
        traced = torch.jit.trace(model, args, check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={"facegan.json": json.dumps(meta)})


def run_file(path: Path, fmt: str, faces: np.ndarray, holes: np.ndarray | None, float_input: bool = False) -> list[np.ndarray]:
    """Run an exported file on faces (and holes): its outputs as float32 arrays."""
    if fmt == "onnx":
        session = onnx_session(path)
        feeds = {"face": faces.astype(np.float32) / 255.0 if float_input else faces}
        if holes is not None:
            feeds["mask"] = holes.astype(np.float32) / 255.0 if float_input else holes
        return [np.asarray(o) for o in session.run(None, feeds)]
    module = load_torchscript(path)
    args = [torch.from_numpy(faces)]
    if holes is not None:
        args.append(torch.from_numpy(holes))
    if float_input:
        args = [a.float() / 255.0 for a in args]
    with torch.no_grad():
        return [o.numpy() for o in _as_list(module(*args))]


def load_torchscript(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.load(str(path), map_location="cpu")


def onnx_session(path: Path):
    """An onnxruntime CPU session for ``path``; one-line errors when it cannot be had."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise FaceganError("running an ONNX model needs onnxruntime: pip install 'facegan[export]'") from None
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # not an ONNX file, unsupported operators...
        raise FaceganError(f"{path} is not a model onnxruntime can run ({str(exc).splitlines()[0][:200]})") from None


def latency(path: Path, fmt: str, ckpt: dict, batches=(1, 8), repeats: int = 10) -> dict[str, dict[int, float]]:
    """Milliseconds per face of the exported file and of the PyTorch restorer, per batch size."""
    from facegan.restore import Restorer

    restorer = Restorer(ckpt, "cpu")
    faces, holes = example_faces(restorer.task, 1)
    if fmt == "onnx":
        session = onnx_session(path)

        def exported(f, h):
            return session.run(None, {"face": f, **({"mask": h} if h is not None else {})})
    else:
        module = load_torchscript(path)

        def exported(f, h):
            with torch.no_grad():
                return module(*([torch.from_numpy(f)] + ([torch.from_numpy(h)] if h is not None else [])))

    out: dict[str, dict[int, float]] = {fmt: {}, "pytorch": {}}
    for b in batches:
        f = np.repeat(faces, b, axis=0)
        h = np.repeat(holes, b, axis=0) if holes is not None else None
        runners = {fmt: lambda: exported(f, h),
                   "pytorch": lambda: restorer.restore(f, h > 127 if h is not None else None, batch_size=b)}
        for name, fn in runners.items():
            fn()
            t = time.perf_counter()
            for _ in range(repeats):
                fn()
            out[name][b] = (time.perf_counter() - t) / repeats / b * 1e3
    return out


class OnnxRestorer:
    """A Restorer (:class:`facegan.restore.Restorer`'s interface) whose generator is an exported
    ONNX file run by onnxruntime: ``facegan restore --backend onnx`` uses it for the same detect,
    align and paste-back pipeline."""

    device = torch.device("cpu")

    def __init__(self, path: str | Path) -> None:
        from facegan.engines.tasks import make_task
        from facegan.recipe import validate_recipe

        self.path = Path(path)
        if not self.path.is_file():
            raise FaceganError(f"ONNX model {self.path} not found")
        self.session = onnx_session(self.path)
        meta = self.session.get_modelmeta().custom_metadata_map
        if "recipe" not in meta or "task" not in meta:
            raise FaceganError(f"{self.path} is not an ONNX model exported by `facegan export`")
        self.task = make_task(validate_recipe(json.loads(meta["recipe"]), source=f"{self.path} (recipe in its metadata)"))
        template = json.loads(meta.get("template") or "null") or {}
        points = template.get("points")
        self.template = np.asarray(points, dtype=np.float64) if points else None
        self.ckpt = {"path": str(self.path), "task": self.task.name}
        self.float_input = meta.get("input") == "float32"

    size = property(lambda self: self.task.size)
    input_size = property(lambda self: self.task.input_size)
    scale = property(lambda self: self.task.scale)

    def restore(self, faces: np.ndarray, holes=None, batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`facegan.restore.Restorer.restore`: uint8 faces (and holes) -> (raw, result) uint8."""
        faces = np.asarray(faces, dtype=np.uint8)
        raws, results = [], []
        for start in range(0, len(faces), batch_size):
            f = faces[start : start + batch_size]
            feeds = {"face": f.astype(np.float32) / 255.0 if self.float_input else f}
            if self.task.takes_hole:
                h = (np.asarray(holes[start : start + batch_size]).reshape(len(f), self.size, self.size) > 0.5)
                feeds["mask"] = h.astype(np.float32) if self.float_input else h.astype(np.uint8) * 255
            outputs = self.session.run(None, feeds)
            result = _from01(outputs[0])
            raws.append(_from01(outputs[1]) if len(outputs) > 1 else result)
            results.append(result)
        if not results:
            empty = np.zeros((0, self.size, self.size, 3), np.uint8)
            return empty, empty.copy()
        return np.concatenate(raws), np.concatenate(results)


def _from01(images: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)
