"""bench prepare: the synthetic CelebA tree is in the official format, and the timing runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from facegan.bench.prepare import BenchRow, bench_prepare, make_synthetic_celeba, projection
from facegan.cli import app
from facegan.data.celeba import scan_celeba
from facegan.data.packed import PackedDataset

runner = CliRunner()


def test_synthetic_tree_is_celeba_format(tmp_path):
    root = make_synthetic_celeba(tmp_path / "celeba", 100)
    found = scan_celeba(root)
    assert found.kind == "aligned" and found.missing == [] and found.unlisted == 0
    assert [len(v) for v in found.sources.values()] == [81, 10, 9]  # CelebA's proportions
    assert found.identities == 5  # a new identity every 20 images
    first = Image.open(root / "img_align_celeba" / "000001.jpg")
    assert first.format == "JPEG" and first.size == (178, 218)
    pixels = np.asarray(first, np.float64)
    assert pixels.std() > 20  # a photo, not a flat fill
    lines = (root / "Anno" / "list_landmarks_align_celeba.txt").read_text().splitlines()
    assert lines[0] == "100" and lines[1].startswith("lefteye_x lefteye_y")
    assert len(lines[2].split()) == 11


def test_bench_prepare_times_each_worker_count(tmp_path):
    rows = bench_prepare(64, workers=(1,), size=32, folder=tmp_path)
    assert [r.workers for r in rows] == [1] and rows[0].images == 64 and rows[0].seconds > 0
    assert rows[0].cpu_main > 0 and rows[0].cpu_workers == 0
    assert not (tmp_path / "out-1").exists()  # each timed dataset is removed after
    out = tmp_path / "check"
    from facegan.data.celeba import prepare_celeba

    prepare_celeba(tmp_path / "celeba", out, size=32, workers=1)
    assert sum(c["count"] for c in PackedDataset(out).meta["splits"].values()) == 64


def test_projection_is_honest_about_its_assumptions():
    rows = [BenchRow(1, 1000, 2.0), BenchRow(2, 1000, 1.25)]  # 500/s, then 800/s (80%)
    text = projection(rows, cores=16, total=202_599)
    linear = 202_599 / (500 * 16) / 60
    assert f"{linear:.1f} min at linear scaling" in text
    assert f"{linear / 0.8:.1f} min at the 80% efficiency measured with 2 workers" in text
    assert projection([BenchRow(2, 10, 1.0)]) == ""
    # CPU: 1 ms per image in a worker, 0.1 ms in the writer -> min(15 / 1e-3, 1e4) = 10,000/s.
    cpu = projection([BenchRow(1, 1000, 2.0), BenchRow(2, 1000, 1.25, 0.1, 1.0)], cores=16,
                     total=600_000)
    assert "1.0 min from CPU time (1.00 ms per image in a worker, 0.10 ms in the writer: at " \
        "most 10,000 images/s)" in cpu


def test_cli(tmp_path):
    res = runner.invoke(app, ["bench", "prepare", "--images", "64", "--workers", "1",
                              "--size", "32", "--dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "images/s" in text and "projection for 202,599 images on 16 cores" in text
    bad = runner.invoke(app, ["bench", "prepare", "--workers", "one"])
    assert bad.exit_code == 2 and "--workers takes whole numbers" in bad.output
    assert Path(tmp_path / "celeba" / "img_align_celeba").is_dir()
