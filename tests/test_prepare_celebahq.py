"""prepare celeba-hq: CelebAMask-HQ layout, splits inherited from CelebA, MTCNN alignment.

The tree is made in tmp from the 18 held-out CelebA faces of the shared fixtures: each face's
centre square upscaled to a 256x256 JPEG named like CelebA-HQ (``N.jpg``), with a
``CelebA-HQ-to-CelebA-mapping.txt`` pointing at its official CelebA file name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_prepare_celeba import LANDMARKS, PARTITION_OF, SUBSET, identities, plain
from typer.testing import CliRunner

from facegan.cli import app
from facegan.core.errors import FaceganError
from facegan.data import extract
from facegan.data.celebahq import NO_DISJOINT_WARNING, describe, prepare_celebahq, scan_celebahq
from facegan.data.packed import PackedDataset
from facegan.faces.align import align_face
from facegan.faces.geometry import CELEBA_SQUARE_BOX, template_points

from helpers import recording_console

SIZE = 64
HQ_SIDE = 256
NO_FACE_SOURCE, MISSING_SOURCE = "000006.jpg", "000007.jpg"
runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_hq_tree(root: Path, fixtures: Path, files: list[str], extras: bool = True,
                 side: int = HQ_SIDE) -> Path:
    """CelebA-HQ-img/N.jpg + the mapping file; with ``extras`` a faceless image and a missing one.

    Returns the tree; CelebA's annotation files for the sources are written by
    :func:`make_celeba_annotations`.
    """
    img_dir = root / "CelebA-HQ-img"
    img_dir.mkdir(parents=True)
    rows = []
    for i, f in enumerate(files):
        face = Image.open(fixtures / SUBSET / f).convert("RGB").crop(CELEBA_SQUARE_BOX)
        face.resize((side, side), Image.Resampling.LANCZOS).save(img_dir / f"{i}.jpg",
                                                               quality=95)
        rows.append((i, int(f[:-4]) - 1, f))
    if extras:
        ramp = np.linspace(40, 220, HQ_SIDE, dtype=np.float64)
        flat = np.stack([np.add.outer(ramp, ramp) / 2] * 3, axis=-1).astype(np.uint8)
        Image.fromarray(flat).save(img_dir / f"{len(files)}.jpg", quality=95)
        rows.append((len(files), 5, NO_FACE_SOURCE))
        rows.append((len(files) + 1, 6, MISSING_SOURCE))  # listed, never unpacked
    lines = [f"{i:<6}{orig:<10}{name}" for i, orig, name in rows]  # the real file pads columns
    (root / "CelebA-HQ-to-CelebA-mapping.txt").write_text(
        "idx      orig_idx orig_file\n" + "\n".join(lines) + "\n")
    return root


def make_celeba_annotations(folder: Path, fixtures: Path, which=("partition", "identity")) -> Path:
    """CelebA's list_eval_partition.txt (Eval/) and identity_CelebA.txt (Anno/) for the sources."""
    ids = identities(fixtures)
    rows = {f: (ids[f], PARTITION_OF.get(ids[f], 0)) for f in LANDMARKS}
    rows[NO_FACE_SOURCE], rows[MISSING_SOURCE] = ("9001", 0), ("9002", 2)
    if "partition" in which:
        (folder / "Eval").mkdir(parents=True, exist_ok=True)
        (folder / "Eval" / "list_eval_partition.txt").write_text(
            "".join(f"{f} {p}\n" for f, (_, p) in sorted(rows.items())))
    if "identity" in which:
        (folder / "Anno").mkdir(parents=True, exist_ok=True)
        (folder / "Anno" / "identity_CelebA.txt").write_text(
            "".join(f"{f} {i}\n" for f, (i, _) in sorted(rows.items())))
    return folder


