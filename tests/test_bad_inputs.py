"""A corpus of bad and hostile inputs for every command, as one data-driven table.

Each case builds its inputs in a fresh folder and runs the real CLI. A refused case must exit
with its code, print exactly one ``error:`` line (naming the problem) and no traceback, and
leave every file that existed before unchanged (the workspace is hashed before and after). A
case marked ``ok`` is an odd but valid input (16-bit, CMYK, palette, EXIF-rotated, animated,
transparent): it must succeed, still without a traceback and without changing what existed.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from facegan.cli import app
from facegan.data.prepare import SAMPLE_DIR

from helpers import REPO

runner = CliRunner()
FACE = SAMPLE_DIR / "deepface" / "img11.jpg"


@dataclass
class Workspace:
    """What every case may use: a trained tiny run, its packed data, and a folder of its own."""

    run: Path
    data: Path
    case: Path

    def file(self, name: str, data: bytes) -> Path:
        path = self.case / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def image(self, name: str, image: Image.Image, **save) -> Path:
        path = self.case / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, **save)
        return path

    def out(self) -> str:
        return str(self.case / "out")


@dataclass
class Case:
    id: str
    argv: Callable[[Workspace], list[str]]
    code: int
    message: str = ""
    """A substring of the error line (or, for exit code 0, of the output)."""


# ---- inputs ---------------------------------------------------------------------------------


def _face() -> Image.Image:
    return Image.open(FACE).convert("RGB")


def _jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _png_bomb(w: int, h: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * (w + 1))) + chunk(b"IEND", b"")


class _Payload:
    """Unpickling this would run a shell command: a checkpoint must never execute code."""

    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _checkpoint(ws: Workspace, name: str, edit) -> Path:
    ckpt = torch.load(ws.run / "checkpoints" / "last.pt", weights_only=True)
    edit(ckpt)
    path = ws.case / name
    torch.save(ckpt, path)
    return path


def _nan_weights(ckpt: dict) -> None:
    for state in (ckpt["generator"], ckpt["ema"]):
        for v in state.values():
            if v.is_floating_point():
                v.fill_(float("nan"))


def _recipe(ws: Workspace, text: str) -> str:
    return str(ws.file("recipe.yaml", text.encode()))


def _base_recipe(ws: Workspace) -> str:
    return (f"task: inpaint\ndata: {{path: {ws.data}, size: 64}}\nmodel: {{width: 8, d_width: 8}}\n"
            "loss: {identity_net: mobilefacenet}\ntrain: {batch: 4, steps: 2}\n")


def _run_copy(ws: Workspace) -> Path:
    dest = ws.case / "run"
    shutil.copytree(ws.run, dest)
    return dest


def _truncated_last(ws: Workspace) -> Path:
    run = _run_copy(ws)
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    return run


def _photos_folder(ws: Workspace, files: dict[str, bytes]) -> Path:
    folder = ws.case / "photos"
    for name, data in files.items():
        ws.file(f"photos/{name}", data)
    return folder


def _exif_rotated(ws: Workspace) -> Path:
    face = _face().transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display upright
    return ws.image("rotated.jpg", face, exif=exif)


def _animated(ws: Workspace) -> Path:
    face = _face()
    frames = [face, face.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    return ws.image("animated.gif", frames[0], save_all=True, append_images=frames[1:], duration=100, loop=0)


def _rgba(ws: Workspace) -> Path:
    face = _face().convert("RGBA")
    alpha = np.full(face.size[::-1], 255, np.uint8)
    alpha[:, :20] = 0
    face.putalpha(Image.fromarray(alpha))
    return ws.image("transparent.png", face)


def _restore(ws: Workspace, photo: Path | str, *extra: str) -> list[str]:
    return ["restore", str(photo), "--checkpoint", str(ws.run), "--out", ws.out(), "--device", "cpu", *extra]


def _eval(ws: Workspace, ckpt: Path | str, *extra: str) -> list[str]:
    return ["eval", str(ckpt), "--device", "cpu", "--out", ws.out(), *extra]


def _train(ws: Workspace, recipe: str, *extra: str) -> list[str]:
    return ["train", recipe, "--out", str(ws.case / "train_out"), *extra]


CASES = [
    # ---- prepare --------------------------------------------------------------------------
    Case("prepare-folder-missing", lambda ws: ["prepare", "folder", str(ws.case / "nope"), "--out", ws.out()], 2, "does not exist"),
    Case("prepare-folder-no-images", lambda ws: ["prepare", "folder", str(_photos_folder(ws, {"a.txt": b"x"})), "--out", ws.out()], 2, "no images found"),
    Case("prepare-size-not-16", lambda ws: ["prepare", "folder", str(_photos_folder(ws, {"a.jpg": FACE.read_bytes()})), "--out", ws.out(), "--size", "100"], 2, "multiple of 16"),
    Case("prepare-bad-split", lambda ws: ["prepare", "folder", str(_photos_folder(ws, {"a.jpg": FACE.read_bytes()})), "--out", ws.out(), "--split", "0.5,0.2"], 2, "--split"),
    Case("prepare-workers-zero", lambda ws: ["prepare", "folder", str(_photos_folder(ws, {"a.jpg": FACE.read_bytes()})), "--out", ws.out(), "--workers", "0"], 2, "--workers"),
    Case("prepare-out-is-a-file", lambda ws: ["prepare", "folder", str(_photos_folder(ws, {"a.jpg": FACE.read_bytes()})), "--out", str(ws.file("taken", b"mine"))], 2, "already exists"),
    Case("prepare-out-holds-other-things", lambda ws: ["prepare", "folder", str(_photos_folder(ws, {"a.jpg": FACE.read_bytes()})), "--out", str(ws.file("mine/notes.txt", b"x").parent)], 2, "not a facegan dataset"),
    Case("prepare-only-broken-images", lambda ws: ["prepare", "folder", str(_photos_folder(ws, {
        "zero.jpg": b"", "text.jpg": b"not a jpeg", "cut.jpg": FACE.read_bytes()[:500],
        "pixel.png": _png(Image.new("RGB", (1, 1)))})), "--out", ws.out(), "--workers", "1"], 2, "none of the 4 images gave a face"),
    Case("prepare-celeba-missing-root", lambda ws: ["prepare", "celeba", "--root", str(ws.case / "nope"), "--out", ws.out()], 2, ""),
    Case("prepare-celeba-no-annotations", lambda ws: ["prepare", "celeba", "--root", str(_photos_folder(ws, {"img_align_celeba/000001.jpg": FACE.read_bytes()})), "--out", ws.out()], 2, ""),
    # ---- train ----------------------------------------------------------------------------
    Case("train-missing-recipe", lambda ws: _train(ws, str(ws.case / "nope.yaml")), 2, "not found"),
    Case("train-yaml-syntax", lambda ws: _train(ws, _recipe(ws, "task: inpaint\ntrain: {steps: 3\n")), 2, "not valid YAML"),
    Case("train-duplicate-key", lambda ws: _train(ws, _recipe(ws, _base_recipe(ws) + "train: {steps: 3}\n")), 2, "duplicate key 'train' (lines 5 and 6)"),
    Case("train-type-error", lambda ws: _train(ws, _recipe(ws, _base_recipe(ws)), "--set", "train.batch=many"), 2, "train.batch"),
    Case("train-unknown-key", lambda ws: _train(ws, _recipe(ws, _base_recipe(ws)), "--set", "loss.identty=1"), 2, "loss.identty: unknown key"),
    Case("train-lr-inf", lambda ws: _train(ws, _recipe(ws, _base_recipe(ws)), "--set", "train.lr_g=inf"), 2, "train.lr_g"),
    Case("train-lr-nan", lambda ws: _train(ws, _recipe(ws, _base_recipe(ws)), "--set", "train.lr_d=nan"), 2, "train.lr_d"),
    Case("train-set-without-equals", lambda ws: _train(ws, _recipe(ws, _base_recipe(ws)), "--set", "train.steps"), 2, "KEY=VALUE"),
    Case("train-out-is-a-file", lambda ws: ["train", _recipe(ws, _base_recipe(ws)), "--out", str(ws.file("taken", b"mine"))], 2, "is a file"),
    Case("train-resume-missing-run", lambda ws: ["train", str(ws.case / "runs" / "missing"), "--resume"], 2, "no run at"),
    Case("train-folder-without-resume", lambda ws: ["train", str(_run_copy(ws))], 2, "--resume"),
    Case("train-data-not-a-dataset", lambda ws: _train(ws, _recipe(ws, _base_recipe(ws)), "--set", f"data.path={ws.case}"), 2, "not a facegan dataset"),
    Case("train-existing-run", lambda ws: ["train", _recipe(ws, _base_recipe(ws)), "--out", str(_run_copy(ws))], 2, "already holds a run"),
    Case("train-resume-truncated-last", lambda ws: ["train", str(_truncated_last(ws)), "--resume"], 2, "newest intact checkpoint is"),
    Case("train-resume-other-recipe", lambda ws: ["train", str(_run_copy(ws)), "--resume", "--set", "model.width=16"], 2, "cannot resume"),
    # ---- eval -----------------------------------------------------------------------------
    Case("eval-max-images-negative", lambda ws: _eval(ws, ws.run, "--max-images", "-3"), 2, "--max-images must be at least 1"),
    Case("eval-max-images-zero", lambda ws: _eval(ws, ws.run, "--max-images", "0"), 2, "--max-images must be at least 1"),
    Case("eval-out-is-a-file", lambda ws: ["eval", str(ws.run), "--device", "cpu", "--out", str(ws.file("taken", b"mine"))], 2, "is a file"),
    Case("eval-json-is-a-folder", lambda ws: _eval(ws, ws.run, "--json", str(ws.case)), 2, "is a folder"),
    Case("eval-zero-byte-checkpoint", lambda ws: _eval(ws, ws.file("zero.pt", b"")), 2, "not a readable facegan checkpoint"),
    Case("eval-text-checkpoint", lambda ws: _eval(ws, ws.file("text.pt", b"hello")), 2, "not a readable facegan checkpoint"),
    Case("eval-pickle-payload", lambda ws: _eval(ws, ws.file("evil.pt", pickle.dumps({"format": "facegan-checkpoint", "x": _Payload()}))), 2, "not a readable facegan checkpoint"),
    Case("eval-nan-weights", lambda ws: _eval(ws, _checkpoint(ws, "nan.pt", _nan_weights)), 2, "non-finite generator weights"),
    Case("eval-not-a-checkpoint", lambda ws: _eval(ws, _checkpoint(ws, "other.pt", lambda c: c.update(format="x"))), 2, "is not a facegan checkpoint"),
    Case("eval-scale-on-inpaint", lambda ws: _eval(ws, ws.run, "--scale", "4"), 2, "--scale is for super-resolution runs"),
    Case("eval-unknown-mask", lambda ws: _eval(ws, ws.run, "--mask", "nose"), 2, "neither a mask type"),
    Case("eval-wrong-aspect-mask", lambda ws: _eval(ws, ws.run, "--mask", str(ws.image("m.png", Image.new("L", (100, 40), 255)))), 2, "square mask"),
    Case("eval-missing-run", lambda ws: _eval(ws, ws.case / "nope"), 2, "not found"),
    # ---- restore --------------------------------------------------------------------------
    Case("restore-zero-byte", lambda ws: _restore(ws, ws.file("zero.jpg", b"")), 2, "not an image"),
    Case("restore-text-as-jpeg", lambda ws: _restore(ws, ws.file("text.jpg", b"this is not a photo")), 2, "not an image"),
    Case("restore-truncated-jpeg", lambda ws: _restore(ws, ws.file("cut.jpg", FACE.read_bytes()[:600])), 2, "not an image"),
    Case("restore-one-pixel", lambda ws: _restore(ws, ws.image("pixel.png", Image.new("RGB", (1, 1)))), 2, "too small to hold a face (1×1)"),
    Case("restore-decompression-bomb", lambda ws: _restore(ws, ws.file("bomb.png", _png_bomb(30000, 30000))), 2, "too large to decode"),
    Case("restore-all-black-mask", lambda ws: _restore(ws, FACE, "--mask", str(ws.image("black.png", Image.new("L", Image.open(FACE).size, 0)))), 2, "no hole pixels"),
    Case("restore-wrong-aspect-mask", lambda ws: _restore(ws, FACE, "--mask", str(ws.image("wide.png", Image.new("L", (500, 100), 255)))), 2, "aspect ratios differ"),
    Case("restore-mask-for-sr", lambda ws: _restore(ws, FACE, "--task", "sr", "--mask", "eyes"), 2, "--mask is for --task inpaint"),
    Case("restore-unknown-task", lambda ws: _restore(ws, FACE, "--task", "colorize"), 2, "--task"),
    Case("restore-face-zero", lambda ws: _restore(ws, FACE, "--face", "0"), 2, "--face"),
    Case("restore-batch-size-zero", lambda ws: _restore(ws, FACE, "--batch-size", "0"), 2, "--batch-size"),
    Case("restore-other-task-checkpoint", lambda ws: _restore(ws, FACE, "--task", "sr"), 2, "is a 'inpaint' checkpoint, not 'sr'"),
    Case("restore-pickle-checkpoint", lambda ws: ["restore", str(FACE), "--checkpoint", str(ws.file("evil.pt", pickle.dumps(_Payload()))), "--out", ws.out()], 2, "not a readable facegan checkpoint"),
    Case("restore-nan-checkpoint", lambda ws: ["restore", str(FACE), "--checkpoint", str(_checkpoint(ws, "nan.pt", _nan_weights)), "--out", ws.out(), "--device", "cpu"], 2, "non-finite generator weights"),
    Case("restore-no-face", lambda ws: _restore(ws, ws.image("blank.png", Image.new("RGB", (200, 200), "white"))), 3, "no face found"),
    Case("restore-missing-photo", lambda ws: _restore(ws, ws.case / "nope.jpg"), 2, "does not exist"),
    Case("restore-mask-folder-without-its-stem", lambda ws: _restore(ws, ws.image("in/a.jpg", _face()), "--mask", str(ws.image("masks/b.png", Image.new("L", (8, 8), 255)).parent)), 2, "no mask named a"),
    Case("restore-output-over-input", lambda ws: ["restore", str(ws.image("a.png", _face())), "--checkpoint", str(ws.run), "--out", str(ws.case), "--device", "cpu", "--mask", str(ws.image("a_restored.png", Image.new("L", _face().size, 255)))], 2, "refusing to overwrite the input"),
    Case("restore-16-bit-face", lambda ws: _restore(ws, ws.image("grey16.png", Image.fromarray((np.asarray(_face().convert("L"), np.uint16) * 257)))), 0, "1 of 1 photo(s) restored"),
    Case("restore-cmyk-face", lambda ws: _restore(ws, ws.image("cmyk.jpg", _face().convert("CMYK"))), 0, "1 of 1 photo(s) restored"),
    Case("restore-palette-face", lambda ws: _restore(ws, ws.image("palette.png", _face().convert("P"))), 0, "1 of 1 photo(s) restored"),
    Case("restore-exif-rotated-face", lambda ws: _restore(ws, _exif_rotated(ws)), 0, "1 of 1 photo(s) restored"),
    Case("restore-animated-gif", lambda ws: _restore(ws, _animated(ws)), 0, "1 of 1 photo(s) restored"),
    Case("restore-rgba-face", lambda ws: _restore(ws, _rgba(ws)), 0, "1 of 1 photo(s) restored"),
    # ---- ablate and keys ------------------------------------------------------------------
    Case("ablate-missing-spec", lambda ws: ["ablate", str(ws.case / "nope.yaml")], 2, "not found"),
    Case("ablate-unknown-key", lambda ws: ["ablate", str(ws.file("spec.yaml", b"base: x.yaml\nvariants: [{name: a}, {name: b}]\nseedz: 2\n")), "--dry-run"], 2, "seedz: unknown key"),
    Case("ablate-seeds-zero", lambda ws: ["ablate", str(REPO / "recipes" / "ablate_inpaint.yaml"), "--seeds", "0", "--dry-run"], 2, "--seeds"),
    Case("keys-unknown-section", lambda ws: ["keys", "bogus"], 2, "unknown section 'bogus'"),
    Case("keys-unknown-task", lambda ws: ["keys", "--task", "colorize"], 2, "unknown task"),
]


# ---- round two: YAML bombs, odd files and outputs, huge photos ------------------------------


def _alias_bomb(levels: int = 9, fan: int = 10) -> str:
    """Thirty lines that stand for fan**levels values once their aliases are expanded."""
    lines = ["a0: &a0 [" + ", ".join(["x"] * fan) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fan) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + f"\ndescription: *a{levels}\n"


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _fifo(ws: Workspace, name: str) -> str:
    path = ws.case / name
    os.mkfifo(path)
    return str(path)


def _loop(ws: Workspace, name: str) -> str:
    a, b = ws.case / name, ws.case / f"{name}.other"
    a.symlink_to(b)
    b.symlink_to(a)
    return str(a)


def _without_last(ws: Workspace) -> Path:
    run = _run_copy(ws)
    (run / "checkpoints" / "last.pt").unlink()
    return run


def _panorama(ws: Workspace) -> Path:
    pano = Image.new("RGB", (8000, 300), (128, 128, 128))
    pano.paste(_face().resize((210, 280)), (5000, 10))
    return ws.image("panorama.png", pano)


def _small_face_in_a_big_photo(ws: Workspace) -> Path:
    rng = np.random.default_rng(0)
    photo = Image.fromarray((rng.random((3000, 4000, 3)) * 60 + 100).astype(np.uint8))
    photo.paste(_face().resize((120, 160), Image.Resampling.LANCZOS), (2500, 1800))
    return ws.image("big.jpg", photo, quality=92)


def _export(ws: Workspace, *extra: str) -> list[str]:
    return ["export", str(ws.run), "--format", "onnx", *extra]


def _bundled_weights(name: str) -> str:
    from facegan.checkpoints.bundled import MODELS_DIR

    return str(MODELS_DIR / f"{name}.safetensors")


ROUND_TWO = [
    # S3, M1: YAML that would expand without bound or nest too deep; values quoted short (L4)
    Case("train-yaml-alias-bomb", lambda ws: _train(ws, _recipe(ws, "task: inpaint\n" + _alias_bomb())), 2, "refused: it expands to more than 100,000 values"),
    Case("train-yaml-recursive-alias", lambda ws: _train(ws, _recipe(ws, "task: inpaint\nx: &a [1, *a]\n")), 2, "recursive YAML alias"),
    Case("train-yaml-nested-600", lambda ws: _train(ws, _recipe(ws, "task: inpaint\nx: " + _nested(600) + "\n")), 2, "nests more than 64 levels"),
    Case("train-yaml-nested-300", lambda ws: _train(ws, _recipe(ws, "task: inpaint\nx: " + _nested(300) + "\n")), 2, "nests more than 64 levels"),
    Case("train-set-alias-bomb", lambda ws: _train(ws, _recipe(ws, _base_recipe(ws)), "--set", "description=[&a [x,x,x,x,x,x,x,x,x,x], " + ", ".join(f"&b{i} [" + ",".join([f"*{'a' if i == 0 else f'b{i - 1}'}"] * 10) + "]" for i in range(9)) + "]"), 2, "--set 'description': refused"),
    Case("train-set-nested-600", lambda ws: _train(ws, _recipe(ws, _base_recipe(ws)), "--set", "description=" + _nested(600)), 2, "nests more than 64 levels"),
    Case("ablate-spec-alias-bomb", lambda ws: ["ablate", str(ws.file("spec.yaml", ("base: x.yaml\n" + _alias_bomb()).encode())), "--dry-run"], 2, "refused: it expands"),
    # L4: recipe files that are not what they seem
    Case("train-recipe-utf16", lambda ws: ["train", str(ws.file("utf16.yaml", _base_recipe(ws).encode("utf-16"))), "--dry-run"], 0, "task: inpaint"),
    Case("train-recipe-latin1", lambda ws: _train(ws, str(ws.file("latin1.yaml", ("description: caf\u00e9\n" + _base_recipe(ws)).encode("latin-1")))), 2, "not UTF-8 text"),
    Case("train-recipe-dev-zero", lambda ws: _train(ws, "/dev/zero"), 2, "is not a regular file"),
    Case("train-recipe-fifo", lambda ws: _train(ws, _fifo(ws, "recipe.yaml")), 2, "is not a regular file"),
    Case("train-recipe-symlink-loop", lambda ws: _train(ws, _loop(ws, "loop.yaml")), 2, "is a symbolic link loop"),
    Case("train-recipe-too-big", lambda ws: _train(ws, str(ws.file("big.yaml", b"# " + b"x" * (2 << 20) + b"\n"))), 2, "MiB; a recipe is a small YAML text file"),
    Case("train-recipe-empty", lambda ws: _train(ws, str(ws.file("empty.yaml", b""))), 2, "task: required key is missing"),
    Case("train-recipe-a-list", lambda ws: _train(ws, str(ws.file("list.yaml", b"- task\n- inpaint\n"))), 2, "a recipe is a YAML mapping"),
    Case("train-recipe-binary", lambda ws: _train(ws, str(ws.file("binary.yaml", bytes(range(256)) * 4))), 2, ""),
    Case("train-error-quotes-a-huge-value-short", lambda ws: _train(ws, _recipe(ws, _base_recipe(ws)), "--set", "train.batch=" + "[" + ",".join(["[1,2,3]"] * 3000) + "]"), 2, "train.batch"),
    # M2: a run whose last.pt is gone offers its newest intact checkpoint
    Case("train-resume-without-last", lambda ws: ["train", str(_without_last(ws)), "--resume"], 2, "newest intact checkpoint is"),
    # L3: one image has no interval; the JSON stays strict
    Case("eval-max-images-1", lambda ws: _eval(ws, ws.run, "--max-images", "1"), 0, "no confidence interval"),
    Case("eval-json-to-dev-null", lambda ws: _eval(ws, ws.run, "--max-images", "2", "--json", os.devnull), 0, "per-image CSV"),
    # L4: a bundled model's weights file by path is the bundled model
    Case("eval-bundled-safetensors-by-path", lambda ws: _eval(ws, _bundled_weights("inpaint-128"), "--data", str(ws.data)), 2, "trained at 128px"),
    Case("eval-foreign-safetensors", lambda ws: _eval(ws, ws.file("w.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")), 2, "not a facegan bundled model"),
    # S1, M3, M5: export never replaces its source, checks its output and opset first
    Case("export-over-its-source", lambda ws: _export(ws, "--format", "torchscript", "--out", str(ws.run / "checkpoints" / "last.pt")), 2, "is the source"),
    Case("export-into-the-runs-checkpoints", lambda ws: _export(ws, "--out", str(ws.run / "checkpoints" / "model.onnx")), 2, "a file of the run"),
    Case("export-over-a-file-of-the-run", lambda ws: _export(ws, "--out", str(ws.run / "log.jsonl")), 2, "a file of the run"),
    Case("export-over-an-existing-file", lambda ws: _export(ws, "--out", str(ws.file("taken.onnx", b"mine"))), 2, "already exists; pass --force"),
    Case("export-out-is-a-folder", lambda ws: _export(ws, "--out", str(ws.case)), 2, "is a folder"),
    Case("export-opset-3", lambda ws: _export(ws, "--opset", "3", "--out", ws.out() + ".onnx"), 2, "--opset 3: choose an ONNX opset from 18"),
    Case("export-opset-999", lambda ws: _export(ws, "--opset", "999", "--out", ws.out() + ".onnx"), 2, "--opset 999"),
    Case("export-opset-negative", lambda ws: _export(ws, "--opset", "-1", "--out", ws.out() + ".onnx"), 2, "--opset -1"),
    Case("export-unknown-format", lambda ws: _export(ws, "--format", "tflite"), 2, "is not one of"),
    # M4, M6, M7, L4: photos that are huge, thin, small-faced or not there
    Case("restore-sr-output-over-the-cap", lambda ws: ["restore", str(ws.image("wide.png", Image.new("RGB", (1500, 1000)))), "--task", "sr", "--checkpoint", "sr8-128", "--out", ws.out()], 2, "over --max-megapixels 64"),
    Case("restore-max-megapixels-zero", lambda ws: _restore(ws, FACE, "--max-megapixels", "0"), 2, "--max-megapixels must be above 0"),
    Case("restore-panorama-without-a-face", lambda ws: _restore(ws, ws.image("pano.png", Image.new("RGB", (8000, 300), "white"))), 3, "no face found"),
    Case("restore-panorama-with-a-face", lambda ws: _restore(ws, _panorama(ws)), 0, "1 of 1 photo(s) restored"),
    Case("restore-small-face-in-a-12mp-photo", lambda ws: _restore(ws, _small_face_in_a_big_photo(ws)), 0, "1 of 1 photo(s) restored"),
    Case("restore-symlink-loop", lambda ws: _restore(ws, _loop(ws, "loop.jpg")), 2, "is a symbolic link loop"),
    Case("restore-unknown-backend", lambda ws: _restore(ws, FACE, "--backend", "tensorrt"), 2, "is not one of"),
    # L5: prepare folder says what it packed
    Case("prepare-folder-duplicates", lambda ws: ["prepare", "folder", str(_photos_folder(ws, {"alice/1.jpg": FACE.read_bytes(), "bob/2.jpg": FACE.read_bytes()})), "--out", ws.out(), "--size", "64", "--workers", "1"], 0, "1 byte-identical copy skipped"),
    Case("prepare-folder-faces-per-photo", lambda ws: ["prepare", "folder", str(_photos_folder(ws, {"a.jpg": FACE.read_bytes()})), "--out", ws.out(), "--size", "64", "--workers", "1", "--all-faces"], 0, "faces kept per photo: 1 face: 1 photo"),
]


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def _snapshot(*roots: Path) -> dict[str, str]:
    files = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                files[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return files


@pytest.fixture(scope="module")
def run(tiny_run, tmp_path_factory) -> Path:
    """A private copy of the tiny run (no other test may see a case change it)."""
    dest = tmp_path_factory.mktemp("corpus") / "tiny"
    shutil.copytree(tiny_run, dest)
    return dest


def test_the_corpus_is_big_enough():
    cases = CASES + ROUND_TWO
    assert len(cases) >= 100 and len({c.id for c in cases}) == len(cases)


@pytest.mark.parametrize("case", CASES + ROUND_TWO, ids=[c.id for c in CASES + ROUND_TWO])
def test_bad_input(case: Case, run: Path, sample_data: Path, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ws = Workspace(run=run, data=sample_data, case=tmp_path / "case")
    ws.case.mkdir()
    argv = case.argv(ws)
    before = _snapshot(run, sample_data, ws.case)
    res = runner.invoke(app, argv)
    output = res.output
    assert "Traceback" not in output and (res.exception is None or isinstance(res.exception, SystemExit)), output
    assert res.exit_code == case.code, output
    after = _snapshot(run, sample_data, ws.case)
    assert not (tmp_path / "PWNED").exists(), "a checkpoint ran code"
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    if case.code == 0:
        assert not errors and case.message in " ".join(output.split())
        assert {k: after[k] for k in before} == before  # new outputs only; nothing that existed changed
        return
    assert len(errors) == 1, output
    assert len(errors[0]) < 600, f"an error line of {len(errors[0]):,} characters"  # user values quoted short
    assert case.message in " ".join(output.split()), output
    assert after == before, "a refused command changed files"
