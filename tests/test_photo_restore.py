"""`facegan restore` on ordinary photos: detection, alignment, holes, paste-back, batches.

Runs on the photos that ship with facegan (facegan/assets/sample_faces/deepface, the same
files as the team's deepface fixtures) and on a synthetic group photo made from them; one
batch test reads the fixtures folder itself. The model is the 6-step tiny run of conftest.
"""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from facegan.cli import app
from facegan.core.errors import FaceganError, NoFaceError
from facegan.faces import detect as faces
from facegan.faces import images
from facegan.faces.geometry import TEMPLATE
from facegan.restoring.photo import restore_photos
from facegan.restoring.planning import RestoreOptions, parse_face_option
from facegan.restoring.restorer import Restorer
from facegan.restoring.torch_restorer import TorchRestorer

from helpers import REPO

runner = CliRunner()
DEEPFACE = Path(images.__file__).parents[1] / "assets" / "sample_faces" / "deepface"
#: Pupils (left, right; pixel-index x, y) read off 10x zooms by eye, +-1.5 px.
PUPILS = {
    "img11.jpg": np.array([[100.0, 84.0], [148.5, 98.5]]),
    "img3.jpg": np.array([[96.0, 109.5], [142.8, 106.5]]),
    "img18.jpg": np.array([[129.5, 118.5], [180.0, 116.5]]),
}
#: Where the synthetic group photo gets each photo: (file, scale, (left, top)).
GROUP = [("img11.jpg", 1.0, (10, 20)), ("img3.jpg", 0.6, (270, 20)), ("img18.jpg", 0.5, (440, 180))]


@pytest.fixture(scope="module")
def restorer(tiny_run) -> TorchRestorer:
    return TorchRestorer.find("inpaint", tiny_run, device="cpu")


