"""packed.py: round trip, memory mapping, atomic and forced writes, every validation error."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from facegan.core.errors import FaceganError
from facegan.data import packed_writer
from facegan.data.packed import PackedDataset, existing_inputs_hash
from facegan.data.packed_writer import SplitArrays, write_packed
from facegan.faces.geometry import TEMPLATE, TEMPLATE_NAME

SIZE = 8


def make_split(n: int, seed: int) -> SplitArrays:
    rng = np.random.default_rng(seed)
    return SplitArrays(
        images=rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8),
        files=[f"photos/{seed}_{i}, odd \"name\".jpg" for i in range(n)],
        identities=[f"id{(seed * 10 + i) // 2}" for i in range(n)],
        landmarks=rng.uniform(0, SIZE - 1, (n, 5, 2)).astype(np.float32),
    )


def make_splits(seed: int = 0) -> dict[str, SplitArrays]:
    return {"train": make_split(5, seed + 1), "val": make_split(2, seed + 2),
            "test": make_split(3, seed + 3)}


META = {"source": "unit-test", "crop": {"description": "synthetic", "box": None},
        "inputs_sha256": "abc123"}


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_round_trip(tmp_path):
    splits = make_splits()
    out = write_packed(tmp_path / "ds", splits, META)
    ds = PackedDataset(out)
    assert ds.path == out and ds.size == SIZE
    assert ds.split_names == ["train", "val", "test"]
    assert np.allclose(ds.template, TEMPLATE)
    meta = ds.meta
    assert meta["format"] == "facegan-packed" and meta["format_version"] == 1
    assert meta["source"] == "unit-test" and meta["crop"] == META["crop"]
    assert meta["template"]["name"] == TEMPLATE_NAME
    assert meta["inputs_sha256"] == "abc123" and "facegan_version" in meta and "created" in meta
    for name, arrays in splits.items():
        split = ds.split(name)
        assert split.name == name and len(split) == len(arrays.images)
        assert np.array_equal(split.images, arrays.images)
        assert split.files == arrays.files and split.identities == arrays.identities
        assert split.landmarks.dtype == np.float32 and split.landmarks.shape == (len(split), 5, 2)
        assert np.abs(split.landmarks - arrays.landmarks).max() <= 5e-4
        info = meta["splits"][name]
        assert info["count"] == len(arrays.images)
        assert info["identities"] == len(set(arrays.identities))
        assert info["sha256"] == hashlib.sha256((out / f"{name}.npy").read_bytes()).hexdigest()
    ds.verify()
    assert existing_inputs_hash(out) == "abc123"
    assert existing_inputs_hash(tmp_path) is None
    assert leftovers(tmp_path) == []


def test_images_are_memory_mapped_read_only(tmp_path):
    out = write_packed(tmp_path / "ds", make_splits(), META)
    images = PackedDataset(out).split("train").images
    assert isinstance(images, np.memmap)
    assert not images.flags.writeable


def test_verify_detects_a_changed_file(tmp_path):
    out = write_packed(tmp_path / "ds", make_splits(), META)
    data = bytearray((out / "val.npy").read_bytes())
    data[-1] ^= 0xFF
    (out / "val.npy").write_bytes(bytes(data))
    with pytest.raises(FaceganError, match=r"val\.npy does not match the sha256"):
        PackedDataset(out).verify()


def test_existing_output_needs_force(tmp_path):
    out = write_packed(tmp_path / "ds", make_splits(0), META)
    with pytest.raises(FaceganError, match="already exists; pass --force"):
        write_packed(out, make_splits(1), META)
    assert np.array_equal(PackedDataset(out).split("train").images, make_splits(0)["train"].images)


def test_force_replaces_the_dataset(tmp_path):
    out = write_packed(tmp_path / "ds", make_splits(0), META)
    write_packed(out, {"train": make_split(4, 9)}, {**META, "inputs_sha256": "new"}, force=True)
    ds = PackedDataset(out)
    assert ds.split_names == ["train"]
    assert np.array_equal(ds.split("train").images, make_split(4, 9).images)
    assert not (out / "val.npy").exists()
    assert existing_inputs_hash(out) == "new"
    assert leftovers(tmp_path) == []


def test_force_refuses_a_folder_that_is_not_a_dataset(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("do not delete")
    with pytest.raises(FaceganError, match="is not a facegan dataset; refusing"):
        write_packed(precious, make_splits(), META, force=True)
    assert (precious / "thesis.txt").read_text() == "do not delete"
    empty = tmp_path / "empty"
    empty.mkdir()
    write_packed(empty, make_splits(), META, force=True)
    assert PackedDataset(empty).size == SIZE


@pytest.mark.parametrize("existing", [True, False])
def test_failure_mid_write_leaves_output_untouched(tmp_path, monkeypatch, existing):
    out = tmp_path / "ds"
    if existing:
        write_packed(out, make_splits(0), META)
        before = {p.relative_to(out): p.read_bytes() for p in out.rglob('*') if p.is_file()}
    calls = []

    def failing_close(stream):
        calls.append(stream.name)
        if len(calls) == 2:  # after train.npy, train.csv and val.npy are on disk
            raise RuntimeError("disk full")
        return original(stream)

    original = packed_writer._SplitStream.close
    monkeypatch.setattr(packed_writer._SplitStream, "close", failing_close)
    with pytest.raises(RuntimeError, match="disk full"):
        write_packed(out, make_splits(1), META, force=True)
    assert leftovers(tmp_path) == []
    if existing:
        assert {p.relative_to(out): p.read_bytes() for p in out.rglob('*') if p.is_file()} == before
    else:
        assert not out.exists()


def test_writer_rejects_inconsistent_arrays(tmp_path):
    bad = make_split(3, 0)
    bad.files = bad.files[:2]
    with pytest.raises(ValueError, match="3 images but 2 files"):
        write_packed(tmp_path / "ds", {"train": bad}, META)
    with pytest.raises(ValueError, match="different image sizes"):
        big = make_split(2, 1)
        big.images = np.zeros((2, 16, 16, 3), np.uint8)
        write_packed(tmp_path / "ds", {"train": make_split(2, 0), "val": big}, META)
    with pytest.raises(ValueError, match="lacks 'crop'"):
        write_packed(tmp_path / "ds", make_splits(), {"source": "x"})
    assert not (tmp_path / "ds").exists()


# ---- reader validation --------------------------------------------------------------------


def edit_meta(out: Path, change) -> None:
    meta = json.loads((out / "meta.json").read_text())
    change(meta)
    (out / "meta.json").write_text(json.dumps(meta))


def write_csv_text(out: Path, name: str, edit) -> None:
    lines = (out / f"{name}.csv").read_text().splitlines()
    (out / f"{name}.csv").write_text("\n".join(edit(lines)) + "\n")


CORRUPTIONS = {
    "no meta": (lambda o: (o / "meta.json").unlink(),
                r"is not a facegan dataset \(no meta\.json\); create one with `facegan prepare "
                r"sample` or `facegan prepare celeba`"),
    "bad json": (lambda o: (o / "meta.json").write_text("{not json"),
                 r"meta\.json is not valid JSON"),
    "format": (lambda o: edit_meta(o, lambda m: m.update(format="other")),
               r"is not a facegan dataset \(meta\.json format is 'other'"),
    "version": (lambda o: edit_meta(o, lambda m: m.update(format_version=2)),
                r"is packed format version 2; this facegan reads version 1"),
    "missing key": (lambda o: edit_meta(o, lambda m: m.pop("source")),
                    r"meta\.json lacks 'source'"),
    "bad size": (lambda o: edit_meta(o, lambda m: m.update(size="big")), r"bad size 'big'"),
    "bad template": (lambda o: edit_meta(o, lambda m: m["template"].update(points=[[0, 1]])),
                     r"bad template"),
    "bad count": (lambda o: edit_meta(o, lambda m: m["splits"]["val"].pop("count")),
                  r"split 'val' has no valid count"),
    "npy missing": (lambda o: (o / "test.npy").unlink(),
                    r"test\.npy is missing \(meta\.json lists split 'test'\)"),
    "npy garbage": (lambda o: (o / "val.npy").write_bytes(b"garbage bytes"),
                    r"val\.npy is not a valid \.npy file"),
    "npy shape": (lambda o: np.save(o / "val.npy", np.zeros((2, SIZE, SIZE, 1), np.uint8)),
                  r"val\.npy holds uint8 \(2, 8, 8, 1\) but meta\.json says uint8 \(2, 8, 8, 3\)"),
    "npy dtype": (lambda o: np.save(o / "val.npy", np.zeros((2, SIZE, SIZE, 3), np.float32)),
                  r"val\.npy holds float32"),
    "count": (lambda o: edit_meta(o, lambda m: m["splits"]["train"].update(count=6)),
              r"train\.npy holds uint8 \(5, 8, 8, 3\) but meta\.json says uint8 \(6, 8, 8, 3\)"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_open_errors(tmp_path, case):
    out = write_packed(tmp_path / "ds", make_splits(), META)
    corrupt, message = CORRUPTIONS[case]
    corrupt(out)
    with pytest.raises(FaceganError, match=message) as info:
        PackedDataset(out)
    assert "\n" not in str(info.value)


def test_not_a_folder(tmp_path):
    with pytest.raises(FaceganError, match=r"nowhere is not a facegan dataset \(no meta\.json\)"):
        PackedDataset(tmp_path / "nowhere")


CSV_CORRUPTIONS = {
    "csv missing": (lambda o: (o / "val.csv").unlink(), r"val\.csv is missing"),
    "header": (lambda o: write_csv_text(o, "val", lambda ls: ["file,who"] + ls[1:]),
               r"val\.csv has header \['file', 'who'\]; expected file,identity,lm0_x"),
    "too few rows": (lambda o: write_csv_text(o, "val", lambda ls: ls[:-1]),
                     r"val\.csv has 1 rows but meta\.json says 2"),
    "too many rows": (lambda o: write_csv_text(o, "val", lambda ls: ls + [ls[-1]]),
                      r"val\.csv has more rows than meta\.json's count 2"),
    "columns": (lambda o: write_csv_text(o, "val", lambda ls: ls[:2] + [ls[2] + ",7"]),
                r"val\.csv line 3: 13 columns, expected 12"),
    "number": (lambda o: write_csv_text(o, "val", lambda ls: ls[:2] + [ls[2][:-5] + "x.5"]),
               r"val\.csv line 3: a landmark is not a number"),
}


@pytest.mark.parametrize("case", sorted(CSV_CORRUPTIONS))
def test_split_table_errors(tmp_path, case):
    out = write_packed(tmp_path / "ds", make_splits(), META)
    corrupt, message = CSV_CORRUPTIONS[case]
    corrupt(out)
    ds = PackedDataset(out)  # tables are checked when a split is first read
    assert len(ds.split("train")) == 5
    with pytest.raises(FaceganError, match=message):
        ds.split("val")


def test_unknown_split(tmp_path):
    out = write_packed(tmp_path / "ds", make_splits(), META)
    with pytest.raises(FaceganError, match=r"split 'valid' not in .*ds; it has train, val, test"):
        PackedDataset(out).split("valid")


def test_examples_are_written_for_people_to_look_at(tmp_path):
    out = write_packed(tmp_path / "ds", make_splits(0), META)
    pngs = sorted((out / "examples").glob("*.png"))
    assert pngs and all(p.name.startswith("test_") for p in pngs)
    from PIL import Image

    first = np.asarray(Image.open(pngs[0]))
    assert np.array_equal(first, PackedDataset(out).split("test").images[0])
