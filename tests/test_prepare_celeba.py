"""prepare celeba: official CelebA layouts (aligned and in the wild) built from real faces.

The trees are made in tmp from the 18 held-out CelebA faces of the shared fixtures (official
CelebA file names, identities from the fixture manifest, landmarks found once with MTCNN and
written in the exact format of list_landmarks_align_celeba.txt).
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

from facegan.cli import app
from facegan.core.errors import FaceganError
from facegan.data import build as build_module
from facegan.data import extract
from facegan.data.annotations import LANDMARK_HEADER
from facegan.data.celeba import prepare_celeba, scan_celeba
from facegan.data.packed import PackedDataset
from facegan.data.packed_writer import PackedWriter, SplitArrays, write_packed
from facegan.faces.align import align_face
from facegan.faces.geometry import CELEBA_SQUARE_BOX, template_points

from helpers import recording_console

SUBSET = "celeba_realigned_178x218_heldout_ids"
SIZE = 64
#: Five landmarks (x y each, pixels of the 178x218 image) from MTCNN, rounded like CelebA's file.
LANDMARKS = {
    "018895.jpg": (68, 115, 109, 115, 91, 132, 70, 153, 107, 152),
    "021447.jpg": (70, 112, 109, 113, 89, 136, 72, 153, 107, 153),
    "023072.jpg": (70, 110, 109, 111, 90, 136, 72, 154, 104, 154),
    "051895.jpg": (70, 112, 109, 111, 86, 137, 72, 154, 107, 154),
    "056399.jpg": (70, 113, 110, 111, 86, 140, 69, 152, 109, 150),
    "069222.jpg": (69, 114, 109, 114, 90, 134, 71, 153, 105, 152),
    "086319.jpg": (73, 111, 110, 111, 81, 136, 77, 152, 105, 153),
    "109163.jpg": (69, 115, 108, 114, 88, 142, 72, 154, 105, 154),
    "116369.jpg": (70, 113, 109, 114, 89, 138, 70, 150, 108, 151),
    "134760.jpg": (71, 115, 108, 116, 90, 131, 72, 153, 106, 154),
    "158900.jpg": (72, 112, 109, 112, 91, 140, 72, 150, 106, 149),
    "160770.jpg": (71, 114, 107, 114, 91, 131, 74, 153, 104, 154),
    "184109.jpg": (72, 113, 107, 110, 97, 137, 74, 154, 102, 151),
    "186925.jpg": (70, 116, 108, 117, 88, 143, 71, 149, 113, 150),
    "188562.jpg": (70, 110, 107, 111, 89, 134, 73, 154, 104, 154),
    "191394.jpg": (69, 110, 109, 111, 90, 137, 72, 152, 107, 152),
    "194937.jpg": (69, 112, 108, 113, 91, 139, 69, 152, 106, 155),
    "200633.jpg": (73, 110, 104, 110, 98, 135, 76, 154, 99, 153),
}
#: Identity -> official partition number in the test tree (identity-disjoint by construction).
PARTITION_OF = {"7322": 1, "7397": 2}
#: Listed in the annotation files but broken: garbage bytes, a truncated JPEG, absent.
GARBAGE, TRUNCATED, ABSENT = "200001.jpg", "200002.jpg", "200003.jpg"

runner = CliRunner()


def plain(text: str) -> str:
    """Whitespace normalised, table borders dropped (rich wraps and boxes its output)."""
    return " ".join(text.translate({ord(c): " " for c in "│┃┏┓┗┛┡┩└┘━─╇┳┻╋┼"}).split())


def text_of(console: Console) -> str:
    return plain(console.file.getvalue())


def identities(fixtures: Path) -> dict[str, str]:
    with open(fixtures / "manifest.csv", newline="") as fh:
        return {Path(r["file"]).name: r["identity"].split("_")[1]
                for r in csv.DictReader(fh) if r["subset"] == SUBSET}


def write_annotations(anno: Path, evl: Path, rows: dict[str, tuple[str, int, tuple]],
                      landmark_file: str = "list_landmarks_align_celeba.txt") -> None:
    """rows: file -> (identity, partition, 10 landmark numbers); official formats."""
    anno.mkdir(parents=True, exist_ok=True)
    evl.mkdir(parents=True, exist_ok=True)
    names = sorted(rows)
    (evl / "list_eval_partition.txt").write_text("".join(f"{f} {rows[f][1]}\n" for f in names))
    (anno / "identity_CelebA.txt").write_text("".join(f"{f} {rows[f][0]}\n" for f in names))
    lines = [f"{f} " + " ".join(str(v) for v in rows[f][2]) for f in names]
    (anno / landmark_file).write_text(f"{len(names)}\n{' '.join(LANDMARK_HEADER)}\n"
                                      + "\n".join(lines) + "\n")


def make_tree(root: Path, fixtures: Path, files=None, broken: bool = True) -> Path:
    """An official-layout CelebA tree: img_align_celeba/, Anno/, Eval/."""
    ids = identities(fixtures)
    files = sorted(LANDMARKS) if files is None else files
    img_dir = root / "img_align_celeba"
    img_dir.mkdir(parents=True)
    rows = {}
    for f in files:
        shutil.copy(fixtures / SUBSET / f, img_dir / f)
        rows[f] = (ids[f], PARTITION_OF.get(ids[f], 0), LANDMARKS[f])
    if broken:
        (img_dir / GARBAGE).write_bytes(os.urandom(3000))
        whole = (fixtures / SUBSET / files[0]).read_bytes()
        (img_dir / TRUNCATED).write_bytes(whole[: len(whole) // 2])
        (img_dir / "not_listed.jpg").write_bytes(whole)
        for f, part, ident in ((GARBAGE, 0, "9997"), (TRUNCATED, 2, "9998"), (ABSENT, 0, "9999")):
            rows[f] = (ident, part, LANDMARKS[files[0]])
    write_annotations(root / "Anno", root / "Eval", rows)
    return root


@pytest.fixture(scope="module")
def tree(fixtures_dir, tmp_path_factory) -> Path:
    return make_tree(tmp_path_factory.mktemp("celeba") / "celeba", fixtures_dir)


@pytest.fixture(scope="module")
def prepared(tree, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("out") / "celeba64"
    console = recording_console()
    prepare_celeba(tree, out, size=SIZE, workers=1, console=console)
    return out, text_of(console)


# ---- counts, splits, identities, images -----------------------------------------------------


def test_counts_splits_and_identities(prepared, fixtures_dir):
    out, log = prepared
    ds = PackedDataset(out)
    ds.verify()
    ids = identities(fixtures_dir)
    expected = {"train": sorted(f for f in LANDMARKS if ids[f] not in PARTITION_OF),
                "val": sorted(f for f in LANDMARKS if PARTITION_OF.get(ids[f]) == 1),
                "test": sorted(f for f in LANDMARKS if PARTITION_OF.get(ids[f]) == 2)}
    owner: dict[str, str] = {}
    for name, files in expected.items():
        split = ds.split(name)
        assert split.files == files  # official partition, file order
        assert split.identities == [ids[f] for f in files]
        assert ds.meta["splits"][name]["identities"] == len(set(split.identities))
        for identity in split.identities:
            assert owner.setdefault(identity, name) == name, f"{identity} crosses splits"
    assert [len(ds.split(n)) for n in ("train", "val", "test")] == [12, 3, 3]
    meta = ds.meta
    assert meta["source"] == "celeba" and meta["size"] == SIZE
    assert meta["crop"]["box"] == list(CELEBA_SQUARE_BOX)
    assert meta["celeba"]["identity_disjoint"] is True
    assert meta["celeba"]["annotations"]["partition"] == "Eval/list_eval_partition.txt"
    assert meta["celeba"]["unlisted_files_ignored"] == 1
    # What it found, then the table.
    # (the two broken files are on disk, so they count as found)
    assert "20 images (178x218 aligned) in img_align_celeba/" in log
    assert "train 13 / val 3 / test 4" in log and "8 identities" in log
    assert "split images identities size on disk" in log
    assert "train 12 4" in log and "val 3 1" in log and "test 3 1" in log


def test_broken_images_are_counted_listed_and_skipped(prepared):
    out, log = prepared
    skipped = PackedDataset(out).meta["skipped"]
    assert skipped["count"] == 3
    assert [name for name, _ in skipped["unreadable"]] == [GARBAGE, TRUNCATED]
    assert "truncated" in dict(skipped["unreadable"])[TRUNCATED]
    assert [name for name, _ in skipped["missing"]] == [ABSENT]
    assert "skipped 3 image(s): 1 missing, 2 unreadable" in log
    for name in (GARBAGE, TRUNCATED, ABSENT):
        assert name in log
    assert "1 image(s) listed in list_eval_partition.txt are missing" in log


def test_images_are_the_square_crop_resized(prepared, tree):
    ds = PackedDataset(prepared[0])
    for name in ds.split_names:
        split = ds.split(name)
        for image, file in zip(split.images, split.files):
            src = Image.open(tree / "img_align_celeba" / file)
            want = src.resize((SIZE, SIZE), Image.Resampling.LANCZOS, box=CELEBA_SQUARE_BOX)
            assert np.array_equal(image, np.asarray(want)), file


def test_landmarks_follow_the_crop(prepared):
    ds = PackedDataset(prepared[0])
    scale = SIZE / 178
    for name in ds.split_names:
        split = ds.split(name)
        for lm, file in zip(split.landmarks, split.files):
            src = np.asarray(LANDMARKS[file], np.float64).reshape(5, 2)
            want = (src + 0.5 - [0, 20]) * scale - 0.5
            assert np.abs(lm - want).max() < 2e-3
        # The aligned CelebA faces sit on facegan's template.
        err = np.linalg.norm(split.landmarks - template_points(SIZE), axis=2).mean(axis=1)
        assert err.max() < 3.0, err  # real faces vary around the mean template


def test_a_landmark_lands_on_the_same_image_feature(fixtures_dir, tmp_path):
    """Mark each landmark with a bright dot in the JPEG; after crop + resize the dot's centre
    is where the stored landmark says (a half-pixel convention slip would be ~1 px here)."""
    root = tmp_path / "marked"
    make_tree(root, fixtures_dir, files=["109163.jpg", "186925.jpg"], broken=False)
    for file in ("109163.jpg", "186925.jpg"):
        img = np.asarray(Image.open(root / "img_align_celeba" / file)).copy()
        for x, y in np.asarray(LANDMARKS[file]).reshape(5, 2):
            img[y - 4 : y + 5, x - 4 : x + 5] = 0
            img[y - 1 : y + 2, x - 1 : x + 2] = 255
        Image.fromarray(img).save(root / "img_align_celeba" / file, quality=100, subsampling=0)
    size = 352  # about 2x upscaling
    out = prepare_celeba(root, tmp_path / "out", size=size, workers=1)
    ds = PackedDataset(out)
    checked = 0
    for name in ds.split_names:
        split = ds.split(name)
        for image, lms in zip(split.images, split.landmarks):
            grey = image.astype(np.float64).mean(axis=2)
            for x, y in lms:
                cx, cy = int(round(x)), int(round(y))
                window = grey[cy - 7 : cy + 8, cx - 7 : cx + 8]
                weight = np.clip(window - 128, 0, None)
                rows, cols = np.mgrid[cy - 7 : cy + 8, cx - 7 : cx + 8]
                found = np.array([(weight * cols).sum(), (weight * rows).sum()]) / weight.sum()
                assert np.hypot(*(found - [x, y])) < 0.35, (found, (x, y))
                checked += 1
    assert checked == 10


# ---- idempotence, force, atomicity ---------------------------------------------------------


def test_second_run_is_a_no_op(prepared, tree):
    out, _ = prepared
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    console = recording_console()
    assert prepare_celeba(tree, out, size=SIZE, workers=1, console=console) == out
    assert "is already prepared from the same inputs and settings (celeba, 64x64); nothing to do" \
        in text_of(console)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_changed_inputs_or_size_need_force(fixtures_dir, tmp_path):
    root = make_tree(tmp_path / "celeba", fixtures_dir, files=sorted(LANDMARKS)[:3], broken=False)
    out = prepare_celeba(root, tmp_path / "out", size=32, workers=1)
    first = PackedDataset(out).meta["inputs_sha256"]
    with pytest.raises(FaceganError, match=r"already holds a celeba dataset at 32x32 .*pass "
                       r"--force to replace it \(a dataset folder holds one size"):
        prepare_celeba(root, out, size=48, workers=1)
    image = root / "img_align_celeba" / sorted(LANDMARKS)[0]
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))
    with pytest.raises(FaceganError, match="pass --force"):
        prepare_celeba(root, out, size=32, workers=1)
    prepare_celeba(root, out, size=32, workers=1, force=True)
    second = PackedDataset(out).meta["inputs_sha256"]
    assert second != first
    lm = root / "Anno" / "list_landmarks_align_celeba.txt"
    lm.write_text(lm.read_text().replace(" 68 115 ", " 67 115 "))
    with pytest.raises(FaceganError, match="pass --force"):
        prepare_celeba(root, out, size=32, workers=1)
    assert PackedDataset(out).meta["inputs_sha256"] == second
    prepare_celeba(root, out, size=48, workers=1, force=True)
    assert PackedDataset(out).size == 48
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_out_holding_something_else_is_refused(fixtures_dir, tmp_path):
    root = make_tree(tmp_path / "celeba", fixtures_dir, files=sorted(LANDMARKS)[:2], broken=False)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep")
    for force in (False, True):
        with pytest.raises(FaceganError, match="not a facegan dataset"):
            prepare_celeba(root, precious, size=32, workers=1, force=force)
    assert (precious / "notes.txt").read_text() == "keep"
    empty = tmp_path / "empty"
    empty.mkdir()
    prepare_celeba(root, empty, size=32, workers=1)  # an empty folder is fine
    assert PackedDataset(empty).size == 32


@pytest.mark.parametrize("existing, workers", [(False, 2), (True, 1)])
def test_an_interrupted_run_leaves_no_dataset(fixtures_dir, tmp_path, monkeypatch, existing,
                                              workers):
    root = make_tree(tmp_path / "celeba", fixtures_dir, files=sorted(LANDMARKS)[:8], broken=False)
    out = tmp_path / "out"
    if existing:
        prepare_celeba(root, out, size=32, workers=1)
        before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    monkeypatch.setitem(build_module.BATCH, "crop", 2)
    calls = []

    def interrupt(done, total):
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare_celeba(root, out, size=48, workers=workers, force=True, on_progress=interrupt)
    assert calls == [2, 4]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    if existing:
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    else:
        assert not out.exists()


def test_two_workers_give_the_same_dataset(prepared, tree, tmp_path, monkeypatch):
    monkeypatch.setitem(build_module.BATCH, "crop", 3)  # several tasks, so both workers work
    out = prepare_celeba(tree, tmp_path / "w2", size=SIZE, workers=2)
    one, two = PackedDataset(prepared[0]), PackedDataset(out)
    assert two.meta["timing"]["workers"] == 2
    for name in one.split_names:
        assert (out / f"{name}.npy").read_bytes() == (prepared[0] / f"{name}.npy").read_bytes()
        assert two.split(name).files == one.split(name).files
    assert two.meta["skipped"] == one.meta["skipped"]


# ---- layouts and error messages -------------------------------------------------------------


def test_annotation_files_may_sit_in_root_or_img_folder_in_img(fixtures_dir, tmp_path):
    root = make_tree(tmp_path / "c", fixtures_dir, files=sorted(LANDMARKS)[:2], broken=False)
    for sub in ("Anno", "Eval"):
        for f in (root / sub).iterdir():
            f.rename(root / f.name)
    (root / "Img").mkdir()
    (root / "img_align_celeba").rename(root / "Img" / "img_align_celeba")
    found = scan_celeba(root)
    assert found.image_dir == root / "Img" / "img_align_celeba"
    assert found.annotation_files["partition"] == root / "list_eval_partition.txt"
    nested = root / "Img" / "img_align_celeba" / "img_align_celeba"  # as some mirrors unzip
    nested.mkdir()
    for f in list((root / "Img" / "img_align_celeba").glob("*.jpg")):
        f.rename(nested / f.name)
    assert scan_celeba(root).image_dir == nested


def _remove(path: Path) -> None:
    path.unlink()


ERRORS = {
    "partition": (lambda r: _remove(r / "Eval" / "list_eval_partition.txt"),
                  "list_eval_partition.txt not found in {root} (nor in its Anno/ or Eval/); "
                  "CelebA's annotation files live in Anno/ and Eval/ of the official release"),
    "identity": (lambda r: _remove(r / "Anno" / "identity_CelebA.txt"),
                 "identity_CelebA.txt not found in {root} (nor in its Anno/ or Eval/); CelebA's "
                 "annotation files live in Anno/ and Eval/"),
    "landmarks": (lambda r: _remove(r / "Anno" / "list_landmarks_align_celeba.txt"),
                  "list_landmarks_align_celeba.txt not found in {root} (nor in its Anno/ or "
                  "Eval/)"),
    "images": (lambda r: shutil.rmtree(r / "img_align_celeba"),
               "no img_align_celeba/ or img_celeba/ folder in {root} (nor in its Img/); unzip "
               "img_align_celeba.zip from the Img/ folder of CelebA's release there"),
    "bad partition line": (lambda r: (r / "Eval" / "list_eval_partition.txt").write_text(
        "018895.jpg 0\n021447.jpg train\n"), "list_eval_partition.txt: 021447.jpg has partition "
        "'train'; expected 0, 1 or 2"),
    "partition columns": (lambda r: (r / "Eval" / "list_eval_partition.txt").write_text(
        "018895.jpg 0 7\n"), "list_eval_partition.txt line 1: expected '<file> <0|1|2>', got "
        "'018895.jpg 0 7'"),
    "landmark count": (lambda r: _edit(r / "Anno" / "list_landmarks_align_celeba.txt",
                                       lambda t: "5" + t[1:]),
                       "list_landmarks_align_celeba.txt says it lists 5 images but lists 2"),
    "landmark header": (lambda r: _edit(r / "Anno" / "list_landmarks_align_celeba.txt",
                                        lambda t: t.replace("lefteye_x", "x1")),
                        "list_landmarks_align_celeba.txt line 2: expected 'lefteye_x lefteye_y "
                        "righteye_x ...'"),
    "landmark entry": (lambda r: _edit(r / "Anno" / "list_landmarks_align_celeba.txt",
                                       lambda t: "1\n" + "\n".join(t.splitlines()[1:3]) + "\n"),
                       "list_landmarks_align_celeba.txt has no entry for 021447.jpg listed in "
                       "list_eval_partition.txt"),
    "no images": (lambda r: [_remove(p) for p in (r / "img_align_celeba").iterdir()],
                  "none of the 2 images listed in list_eval_partition.txt are in"),
}


def _edit(path: Path, change) -> None:
    path.write_text(change(path.read_text()))


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_missing_or_broken_inputs_are_named(fixtures_dir, tmp_path, case):
    root = make_tree(tmp_path / "celeba", fixtures_dir, files=sorted(LANDMARKS)[:2], broken=False)
    damage, message = ERRORS[case]
    damage(root)
    with pytest.raises(FaceganError) as info:
        prepare_celeba(root, tmp_path / "out", size=32, workers=1)
    assert message.format(root=root) in str(info.value)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_bad_arguments(tmp_path):
    with pytest.raises(FaceganError, match="CelebA root .*nowhere does not exist"):
        prepare_celeba(tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(FaceganError, match="--workers must be a positive whole number"):
        prepare_celeba(tmp_path, tmp_path / "out", workers=0)
    with pytest.raises(FaceganError, match="--images must be one of auto, aligned, wild"):
        prepare_celeba(tmp_path, tmp_path / "out", images="hq")


# ---- CelebA in the wild -----------------------------------------------------------------------


def test_in_the_wild_images_are_aligned_from_their_landmarks(fixtures_dir, tmp_path, monkeypatch):
    """img_celeba/ photos: a fixture face placed, rotated and enlarged 3x in a bigger photo
    (so the JPEG is decoded at reduced scale); its landmarks moved with it."""
    files = ["109163.jpg", "186925.jpg", "021447.jpg"]
    root = tmp_path / "wild"
    (root / "img_celeba").mkdir(parents=True)
    ids = identities(fixtures_dir)
    rows, reference = {}, {}
    for k, f in enumerate(files):
        src = Image.open(fixtures_dir / SUBSET / f).convert("RGB")
        angle, scale, offset = (8.0, -12.0, 5.0)[k], 3.0, np.array([150.0 + 40 * k, 90.0])
        theta = np.deg2rad(angle)
        m = scale * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        # Continuous coordinates: photo = m @ source + offset (PIL's transform takes the inverse).
        inv = np.linalg.inv(m)
        back = -inv @ offset
        photo = src.transform((860, 980), Image.Transform.AFFINE,
                              data=(inv[0, 0], inv[0, 1], back[0], inv[1, 0], inv[1, 1], back[1]),
                              resample=Image.Resampling.BICUBIC, fillcolor=(90, 110, 130))
        photo.save(root / "img_celeba" / f, quality=95)
        lm = np.asarray(LANDMARKS[f], np.float64).reshape(5, 2)
        lm_photo = (lm + 0.5) @ m.T + offset - 0.5
        rows[f] = (ids[f], 0, tuple(np.round(lm_photo, 1).ravel()))
        reference[f] = align_face(src, lm, SIZE)[0]
    write_annotations(root / "Anno", root / "Eval", rows, landmark_file="list_landmarks_celeba.txt")
    reductions = []
    real_decode = extract.decode

    def spy(*args, **kwargs):
        img, k = real_decode(*args, **kwargs)
        reductions.append(k)
        return img, k

    monkeypatch.setattr(extract, "decode", spy)
    console = recording_console()
    out = prepare_celeba(root, tmp_path / "out", size=SIZE, workers=1, console=console)
    assert "(in the wild) in img_celeba/" in text_of(console)
    assert reductions == [4, 4, 4]  # face 3x enlarged, 64 px out: JPEG decoded at 1/4 scale
    ds = PackedDataset(out)
    assert ds.meta["crop"]["box"] is None and "similarity" in ds.meta["crop"]["description"]
    train = ds.split("train")
    assert train.files == sorted(files)
    for image, lms, f in zip(train.images, train.landmarks, train.files):
        fit = np.linalg.norm(lms - template_points(SIZE), axis=1).mean()
        assert fit < 2.0
        # Same face, same geometry as aligning the original 178x218 face directly.
        diff = np.abs(image.astype(float) - reference[f].astype(float))[8:-8, 8:-8].mean()
        assert diff < 8, (f, diff)


# ---- the streaming writer --------------------------------------------------------------------


def test_streaming_writer_matches_write_packed(tmp_path):
    rng = np.random.default_rng(0)
    splits = {name: SplitArrays(rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8),
                                [f"{name}{i}.jpg" for i in range(n)], [f"id{i % 2}" for i in range(n)],
                                rng.uniform(0, 7, (n, 5, 2)).astype(np.float32))
              for name, n in (("train", 5), ("val", 0), ("test", 2))}
    meta = {"source": "t", "crop": {"box": None}, "inputs_sha256": "x"}
    write_packed(tmp_path / "a", splits, meta)
    with PackedWriter(tmp_path / "b", 8) as writer:
        for name, s in splits.items():
            writer.start_split(name)
            for i in range(len(s.images)):
                writer.add(s.images[i], s.files[i], s.identities[i], s.landmarks[i])
        writer.finish(meta)
    for name in splits:
        a, b = tmp_path / "a" / f"{name}.npy", tmp_path / "b" / f"{name}.npy"
        assert np.array_equal(np.load(a), np.load(b))
        assert (tmp_path / "a" / f"{name}.csv").read_text() == (tmp_path / "b" / f"{name}.csv").read_text()
    ds = PackedDataset(tmp_path / "b")
    ds.verify()
    assert [ds.meta["splits"][n]["count"] for n in splits] == [5, 0, 2]
    assert [ds.meta["splits"][n]["identities"] for n in splits] == [2, 0, 2]
    with pytest.raises(RuntimeError):
        with PackedWriter(tmp_path / "c", 8) as writer:
            writer.start_split("train")
            writer.add(splits["train"].images[0], "x", "", splits["train"].landmarks[0])
            raise RuntimeError("stop")
    assert not (tmp_path / "c").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


# ---- the command line ------------------------------------------------------------------------


def test_cli(tree, tmp_path):
    out = tmp_path / "cli64"
    args = ["prepare", "celeba", "--root", str(tree), "--out", str(out), "--size", "64",
            "--workers", "1"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    text = plain(res.output)
    assert "train 13 / val 3 / test 4" in text and "train 12 4" in text
    assert "skipped 3 image(s)" in text and GARBAGE in text
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "nothing to do" in " ".join(again.output.split())
    bad = runner.invoke(app, [*args[:-4], "--size", "100"])
    assert bad.exit_code == 2 and "multiple of 16" in bad.output
    missing = runner.invoke(app, ["prepare", "celeba", "--root", str(tmp_path), "--out",
                                  str(tmp_path / "x")])
    assert missing.exit_code == 2
    assert "no img_align_celeba/ or img_celeba/ folder in" in " ".join(missing.output.split())


def test_prepare_help_documents_every_layout():
    res = runner.invoke(app, ["prepare", "--help"])
    assert res.exit_code == 0
    text = " ".join(res.output.split())
    for needle in ("img_align_celeba/000001.jpg", "img_celeba/", "list_eval_partition.txt",
                   "identity_CelebA.txt", "list_landmarks_align_celeba.txt",
                   "list_landmarks_celeba.txt", "Anno", "Eval", "CelebA-HQ-img/0.jpg",
                   "CelebA-HQ-to-CelebA-mapping.txt", "idx orig_idx orig_file",
                   "sub-folder", "celeba-hq", "folder", "sample", "--force", "--size"):
        assert needle in text, needle
    for cmd in ("celeba", "celeba-hq", "folder"):
        res = runner.invoke(app, ["prepare", cmd, "--help"])
        assert res.exit_code == 0 and "Example" in res.output, cmd
