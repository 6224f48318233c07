"""bench restore: every stage of `facegan restore` is timed per face, on the photos given."""

from __future__ import annotations

import shutil

from typer.testing import CliRunner

from facegan.bench.restore import STAGES, bench_restore, sample_photos
from facegan.cli import app

runner = CliRunner()


def test_sample_photos_are_the_bundled_ones():
    photos = sample_photos()
    assert len(photos) >= 10 and all("sample_faces" in str(p) for p in photos)


def test_each_stage_is_timed_per_face(tiny_run):
    photos = sample_photos()[:2]
    seen = []
    (timing,) = bench_restore([str(tiny_run / "checkpoints" / "last.pt")], photos, repeats=1, on_done=seen.append)
    assert seen == [timing] and timing.task == "inpaint" and timing.detail == "mask eyes"
    assert timing.photos == 2 and timing.faces == 2
    assert all(timing.ms_per_face[s] > 0 for s in STAGES)
    assert timing.ms_per_face["total"] >= max(timing.ms_per_face[s] for s in STAGES)


def test_cli_on_a_folder(tiny_sr, tmp_path):
    import torch

    shutil.copy(sample_photos()[0], tmp_path / "a.jpg")
    threads = torch.get_num_threads()
    res = runner.invoke(app, ["bench", "restore", str(tiny_sr / "checkpoints" / "last.pt"), "--photos", str(tmp_path),
                              "--repeats", "1", "--threads", "1"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "ms per face" in text and "sr (x" in text and "prepare" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg"]  # nothing written
    assert torch.get_num_threads() == threads  # --threads is given back


def test_cli_refuses_bad_options(tmp_path):
    bad = runner.invoke(app, ["bench", "restore", "--repeats", "0"])
    assert bad.exit_code == 2 and "--repeats and --threads must be at least 1" in bad.output
    missing = runner.invoke(app, ["bench", "restore", "--photos", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and missing.output.startswith("error:") and "does not exist" in missing.output
