"""prepare folder: real photos in person sub-folders, every file format and colour mode a user
may have, photos without faces, broken files, EXIF rotation, several faces per photo."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_prepare_celeba import plain
from typer.testing import CliRunner

from facegan.cli import app
from facegan.core.errors import FaceganError
from facegan.data.folder import prepare_folder, scan_folder
from facegan.data.packed import PackedDataset
from facegan.data.splits import parse_fractions, seeded_split
from facegan.faces.geometry import template_points

from helpers import recording_console

SIZE = 48
FRACTIONS = (0.5, 0.25, 0.25)
runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def photo(fixtures: Path, name: str) -> Image.Image:
    return Image.open(fixtures / "deepface_unit_dataset_max320" / name).convert("RGB")


def make_photo_tree(root: Path, fixtures: Path) -> Path:
    """Person sub-folders of deepface photos (groups A, B, D, I of its PROVENANCE) in many formats."""
    src = fixtures / "deepface_unit_dataset_max320"
    for person in ("A", "B", "D", "I", "nobody", ".hidden"):
        (root / person).mkdir(parents=True)
    shutil.copy(src / "img1.jpg", root / "A" / "img1.jpg")
    shutil.copy(src / "img2.jpg", root / "A" / "img2.JPG")
    rgba = photo(fixtures, "img4.jpg").convert("RGBA")
    alpha = np.full(rgba.size[::-1], 255, np.uint8)
    alpha[:20, :20] = 0  # a transparent corner
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(root / "A" / "rgba.png")
    photo(fixtures, "img1.jpg").convert("L").save(root / "A" / "grey.png")
    shutil.copy(src / "img3.jpg", root / "B" / "img3.jpg")
    photo(fixtures, "img12.jpg").convert("CMYK").save(root / "B" / "cmyk.jpg", quality=95)
    grey16 = np.asarray(photo(fixtures, "img3.jpg").convert("L"), np.uint16) * 257
    Image.fromarray(grey16).save(root / "B" / "deep16.png")  # 16-bit greyscale PNG
    photo(fixtures, "img13.jpg").save(root / "D" / "img13.webp", quality=95)
    photo(fixtures, "img14.jpg").save(root / "D" / "img14.bmp")
    shutil.copy(src / "img15.jpg", root / "D" / "img15.jpg")
    # Stored turned 90 degrees; EXIF orientation 6 says "turn it back to view".
    exif = Image.Exif()
    exif[0x0112] = 6
    photo(fixtures, "img15.jpg").transpose(Image.Transpose.ROTATE_90).save(
        root / "D" / "rotated.jpg", quality=95, exif=exif)
    shutil.copy(src / "img24.jpg", root / "I" / "img24.jpg")
    shutil.copy(src / "img25.jpg", root / "I" / "img25.jpg")
    ramp = np.linspace(30, 220, 200)
    Image.fromarray(np.stack([np.add.outer(ramp, ramp) / 2] * 3, -1).astype(np.uint8)).save(
        root / "nobody" / "blank.png")
    (root / "nobody" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 10)
    (root / "notes.txt").write_text("not a photo")
    shutil.copy(src / "img5.jpg", root / ".hidden" / "img5.jpg")
    return root


FACES = {"A/img1.jpg", "A/img2.JPG", "A/rgba.png", "A/grey.png", "B/img3.jpg", "B/cmyk.jpg",
         "B/deep16.png", "D/img13.webp", "D/img14.bmp", "D/img15.jpg", "D/rotated.jpg",
         "I/img24.jpg", "I/img25.jpg"}


@pytest.fixture(scope="module")
def tree(fixtures_dir, tmp_path_factory) -> Path:
    return make_photo_tree(tmp_path_factory.mktemp("photos") / "photos", fixtures_dir)


@pytest.fixture(scope="module")
def prepared(tree, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("out") / "mine"
    console = recording_console()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        prepare_folder(tree, out, size=SIZE, workers=1, fractions=FRACTIONS, console=console)
    finally:
        torch.set_num_threads(threads)
    return out, plain(console.file.getvalue())


def faces_by_file(out: Path) -> dict[str, tuple[str, np.ndarray, np.ndarray, str]]:
    ds = PackedDataset(out)
    found = {}
    for name in ds.split_names:
        split = ds.split(name)
        for f, i, img, lm in zip(split.files, split.identities, split.images, split.landmarks):
            found[f] = (i, img, lm, name)
    return found


def test_every_format_gives_a_face_with_its_identity(prepared):
    out, log = prepared
    ds = PackedDataset(out)
    ds.verify()
    found = faces_by_file(out)
    assert set(found) == FACES
    for f, (identity, image, landmarks, _) in found.items():
        assert identity == f.split("/")[0]
        assert image.shape == (SIZE, SIZE, 3)
        assert np.linalg.norm(landmarks - template_points(SIZE), axis=1).mean() < 2.5, f
    for grey in ("A/grey.png", "B/deep16.png"):
        image = found[grey][1].astype(int)
        assert np.abs(image[..., 0] - image[..., 1]).max() <= 1 and image.std() > 20, grey
    assert ds.meta["folder"]["identity_disjoint"] is True
    assert ds.meta["folder"]["other_files_ignored"] == 1
    assert "15 images in" in log and "(1 other files ignored)" in log
    assert "5 identities from sub-folder names; seeded identity-disjoint split (seed 0)" in log


def test_split_is_seeded_and_identity_disjoint(prepared, tree):
    found = faces_by_file(prepared[0])
    owner: dict[str, str] = {}
    for identity, _, _, split in found.values():
        assert owner.setdefault(identity, split) == split, identity
    again = scan_folder(tree, FRACTIONS, seed=0)
    planned = {s.name: split for split, items in again.sources.items() for s in items}
    assert all(planned[f] == split for f, (_, _, _, split) in found.items())
    assert set(planned.values()) == {"train", "val", "test"}
    other = scan_folder(tree, FRACTIONS, seed=5)
    assert {s.name: split for split, items in other.sources.items() for s in items} != planned


def test_no_face_and_broken_files_are_listed_and_skipped(prepared):
    out, log = prepared
    skipped = PackedDataset(out).meta["skipped"]
    assert skipped["count"] == 2
    assert skipped["no_face"] == [["nobody/blank.png", "no face found"]]
    assert [n for n, _ in skipped["unreadable"]] == ["nobody/broken.jpg"]
    assert "skipped 2 image(s): 1 without a face, 1 unreadable" in log
    assert "nobody/blank.png: no face found" in log and "nobody/broken.jpg" in log


def test_exif_orientation_is_honoured(prepared):
    found = faces_by_file(prepared[0])
    upright, turned = found["D/img15.jpg"][1], found["D/rotated.jpg"][1]
    assert np.abs(upright.astype(float) - turned.astype(float)).mean() < 6


def test_second_run_is_a_no_op_and_changes_need_force(prepared, tree):
    out, _ = prepared
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    console = recording_console()
    prepare_folder(tree, out, size=SIZE, workers=1, fractions=FRACTIONS, console=console)
    assert "nothing to do" in plain(console.file.getvalue())
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    with pytest.raises(FaceganError, match="pass --force"):
        prepare_folder(tree, out, size=SIZE, workers=1, fractions=FRACTIONS, seed=1)
    with pytest.raises(FaceganError, match="pass --force"):
        prepare_folder(tree, out, size=SIZE, workers=1, fractions=FRACTIONS, all_faces=True)


def test_all_faces_keeps_every_face(fixtures_dir, tmp_path):
    left, right = photo(fixtures_dir, "img1.jpg"), photo(fixtures_dir, "img13.jpg")
    canvas = Image.new("RGB", (left.width + right.width + 20, max(left.height, right.height)),
                       (128, 128, 128))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width + 20, 0))
    (tmp_path / "group").mkdir()
    canvas.save(tmp_path / "group" / "two.jpg", quality=95)
    largest = prepare_folder(tmp_path / "group", tmp_path / "largest", size=32, workers=1,
                             fractions=(1.0, 0.0, 0.0))
    assert PackedDataset(largest).split("train").files == ["two.jpg"]
    every = prepare_folder(tmp_path / "group", tmp_path / "every", size=32, workers=1,
                           fractions=(1.0, 0.0, 0.0), all_faces=True)
    ds = PackedDataset(every)
    files = ds.split("train").files
    assert files[:2] == ["two.jpg#0", "two.jpg#1"]
    assert np.array_equal(ds.split("train").images[0],
                          PackedDataset(largest).split("train").images[0])
    assert ds.meta["folder"]["all_faces"] is True


def test_photos_without_sub_folders_and_output_inside_the_input(fixtures_dir, tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    for name in ("img16.jpg", "img17.jpg"):
        shutil.copy(fixtures_dir / "deepface_unit_dataset_max320" / name, root / name)
    console = recording_console()
    out = root / "dataset"  # the dataset is written inside the folder it reads
    prepare_folder(root, out, size=32, workers=1, fractions=(0.5, 0.5, 0.0), console=console)
    log = plain(console.file.getvalue())
    assert "no sub-folders, so identities are unknown and the split (seed 0) is per image, " \
        "not identity-disjoint" in log
    meta = PackedDataset(out).meta
    assert meta["folder"]["identity_disjoint"] is False and meta["folder"]["identities"] is None
    assert [c["count"] for c in meta["splits"].values()] == [1, 1, 0]
    console = recording_console()
    prepare_folder(root, out, size=32, workers=1, fractions=(0.5, 0.5, 0.0), console=console)
    assert "nothing to do" in plain(console.file.getvalue())  # its own output is not an input


# ---- splits ---------------------------------------------------------------------------------


def test_seeded_split_keeps_identities_together_and_follows_fractions():
    singles = seeded_split([""] * 1000, (0.8, 0.1, 0.1), seed=0)
    counts = Counter(singles)
    assert abs(counts["train"] - 800) <= 1 and abs(counts["val"] - 100) <= 1
    assert seeded_split([""] * 1000, (0.8, 0.1, 0.1), seed=0) == singles
    assert seeded_split([""] * 1000, (0.8, 0.1, 0.1), seed=1) != singles
    ids = [f"p{i % 37}" for i in range(500)]
    split = seeded_split(ids, (0.9, 0.05, 0.05), seed=4)
    owner: dict[str, str] = {}
    for identity, name in zip(ids, split):
        assert owner.setdefault(identity, name) == name
    assert set(split) == {"train", "val", "test"}
    assert Counter(split)["train"] > 400


@pytest.mark.parametrize("text, message", [
    ("0.9,0.1", "takes three numbers"),
    ("0.8,0.1,0.2", "must add up to 1"),
    ("0.9,x,0.05", "takes three numbers like 0.9,0.05,0.05"),
    ("1.1,-0.05,-0.05", "must be >= 0 with train > 0"),
])
def test_bad_split_fractions(text, message):
    with pytest.raises(FaceganError, match=message):
        parse_fractions(text)
    assert parse_fractions(" 0.9, 0.05,0.05") == (0.9, 0.05, 0.05)


def test_folder_errors(tmp_path):
    with pytest.raises(FaceganError, match="nowhere does not exist or is not a folder"):
        prepare_folder(tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.md").write_text("x")
    with pytest.raises(FaceganError, match=r"no images found in .*empty \(looked for jpg, jpeg, "
                       r"png, webp, bmp, tif, tiff, in sub-folders too\)"):
        prepare_folder(tmp_path / "empty", tmp_path / "out")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.jpg").write_bytes(os.urandom(100))
    with pytest.raises(FaceganError, match=r"none of the 1 images gave a face \(1 unreadable\); "
                       "nothing was written"):
        prepare_folder(tmp_path / "junk", tmp_path / "out", workers=1)
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_cli(fixtures_dir, tmp_path):
    root = tmp_path / "photos" / "alice"
    root.mkdir(parents=True)
    shutil.copy(fixtures_dir / "deepface_unit_dataset_max320" / "img18.jpg", root / "a.jpg")
    args = ["prepare", "folder", str(tmp_path / "photos"), "--out", str(tmp_path / "out"),
            "--size", "32", "--workers", "1", "--split", "1,0,0"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    text = plain(res.output)
    assert "1 identities from sub-folder names" in text and "train 1 1" in text
    bad = runner.invoke(app, [*args[:-1], "0.5,0.5"])
    assert bad.exit_code == 2 and "--split takes three numbers" in plain(bad.output)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("no photos here")
    empty = runner.invoke(app, ["prepare", "folder", str(tmp_path / "docs"), "--out",
                                str(tmp_path / "x")])
    assert empty.exit_code == 2 and "no images found in" in plain(empty.output)


@pytest.mark.slow
def test_detection_in_two_spawned_workers_gives_the_same_dataset(fixtures_dir, tmp_path,
                                                                  monkeypatch):
    from facegan.data import build

    root = tmp_path / "photos"
    for person, names in (("A", ("img1.jpg", "img2.jpg")), ("B", ("img3.jpg", "img12.jpg"))):
        (root / person).mkdir(parents=True)
        for name in names:
            shutil.copy(fixtures_dir / "deepface_unit_dataset_max320" / name, root / person / name)
    monkeypatch.setitem(build.BATCH, "detect", 1)  # one task per photo, spread over both workers
    one = prepare_folder(root, tmp_path / "one", size=32, workers=1, fractions=(0.5, 0.5, 0.0))
    two = prepare_folder(root, tmp_path / "two", size=32, workers=2, fractions=(0.5, 0.5, 0.0))
    assert PackedDataset(two).meta["timing"]["workers"] == 2
    for name in PackedDataset(one).split_names:
        a, b = PackedDataset(one).split(name), PackedDataset(two).split(name)
        assert a.files == b.files and a.identities == b.identities
        assert np.abs(a.images.astype(int) - b.images.astype(int)).max(initial=0) <= 1
        assert np.abs(a.landmarks - b.landmarks).max(initial=0) < 0.05
