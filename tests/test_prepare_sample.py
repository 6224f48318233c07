"""prepare_sample: the bundled photos become an identity-disjoint packed dataset, once."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from facegan.core.errors import FaceganError
from facegan.data.extract import ExtractJob, Operation, Source, run_job
from facegan.data.packed import PackedDataset
from facegan.data.prepare import SAMPLE_DIR, prepare_sample, read_sample_manifest
from facegan.faces.geometry import template_points

from helpers import recording_console

SIZE = 64


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("sample") / "sample64"
    console = recording_console()
    # MTCNN is a tiny net: on a small shared CPU box, two torch threads stall for up to
    # seconds per photo whenever another process holds a core; one thread does not.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        prepare_sample(out, size=SIZE, console=console)
    finally:
        torch.set_num_threads(threads)
    return out, console.file.getvalue()


@pytest.fixture(scope="module")
def manifest() -> list[dict[str, str]]:
    return read_sample_manifest()


def test_bundled_photos_are_small_and_documented(manifest):
    files = [p for p in SAMPLE_DIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 5 * 1024 * 1024
    assert (SAMPLE_DIR / "PROVENANCE.md").is_file()
    photos = {str(p.relative_to(SAMPLE_DIR)) for p in files if p.suffix in (".jpg", ".png")}
    assert photos == {row["file"] for row in manifest}
    assert {row["source_repo"] for row in manifest} == {
        "timesler/facenet-pytorch", "serengil/deepface", "TencentARC/GFPGAN"}
    assert all(row["licence"] in ("MIT", "Apache-2.0") for row in manifest)


def test_manifest_splits_are_identity_disjoint(manifest):
    by_split = {s: {r["identity"] for r in manifest if r["split"] == s}
                for s in ("train", "val", "test")}
    assert not by_split["train"] & by_split["val"]
    assert not by_split["train"] & by_split["test"]
    assert not by_split["val"] & by_split["test"]
    counts = Counter(r["split"] for r in manifest)
    assert counts == {"train": 24, "val": 4, "test": 6}


def test_counts_identities_and_meta(prepared, manifest):
    out, log = prepared
    ds = PackedDataset(out)
    assert ds.size == SIZE and ds.split_names == ["train", "val", "test"]
    meta = ds.meta
    assert meta["source"] == "sample" and meta["skipped"]["count"] == 0
    for key in ("format", "format_version", "facegan_version", "template", "crop", "splits",
                "inputs_sha256", "created"):
        assert key in meta
    seen: dict[str, str] = {}
    for name in ds.split_names:
        split = ds.split(name)
        rows = [r for r in manifest if r["split"] == name]
        assert len(split) == len(rows) == meta["splits"][name]["count"]
        assert sorted(split.files) == sorted(r["file"] for r in rows)
        expected = {r["file"]: r["identity"] for r in rows}
        assert [expected[f] for f in split.files] == split.identities
        for identity in split.identities:
            assert seen.setdefault(identity, name) == name, f"{identity} in two splits"
        assert split.images.shape == (len(rows), SIZE, SIZE, 3)
    ds.verify()
    for name in ("train", "val", "test"):
        assert name in log


def test_landmarks_sit_on_the_template(prepared):
    ds = PackedDataset(prepared[0])
    target = template_points(SIZE)
    for name in ds.split_names:
        split = ds.split(name)
        err = np.linalg.norm(split.landmarks - target, axis=2)  # (N, 5) pixels at 64x64
        assert err.mean(axis=1).max() < 2.5, (name, err.mean(axis=1))
        # Faces, not padding: the centre of every aligned image has detail.
        centre = split.images[:, SIZE // 4 : -SIZE // 4, SIZE // 4 : -SIZE // 4].astype(float)
        assert (centre.std(axis=(1, 2, 3)) > 10).all()


def test_second_call_is_a_no_op(prepared):
    out, _ = prepared
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    console = recording_console()
    assert prepare_sample(out, size=SIZE, console=console) == out
    assert "already prepared" in console.file.getvalue()
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_a_different_dataset_needs_force(prepared):
    out, _ = prepared
    with pytest.raises(FaceganError, match="pass --force"):
        prepare_sample(out, size=SIZE + 16)
    assert PackedDataset(out).size == SIZE


def test_detection_skips_what_it_cannot_use(tmp_path):
    """The sample is packed by the same ``detect`` operation as any folder of photos."""
    (tmp_path / "text.jpg").write_text("not a photo")
    from PIL import Image

    Image.new("RGB", (80, 60), (90, 90, 90)).save(tmp_path / "blank.png")
    good = SAMPLE_DIR / "deepface" / "img20.jpg"
    sources = [Source(str(tmp_path / "text.jpg"), "text.jpg", "a"), Source(str(tmp_path / "blank.png"), "blank.png", "b"),
               Source(str(good), "img20.jpg", "c")]
    result = run_job(ExtractJob("train", Operation("detect", 32, exif=True), sources))
    assert [(f.name, f.identity) for f in result.faces] == [("img20.jpg", "c")]
    assert result.faces[0].image.shape == (32, 32, 3)
    assert result.faces[0].landmarks.shape == (5, 2)
    reasons = {p.name: p.reason for p in result.problems}
    assert "not an image" in reasons["text.jpg"]
    assert reasons["blank.png"] == "no face found"
    assert result.sources == 3


def test_manifest_csv_parses_with_the_documented_columns():
    with open(SAMPLE_DIR / "manifest.csv", newline="") as fh:
        header = next(csv.reader(fh))
    for column in ("file", "identity", "split", "source_repo", "licence"):
        assert column in header