@pytest.fixture(scope="module")
def group(tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    """A 620x360 group photo on a gradient; returns (PNG path, pupils of each face in it)."""
    yy, xx = np.mgrid[0:360, 0:620]
    bg = np.stack([60 + xx * 0.2, 90 + yy * 0.3, 140 - xx * 0.1], -1).astype(np.uint8)
    canvas = Image.fromarray(bg)
    pupils = []
    for name, f, (left, top) in GROUP:
        img = images.load_image(DEEPFACE / name)
        if f != 1.0:
            img = img.resize((round(img.width * f), round(img.height * f)), Image.Resampling.LANCZOS)
        canvas.paste(img, (left, top))
        pupils.append((PUPILS[name] + 0.5) * f - 0.5 + [left, top])
    path = tmp_path_factory.mktemp("group") / "group.png"
    canvas.save(path)
    return path, pupils


def _changed(a: Path | np.ndarray, b: Path | np.ndarray) -> np.ndarray:
    a = np.asarray(Image.open(a).convert("RGB")) if isinstance(a, Path) else a
    b = np.asarray(Image.open(b).convert("RGB")) if isinstance(b, Path) else b
    assert a.shape == b.shape
    return (a != b).any(-1)


def _near_eyes(shape, pupils: list[np.ndarray], reach: float) -> np.ndarray:
    """Pixels within ``reach`` eye distances (+2 px) of some face's eye midpoint."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    near = np.zeros(shape[:2], bool)
    for p in pupils:
        mid, d = p.mean(0), np.linalg.norm(p[1] - p[0])
        near |= np.hypot(xx - mid[0], yy - mid[1]) <= reach * d + 2
    return near


def _window_diff(a: np.ndarray, b: np.ndarray, point: np.ndarray, r: int = 2) -> float:
    x, y = np.rint(point).astype(int)
    return float(np.abs(a[y - r : y + r + 1, x - r : x + r + 1].astype(float) - b[y - r : y + r + 1, x - r : x + r + 1]).mean())


# ---- detection ------------------------------------------------------------------------------


def test_group_photo_faces_found_largest_first_with_landmarks_on_the_eyes(group):
    path, pupils = group
    found = faces.find_faces(images.load_photo(path))
    assert len(found) == 3
    assert found[0].area > found[1].area > found[2].area
    for face, want in zip(found, pupils):  # GROUP is listed largest first
        d = np.linalg.norm(want[1] - want[0])
        assert np.linalg.norm(face.landmarks[:2] - want, axis=1).max() < max(4.0, 0.1 * d)


def test_tiny_photo_is_detected_on_an_enlarged_copy():
    photo = images.load_image(DEEPFACE / "img11.jpg")
    crop = photo.crop((50, 20, 190, 190))  # the face with a little margin
    f = 16 / crop.width
    tiny = crop.resize((16, round(crop.height * f)), Image.Resampling.LANCZOS)  # eyes ~6 px apart
    with pytest.raises(ValueError):
        faces.detect_faces([tiny])  # MTCNN alone cannot even run on it
    found = faces.find_faces(tiny)
    assert len(found) == 1
    want = (PUPILS["img11.jpg"] - [50, 20] + 0.5) * f - 0.5
    assert np.linalg.norm(found[0].landmarks[:2] - want, axis=1).max() < 1.0


def test_faces_smaller_than_mtcnn_sees_are_found_on_an_enlarged_copy():
    """SR restores faces of 16 px crops (sr8-128's input): their box is ~10 px, under MTCNN's 20.
    In a 256 px photo the first pass misses such a face; with min_face the second pass enlarges."""
    photo = images.load_image(DEEPFACE / "img11.jpg")
    crop = photo.crop((50, 20, 190, 190))
    f = 12 / crop.width
    small = crop.resize((12, round(crop.height * f)), Image.Resampling.LANCZOS)  # eyes ~4 px apart
    canvas = Image.new("RGB", (256, 256), (120, 130, 140))
    canvas.paste(small, (150, 60))
    assert faces.tile_scale(10) == faces.MAX_ENLARGE and faces.tile_scale(40) == 0.5
    assert faces.find_faces(canvas) == []
    found = faces.find_faces(canvas, min_face=10)
    assert len(found) == 1
    want = (PUPILS["img11.jpg"] - [50, 20] + 0.5) * f - 0.5 + [150, 60]
    assert np.linalg.norm(found[0].landmarks[:2] - want, axis=1).max() < 1.0


def _png_header(width: int, height: int) -> bytes:
    """A tiny PNG file whose header claims ``width`` x ``height`` grey pixels (data truncated)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1))  # one row of the claimed image
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bombs_are_refused_before_decoding(tmp_path, tiny_run):
    for w, h in [(11000, 10000), (30000, 30000)]:  # over facegan's 100 MP; over PIL's own limit
        path = tmp_path / f"bomb{w}.png"
        path.write_bytes(_png_header(w, h))
        with pytest.raises(FaceganError, match="refuses photos over 100 MP") as info:
            images.load_photo(path)
        assert "\n" not in str(info.value)
    res = runner.invoke(app, ["restore", str(tmp_path / "bomb11000.png"), "--checkpoint", str(tiny_run),
                              "--out", str(tmp_path / "o"), "--device", "cpu"])
    assert res.exit_code == 2 and "11000x10000 (110 MP)" in res.output


# ---- one photo ------------------------------------------------------------------------------


def test_group_photo_restore_changes_only_the_eye_holes(group, restorer, tmp_path):
    path, pupils = group
    summary = restore_photos(path, tmp_path / "out", restorer, RestoreOptions(mask="eyes", batch_size=2))
    assert summary.faces == 3 and summary.written == [tmp_path / "out" / "group_restored.png"]
    before = np.asarray(Image.open(path).convert("RGB"))
    after = np.asarray(Image.open(summary.written[0]))
    changed = _changed(before, after)
    # Pixels away from every eye region keep their exact values...
    assert not changed[~_near_eyes(before.shape, pupils, reach=1.35)].any()
    # ...and each face's hole was filled by the model (the eyes are gone).
    for p in pupils:
        for eye in p:
            assert _window_diff(before, after, eye) > 10
    # The same faces in one generator batch give the same photo (batches span faces).
    again = restore_photos(path, tmp_path / "again", restorer, RestoreOptions(mask="eyes", batch_size=8))
    assert np.abs(np.asarray(Image.open(again.written[0])).astype(int) - after).max() <= 1