@pytest.fixture(scope="module")
def trees(fixtures_dir, tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("hq")
    hq = make_hq_tree(base / "CelebAMask-HQ", fixtures_dir, sorted(LANDMARKS))
    return hq, make_celeba_annotations(base / "celeba", fixtures_dir)


@pytest.fixture(scope="module")
def prepared(trees, tmp_path_factory) -> tuple[Path, str]:
    hq, celeba = trees
    out = tmp_path_factory.mktemp("out") / "hq64"
    console = recording_console()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        prepare_celebahq(hq, out, size=SIZE, workers=1, celeba=celeba, console=console)
    finally:
        torch.set_num_threads(threads)
    return out, plain(console.file.getvalue())


def test_splits_and_identities_follow_the_source_celeba_images(prepared, fixtures_dir):
    out, log = prepared
    ds = PackedDataset(out)
    ds.verify()
    ids = identities(fixtures_dir)
    hq_of = {f: f"{i}.jpg" for i, f in enumerate(sorted(LANDMARKS))}
    owner: dict[str, str] = {}
    for name, part in (("train", 0), ("val", 1), ("test", 2)):
        sources = [f for f in sorted(LANDMARKS) if PARTITION_OF.get(ids[f], 0) == part]
        split = ds.split(name)
        assert split.files == [hq_of[f] for f in sources]
        assert split.identities == [ids[f] for f in sources]
        for identity in split.identities:
            assert owner.setdefault(identity, name) == name
    meta = ds.meta
    assert meta["source"] == "celeba-hq" and meta["celeba_hq"]["split"] == "official"
    assert meta["celeba_hq"]["identity_disjoint"] is True
    assert meta["crop"]["box"] is None and meta["crop"]["alignment"]
    assert "split: CelebA's official partition of each source image: train 13 / val 3 / test 3" \
        in log
    assert "identity-disjointness cannot be guaranteed" not in log
    assert "train 12 4" in log and "val 3 1" in log and "test 3 1" in log


def test_faceless_and_missing_images_are_listed(prepared):
    out, log = prepared
    skipped = PackedDataset(out).meta["skipped"]
    assert skipped["count"] == 2
    assert skipped["no_face"] == [["18.jpg", "no face found"]]
    assert [n for n, _ in skipped["missing"]] == ["19.jpg"]
    assert "skipped 2 image(s): 1 missing, 1 without a face" in log
    assert "18.jpg: no face found" in log


def test_faces_are_aligned_onto_the_celeba_template(prepared, fixtures_dir):
    ds = PackedDataset(prepared[0])
    names = sorted(LANDMARKS)
    diffs = []
    for name in ds.split_names:
        split = ds.split(name)
        err = np.linalg.norm(split.landmarks - template_points(SIZE), axis=2).mean(axis=1)
        assert err.max() < 2.5, err  # least-squares fit: real faces vary around the template
        for image, file in zip(split.images, split.files):
            # The same face aligned straight from the 178x218 original with the (rounded)
            # MTCNN landmarks found there.
            src = names[int(file[:-4])]
            original = Image.open(fixtures_dir / SUBSET / src).convert("RGB")
            reference = align_face(original, np.reshape(LANDMARKS[src], (5, 2)), SIZE)[0]
            diffs.append(np.abs(image.astype(float) - reference.astype(float))[8:-8, 8:-8].mean())
    # Measured: mean 7.7, max 13.2; the same faces misplaced by 2 output pixels score 22-25.
    assert np.mean(diffs) < 11 and max(diffs) < 18, diffs


def test_second_run_is_a_no_op(prepared, trees):
    out, _ = prepared
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    console = recording_console()
    prepare_celebahq(trees[0], out, size=SIZE, workers=1, celeba=trees[1], console=console)
    assert "nothing to do" in plain(console.file.getvalue())
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    with pytest.raises(FaceganError, match="pass --force"):  # another split source
        prepare_celebahq(trees[0], out, size=SIZE, workers=1)


@pytest.mark.parametrize("size, reductions", [(64, [2]), (256, [2, 1])])
def test_full_size_images_are_decoded_at_the_scale_the_face_needs(
        fixtures_dir, tmp_path, monkeypatch, size, reductions):
    """1024-px images: decoded at 1/2 for detection at 512; kept for a 64-px face, decoded
    again at full scale for a 256-px face (two source pixels per output pixel)."""
    src = "109163.jpg"
    hq = make_hq_tree(tmp_path / "hq", fixtures_dir, [src], extras=False, side=1024)
    seen = []
    real_decode = extract.decode

    def spy(*args, **kwargs):
        img, k = real_decode(*args, **kwargs)
        seen.append(k)
        return img, k

    monkeypatch.setattr(extract, "decode", spy)
    out = prepare_celebahq(hq, tmp_path / "out", size=size, workers=1, fractions=(1.0, 0.0, 0.0))
    assert seen == reductions
    split = PackedDataset(out).split("train")
    assert np.linalg.norm(split.landmarks[0] - template_points(size), axis=1).mean() < 2.5 * size / 64
    original = Image.open(fixtures_dir / SUBSET / src).convert("RGB")
    reference = align_face(original, np.reshape(LANDMARKS[src], (5, 2)), size)[0]
    m = size // 8
    diff = np.abs(split.images[0].astype(float) - reference.astype(float))[m:-m, m:-m].mean()
    assert diff < 12, diff


# ---- without CelebA's annotation files ------------------------------------------------------


def test_without_annotations_the_split_is_seeded_and_the_run_says_so(fixtures_dir, tmp_path):
    files = sorted(LANDMARKS)[:4]
    hq = make_hq_tree(tmp_path / "hq", fixtures_dir, files, extras=False)
    console = recording_console()
    out = prepare_celebahq(hq, tmp_path / "out", size=32, workers=1, console=console,
                           fractions=(0.5, 0.25, 0.25), seed=3)
    log = plain(console.file.getvalue())
    assert "warning: identity-disjointness cannot be guaranteed" in log
    meta = PackedDataset(out).meta
    assert meta["celeba_hq"]["identity_disjoint"] is None
    assert meta["celeba_hq"]["split"] == "seeded"
    assert meta["celeba_hq"]["seeded"] == {"fractions": [0.5, 0.25, 0.25], "seed": 3}
    ds = PackedDataset(out)
    assert [len(ds.split(n)) for n in ds.split_names] == [2, 1, 1]
    assert all(i == "" for n in ds.split_names for i in ds.split(n).identities)
    again = scan_celebahq(hq, fractions=(0.5, 0.25, 0.25), seed=3)
    assert {n: [s.name for s in v] for n, v in again.sources.items()} == \
        {n: ds.split(n).files for n in ds.split_names}


def test_annotation_files_in_the_hq_root_are_found(fixtures_dir, tmp_path):
    files = sorted(LANDMARKS)
    hq = make_hq_tree(tmp_path / "hq", fixtures_dir, files, extras=False)
    make_celeba_annotations(hq, fixtures_dir, which=("identity",))
    found = scan_celebahq(hq, fractions=(0.6, 0.2, 0.2), seed=1)
    assert found.split_mode == "seeded-identity" and found.identity_disjoint is True
    assert found.shared_identities == 0 and found.identities == 6
    assert NO_DISJOINT_WARNING not in describe(found)
    assert "seeded, identity-disjoint" in describe(found)
    make_celeba_annotations(hq, fixtures_dir, which=("partition",))
    found = scan_celebahq(hq)
    assert found.split_mode == "official" and found.files["partition"].parent.name == "Eval"
    assert [len(v) for v in found.sources.values()] == [12, 3, 3]


ERRORS = {
    "image folder": (lambda hq, c: (hq / "CelebA-HQ-img").rename(hq / "images"),
                     "CelebA-HQ-img/ not found in {hq}; CelebAMask-HQ unpacks to a folder holding "
                     "CelebA-HQ-img/ and CelebA-HQ-to-CelebA-mapping.txt; pass that folder as "
                     "--root"),
    "mapping": (lambda hq, c: (hq / "CelebA-HQ-to-CelebA-mapping.txt").unlink(),
                "CelebA-HQ-to-CelebA-mapping.txt not found in {hq}; CelebAMask-HQ unpacks"),
    "mapping header": (lambda hq, c: (hq / "CelebA-HQ-to-CelebA-mapping.txt").write_text(
        "0 5 000006.jpg\n"), "CelebA-HQ-to-CelebA-mapping.txt should start with the header "
        "'idx orig_idx orig_file', found '0 5 000006.jpg'"),
    "mapping row": (lambda hq, c: (hq / "CelebA-HQ-to-CelebA-mapping.txt").write_text(
        "idx orig_idx orig_file\n0 x 000006.jpg\n"), "CelebA-HQ-to-CelebA-mapping.txt line 2: "
        "expected '<idx> <orig_idx> <orig_file>', got '0 x 000006.jpg'"),
    "partition": (lambda hq, c: (c / "Eval" / "list_eval_partition.txt").unlink(),
                  "list_eval_partition.txt not found in {c} (nor in its Anno/ or Eval/); "
                  "CelebA's annotation files live in Anno/ and Eval/ of the official release"),
    "unknown source": (lambda hq, c: (c / "Eval" / "list_eval_partition.txt").write_text(
        "018895.jpg 0\n"), "list_eval_partition.txt has no entry for 021447.jpg, the source of "
        "CelebA-HQ 1.jpg; use the annotation files of the original CelebA"),
    "no images": (lambda hq, c: [p.unlink() for p in (hq / "CelebA-HQ-img").iterdir()],
                  "none of the 2 images listed in CelebA-HQ-to-CelebA-mapping.txt are in"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_missing_or_broken_inputs_are_named(fixtures_dir, tmp_path, case):
    hq = make_hq_tree(tmp_path / "hq", fixtures_dir, sorted(LANDMARKS)[:2], extras=False)
    celeba = make_celeba_annotations(tmp_path / "celeba", fixtures_dir)
    damage, message = ERRORS[case]
    damage(hq, celeba)
    with pytest.raises(FaceganError) as info:
        prepare_celebahq(hq, tmp_path / "out", size=32, workers=1, celeba=celeba)
    assert message.format(hq=hq, c=celeba) in str(info.value)
    assert not (tmp_path / "out").exists()


def test_bad_celeba_folder_and_root(tmp_path):
    with pytest.raises(FaceganError, match="CelebA-HQ root .*nowhere does not exist"):
        prepare_celebahq(tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "CelebA-HQ-img").mkdir()
    (tmp_path / "CelebA-HQ-to-CelebA-mapping.txt").write_text("idx orig_idx orig_file\n0 0 a.jpg\n")
    with pytest.raises(FaceganError, match="--celeba .*absent does not exist"):
        prepare_celebahq(tmp_path, tmp_path / "out", celeba=tmp_path / "absent")


def test_cli(fixtures_dir, tmp_path):
    hq = make_hq_tree(tmp_path / "hq", fixtures_dir, sorted(LANDMARKS)[:3], extras=False)
    args = ["prepare", "celeba-hq", "--root", str(hq), "--out", str(tmp_path / "out"), "--size",
            "32", "--workers", "1", "--split", "0.4,0.3,0.3", "--seed", "2"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    text = plain(res.output)
    assert "identity-disjointness cannot be guaranteed" in text and "size on disk" in text
    bad = runner.invoke(app, [*args[:-4], "--split", "0.9,0.2,0.1"])
    assert bad.exit_code == 2 and "must add up to 1" in plain(bad.output)