def test_face_largest_restores_only_the_biggest_face(group, restorer, tmp_path):
    path, pupils = group
    summary = restore_photos(path, tmp_path, restorer, RestoreOptions(mask="mouth", faces=1))
    assert summary.faces == 1
    changed = _changed(path, summary.written[0])
    ys, xs = np.nonzero(changed)
    assert xs.max() < 250  # inside the first (largest) pasted photo
    # mouth hole: below the eyes
    assert ys.min() > pupils[0][:, 1].max() + 10


def test_cli_single_photo_with_compare(tmp_path, tiny_run):
    photo = tmp_path / "in" / "img11.jpg"
    photo.parent.mkdir()
    shutil.copy(DEEPFACE / "img11.jpg", photo)
    out = tmp_path / "out"
    res = runner.invoke(app, ["restore", str(photo), "--mask", "glasses", "--checkpoint", str(tiny_run),
                              "--out", str(out), "--device", "cpu", "--compare", "--ext", "png"])  # lossless: exact pixels
    assert res.exit_code == 0, res.output
    assert "1 of 1 photo(s) restored, 1 face(s)" in res.output
    restored = out / "img11_restored.png"
    before = np.asarray(images.load_image(photo))
    after = np.asarray(Image.open(restored))
    assert after.shape == before.shape
    changed = _changed(before, after)
    assert not changed[~_near_eyes(before.shape, [PUPILS["img11.jpg"]], reach=1.5)].any()
    for eye in PUPILS["img11.jpg"]:
        assert _window_diff(before, after, eye) > 10
    compare = Image.open(out / "img11_compare.png")
    assert compare.width >= 3 * before.shape[1] and compare.height > before.shape[0] + 64


def test_user_mask_is_warped_per_face_and_resized(tmp_path, restorer):
    photo = tmp_path / "img3.jpg"
    shutil.copy(DEEPFACE / "img3.jpg", photo)
    w, h = Image.open(photo).size  # 240x320
    hole = np.zeros((h // 2, w // 2), np.uint8)  # half size, same aspect ratio: resized
    hole[70:80, 40:75] = 255  # over the mouth (full size: rows 140-160, cols 80-150)
    Image.fromarray(hole).save(tmp_path / "m.png")
    summary = restore_photos(photo, tmp_path / "o", restorer, RestoreOptions(mask=str(tmp_path / "m.png"), ext="png"))
    changed = _changed(np.asarray(images.load_image(photo)), summary.written[0])
    box = np.zeros_like(changed)
    box[140:160, 80:150] = True
    assert changed[box].mean() > 0.8
    # The seam reaches at most ~3.5 aligned pixels past the hole (half a pixel of thresholding,
    # the feather, one pixel of interpolation); an aligned pixel is d_photo / d_aligned photo px.
    d_aligned = (TEMPLATE[1, 0] - TEMPLATE[0, 0]) * restorer.size
    reach = int(np.ceil(3.5 * np.linalg.norm(PUPILS["img3.jpg"][1] - PUPILS["img3.jpg"][0]) / d_aligned))
    grown = np.zeros_like(changed)
    grown[140 - reach : 160 + reach, 80 - reach : 150 + reach] = True
    assert not changed[~grown].any()


def test_wrong_aspect_mask_and_blank_photo_write_nothing(tmp_path, tiny_run):
    photo = tmp_path / "img3.jpg"
    shutil.copy(DEEPFACE / "img3.jpg", photo)
    Image.new("L", (300, 100), 255).save(tmp_path / "wide.png")
    out = tmp_path / "out"
    base = ["--checkpoint", str(tiny_run), "--out", str(out), "--device", "cpu"]
    res = runner.invoke(app, ["restore", str(photo), "--mask", str(tmp_path / "wide.png"), *base])
    assert res.exit_code == 2 and "aspect ratios differ" in res.output
    Image.new("RGB", (320, 240), (128, 128, 128)).save(tmp_path / "blank.png")
    res = runner.invoke(app, ["restore", str(tmp_path / "blank.png"), *base])
    assert res.exit_code == 3 and "no face found in" in res.output and "--aligned" in res.output
    assert "Traceback" not in res.output
    assert not out.exists()


def test_aligned_mode_skips_detection(sample_data, restorer, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (90, 90), (200, 180, 160)).save(blank)
    with pytest.raises(NoFaceError, match="pass --aligned"):
        restore_photos(blank, tmp_path / "x", restorer, RestoreOptions())
    assert restore_photos(blank, tmp_path / "x", restorer, RestoreOptions(aligned=True)).faces == 1

    face = tmp_path / "face.png"
    Image.open(sample_data / "examples" / "test_001.png").resize((100, 100), Image.Resampling.BICUBIC).save(face)
    summary = restore_photos(face, tmp_path / "o", restorer, RestoreOptions(mask="center", aligned=True))
    changed = _changed(face, summary.written[0])
    # center = the middle 50% square (25..75), plus the seam (~3 aligned px at 64 -> 5 px at 100)
    assert changed[26:74, 26:74].all()
    outside = np.ones_like(changed)
    outside[20:80, 20:80] = False
    assert not changed[outside].any()


# ---- folders --------------------------------------------------------------------------------


def test_folder_batch_keeps_going_and_lists_problems(tmp_path, tiny_run):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("img11.jpg", "img18.jpg"):
        shutil.copy(DEEPFACE / name, photos / name)
    (photos / "broken.jpg").write_text("not a photo")
    (photos / "notes.txt").write_text("ignored: not a photo suffix")
    Image.new("RGB", (160, 120), "white").save(photos / "empty.png")
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    out = tmp_path / "restored"
    res = runner.invoke(app, ["restore", str(photos), "--checkpoint", str(tiny_run), "--out", str(out),
                              "--device", "cpu", "--batch-size", "1", "--compare"])
    assert res.exit_code == 1, res.output  # some photos were skipped: a partial success (README, exit codes)
    text = " ".join(res.output.split())
    assert "2 of 4 photo(s) restored, 2 face(s)" in text
    assert "no face found:" in text and "empty.png" in text
    assert "broken.jpg" in text and "is not an image" in text
    assert sorted(p.name for p in out.iterdir()) == ["img11_compare.png", "img11_restored.jpg",
                                                     "img18_compare.png", "img18_restored.jpg"]  # JPEG in, JPEG out
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == before
    # Writing into the photos folder where an output name is taken by an input is refused.
    shutil.copy(DEEPFACE / "img3.jpg", photos / "img11_restored.jpg")
    res = runner.invoke(app, ["restore", str(photos), "--checkpoint", str(tiny_run), "--out", str(photos), "--device", "cpu"])
    assert res.exit_code == 2 and "refusing to overwrite the input" in res.output


def test_folder_masks_matched_by_stem(tmp_path, restorer):
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    photos.mkdir()
    masks.mkdir()
    for name in ("img11.jpg", "img3.jpg"):
        shutil.copy(DEEPFACE / name, photos / name)
    hole = np.zeros((320, 240), np.uint8)
    hole[70:110, 80:170] = 255  # img11's eyes
    Image.fromarray(hole).save(masks / "img11.png")
    summary = restore_photos(photos, tmp_path / "out", restorer, RestoreOptions(mask=str(masks), ext="png"))
    assert summary.no_mask == [photos / "img3.jpg"]
    assert [p.name for p in summary.written] == ["img11_restored.png"]  # ext="png"
    assert _changed(photos / "img11.jpg", summary.written[0])[70:110, 80:170].mean() > 0.8


def test_folder_with_no_face_anywhere_exits_3(tmp_path, tiny_run):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        Image.new("RGB", (100, 80), (40 * i, 90, 90)).save(photos / f"plain{i}.png")
    res = runner.invoke(app, ["restore", str(photos), "--checkpoint", str(tiny_run), "--out", str(tmp_path / "o"), "--device", "cpu"])
    assert res.exit_code == 3 and "no face found in any of the 2 photo(s)" in res.output
    assert not (tmp_path / "o").exists()


def test_fixture_photos_batch(fixtures_dir, restorer, tmp_path):
    """A folder of the team's unaligned deepface photos: one face each, eyes filled."""
    src = fixtures_dir / "deepface_unit_dataset_max320"
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("img3.jpg", "img11.jpg", "img18.jpg", "img24.jpg"):
        shutil.copy(src / name, photos / name)
    summary = restore_photos(photos, tmp_path / "out", restorer, RestoreOptions(mask="eyes", batch_size=3, ext="png"))
    assert summary.faces == 4 and len(summary.written) == 4
    for out in summary.written:
        name = out.name.replace("_restored.png", ".jpg")
        before = np.asarray(images.load_image(photos / name))
        after = np.asarray(Image.open(out))
        changed = _changed(before, after)
        if name in PUPILS:
            assert not changed[~_near_eyes(before.shape, [PUPILS[name]], reach=1.35)].any()
            assert all(_window_diff(before, after, eye) > 10 for eye in PUPILS[name])
        assert 0.005 < changed.mean() < 0.2


# ---- options --------------------------------------------------------------------------------


def test_options():
    assert parse_face_option("all") is None and parse_face_option("largest") == 1
    assert parse_face_option(" 3 ") == 3
    for bad in ("0", "-1", "two", ""):
        with pytest.raises(FaceganError, match="--face"):
            parse_face_option(bad)
    res = runner.invoke(app, ["restore", "x.jpg", "--task", "sr", "--mask", "eyes"])
    assert res.exit_code == 2 and "--mask is for --task inpaint" in res.output
    res = runner.invoke(app, ["restore", "x.jpg", "--batch-size", "0"])
    assert res.exit_code == 2 and "--batch-size" in res.output
    res = runner.invoke(app, ["restore", "missing.jpg"])
    assert res.exit_code == 2 and "does not exist" in res.output


def test_choices_are_the_registry_the_backends_and_the_formats():
    """--task, --backend and --format are typer choices; a bad one is one error line, exit code 2."""
    from facegan.commands.export import Format
    from facegan.commands.restore import Backend, TaskName
    from facegan.restoring.backends import BACKENDS
    from facegan.restoring.export import FORMATS
    from facegan.tasks.registry import task_names

    assert [t.value for t in TaskName] == task_names()
    assert tuple(b.value for b in Backend) == BACKENDS and tuple(f.value for f in Format) == FORMATS
    for argv, choices in ((["restore", "x.jpg", "--backend", "foo"], "'torch', 'onnx'"),
                          (["restore", "x.jpg", "--task", "colorize"], "'inpaint', 'sr'"),
                          (["export", "inpaint-128", "--format", "tflite"], "'onnx', 'torchscript'")):
        res = runner.invoke(app, argv)
        errors = [line for line in res.output.splitlines() if line.startswith("error:")]
        assert res.exit_code == 2 and len(errors) == 1 and choices in errors[0], res.output


def test_backend_choice_and_its_refusals(tmp_path):
    from facegan.restoring.backends import open_restorer, pick_backend

    assert pick_backend(None, None) == "torch" and pick_backend(None, "m.onnx") == "onnx"
    assert pick_backend("torch", "run_folder") == "torch"
    with pytest.raises(FaceganError, match="--backend torch cannot run the exported file"):
        pick_backend("torch", "m.onnx")
    with pytest.raises(FaceganError, match="needs --checkpoint MODEL.onnx"):
        open_restorer("inpaint", None, "onnx")
    with pytest.raises(FaceganError, match="--mirror/--no-mirror"):
        open_restorer("inpaint", tmp_path / "m.onnx", mirror=True)
    with pytest.raises(FaceganError, match="ONNX model .* not found"):
        open_restorer("inpaint", tmp_path / "m.onnx")


def test_the_protocol_batches_and_handles_no_faces():
    """:meth:`Restorer.restore` batches for every back-end and answers an empty input itself."""
    calls = []

    class Counting(_BicubicUpscaler):
        def restore_batch(self, faces, holes=None):
            calls.append(len(faces))
            return super().restore_batch(faces, holes)

    restorer = Counting()
    raw, result = restorer.restore(np.zeros((0, 128, 128, 3), np.uint8))
    assert raw.shape == result.shape == (0, 256, 256, 3) and calls == []
    raw, result = restorer.restore(np.zeros((5, 128, 128, 3), np.uint8), batch_size=2)
    assert result.shape == (5, 256, 256, 3) and calls == [2, 2, 1]
    assert restorer.size == 256 and restorer.input_size == 128 and restorer.scale == 2


# ---- super-resolution -----------------------------------------------------------------------


def test_sr_photo_is_upscaled_with_faces_replaced(tiny_sr, tmp_path):
    """A face model whose input is larger than the face (here a reference 128 -> 256 "model") gets
    the face; the rest of the photo is the background upsampler's (bicubic, asked for)."""
    restorer = _BicubicUpscaler(negative=True)
    photo = images.load_image(DEEPFACE / "img11.jpg")
    small = photo.resize((133, 178), Image.Resampling.LANCZOS)  # its face: about the 128 px the "model" takes
    path = tmp_path / "small.png"
    small.save(path)
    summary = restore_photos(path, tmp_path / "o", restorer, RestoreOptions(task="sr", compare=True, background="bicubic"))
    after = np.asarray(Image.open(summary.written[0]))
    assert after.shape == (small.height * 2, small.width * 2, 3)
    bicubic = np.asarray(small.resize((small.width * 2, small.height * 2), Image.Resampling.BICUBIC))
    changed = _changed(bicubic, after)
    pupils = (PUPILS["img11.jpg"] + 0.5) * np.array([133 / 240, 178 / 320]) * 2 - 0.5
    assert not changed[~_near_eyes(after.shape, [pupils], reach=3.5)].any()
    assert changed[_near_eyes(after.shape, [pupils], reach=0.5)].mean() > 0.5
    [(_, choice)] = summary.choices
    assert choice.restorer is restorer and 0.85 * 128 <= choice.face_px <= 128


def test_sr_face_larger_than_every_model_keeps_the_background(tiny_sr, tmp_path):
    """tiny_sr takes 16 px faces: a face several times larger is never shrunk onto it."""
    restorer = TorchRestorer.find("sr", tiny_sr, device="cpu")
    photo = images.load_image(DEEPFACE / "img11.jpg")
    path = tmp_path / "photo.png"
    photo.save(path)
    summary = restore_photos(path, tmp_path / "o", restorer, RestoreOptions(task="sr", scale=2, background="bicubic"))
    after = np.asarray(Image.open(summary.written[0]))
    bicubic = np.asarray(photo.resize((photo.width * 2, photo.height * 2), Image.Resampling.BICUBIC))
    assert np.array_equal(after, bicubic) and summary.faces == 0
    [(_, choice)] = summary.choices
    assert choice.restorer is None and choice.face_px > 16
    res = runner.invoke(app, ["restore", str(path), "--task", "sr", "--scale", "2", "--checkpoint", str(tiny_sr),
                              "--out", str(tmp_path / "x"), "--device", "cpu"])
    assert res.exit_code == 0 and "px face: upscaled with the background" in " ".join(res.output.split())


class _BicubicUpscaler(Restorer):
    """A reference SR "model": plain bicubic enlargement, as a :class:`Restorer` of an SR ×2
    checkpoint without weights.

    With it the restored photo must equal the bicubic-upscaled photo up to resampling error:
    a face pasted back one pixel off would show errors of tens of grey levels.
    """

    def __init__(self, negative: bool = False, size: int = 256) -> None:
        from facegan.checkpoints.checkpoint import Checkpoint
        from facegan.tasks.recipes import load_recipe

        recipe = load_recipe(REPO / "recipes" / "quickstart_sr.yaml", [f"data.size={size}", "model.scale=2"])
        super().__init__(Checkpoint(path="bicubic", task_name="sr", size=size, scale=2, template=None, step=None,
                                    stored_recipe=recipe.model_dump(mode="json"), weights=None))
        self.negative = negative

    def restore_batch(self, faces: np.ndarray, holes=None) -> tuple[np.ndarray, np.ndarray]:
        up = np.stack([np.asarray(Image.fromarray(f).resize((self.size,) * 2, Image.Resampling.BICUBIC)) for f in faces])
        if self.negative:  # a visibly different face (its negative): every replaced pixel changes
            up = (255 - up).astype(np.uint8)
        return up, up


def test_sr_paste_back_geometry(tmp_path):
    photo = images.load_image(DEEPFACE / "img18.jpg").resize((84, 84), Image.Resampling.LANCZOS)
    path = tmp_path / "small.png"
    photo.save(path)
    # its face is about 64 px wide: a 64 -> 128 px reference "model" takes it
    summary = restore_photos(path, tmp_path / "o", _BicubicUpscaler(size=128), RestoreOptions(task="sr", background="bicubic"))
    after = np.asarray(Image.open(summary.written[0])).astype(float)
    bicubic = np.asarray(photo.resize((168, 168), Image.Resampling.BICUBIC)).astype(float)
    diff = np.abs(after - bicubic)
    assert after.shape == (168, 168, 3)
    assert 0.1 < (diff > 0).any(-1).mean() < 0.9  # the face was replaced, the rest was not
    # resampled three times at about its own size (align, 2x, back), the face differs from the one
    # bicubic step of the canvas by a grey level or so (over the replaced pixels: median 1, 90th
    # percentile 7 when measured); a paste one pixel off differs by 10 on average, 28 at the 90th
    changed = diff[(diff > 0).any(-1)]
    assert changed.mean() < 3 and np.percentile(changed, 90) <= 10


# ---- one detection policy ---------------------------------------------------------------------


@pytest.mark.parametrize("photo", ["deepface/img11.jpg", "facenet_pytorch/kate_siegel.png"])
def test_prepare_folder_and_restore_align_a_photo_identically(restorer, tmp_path, photo):
    """Training data and users' photos go through one detection-and-alignment function."""
    from facegan.data.folder import prepare_folder
    from facegan.data.packed import PackedDataset
    from facegan.data.prepare import SAMPLE_DIR
    from facegan.restoring.photo import PhotoRestorer
    from facegan.restoring.planning import PhotoItem

    (tmp_path / "photos" / "alice").mkdir(parents=True)
    shutil.copy(SAMPLE_DIR / photo, tmp_path / "photos" / "alice" / Path(photo).name)
    out = prepare_folder(tmp_path / "photos", tmp_path / "ds", size=restorer.size, workers=1, fractions=(1.0, 0.0, 0.0))
    packed = PackedDataset(out).split("train").images[0]
    job = PhotoRestorer(restorer, RestoreOptions(task="inpaint")).prepare(PhotoItem(SAMPLE_DIR / photo, "eyes"))
    assert np.array_equal(job.faces[0].model_input, packed)
