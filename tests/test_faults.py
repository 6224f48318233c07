"""Faults: SIGKILL at random moments, concurrent writers, divergence; what survives and what resumes.

Real processes (`python -m facegan ...`), really killed. A tiny CPU run is killed at seeded
random steps and resumed: the result equals the uninterrupted run bit for bit. A kill while a
checkpoint is being written leaves a loadable last.pt, and the resume removes the temp file. A
killed `prepare` leaves its temp folder and no worker behind; the re-run removes the folder.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from helpers import REPO, TINY

pytestmark = pytest.mark.slow
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
RECIPE = REPO / "recipes" / "quickstart_inpaint.yaml"
#: A run long enough to be killed in the middle: checkpoints every 2 steps.
STEPS = 12
SETS = [*TINY, f"train.steps={STEPS}", "train.checkpoint_every=2", "train.log_every=1", "train.sample_every=100"]


def _train_cmd(out: Path, data: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "facegan", "train", str(RECIPE), *(f"--set={s}" for s in [*SETS, f"data.path={data}"]),
            "--out", str(out), *extra]


def _long_train_cmd(out: Path, data: Path) -> list[str]:
    """A training long enough to be caught running (400 steps)."""
    return _train_cmd(out, data)[:-2] + ["--set=train.steps=400", "--out", str(out)]


def _sigterm_when(cmd: list[str], ready, timeout: float = 120) -> tuple[int, str]:
    """Start ``cmd``, send SIGTERM once ``ready()``; its exit code and stderr."""
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(ready, proc, timeout=timeout)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, err


def _steps_logged(run: Path) -> int:
    log = run / "log.jsonl"
    if not log.is_file():
        return 0
    return sum(1 for line in log.read_text().splitlines() if '"kind": "step"' in line)


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"the process ended early ({proc.returncode}): {proc.stdout.read()}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _state(path: Path) -> dict:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    return {k: ckpt[k] for k in ("generator", "discriminator", "ema", "opt_g", "opt_d", "step")}


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


@pytest.fixture(scope="module")
def straight(sample_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("faults") / "straight"
    subprocess.run(_train_cmd(out, sample_data), env=ENV, check=True, capture_output=True, timeout=300)
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_at_a_random_step_then_resume_is_bit_exact(straight, sample_data, tmp_path, seed):
    kill_after = random.Random(seed).randint(1, STEPS - 2)  # steps logged before the kill
    out = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(out, sample_data), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        _wait_for(lambda: _steps_logged(out) >= kill_after, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    if not (out / "checkpoints" / "last.pt").is_file():  # killed before the first save: start again
        res = subprocess.run(_train_cmd(out, sample_data), env=ENV, capture_output=True, text=True, timeout=300)
    else:
        res = subprocess.run(_train_cmd(out, sample_data, "--resume"), env=ENV, capture_output=True, text=True,
                             timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert _equal(_state(straight / "checkpoints" / "last.pt"), _state(out / "checkpoints" / "last.pt"))
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()
             if '"kind": "step"' in line]
    assert steps == list(range(1, STEPS + 1))  # the log was cut back to the checkpoint, then continued


SLOW_SAVE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import torch
    marker = Path(sys.argv.pop(1))
    real = torch.save
    def slow_save(obj, f, *args, **kwargs):
        real(obj, f, *args, **kwargs)
        if isinstance(obj, dict) and obj.get("step") == 4:   # the second checkpoint: hold it unrenamed
            f.flush()
            marker.write_text("saving")
            time.sleep(60)
    torch.save = slow_save
    from facegan.cli import main
    sys.argv[0] = "facegan"
    main()
""")


def test_sigkill_while_a_checkpoint_is_written(straight, sample_data, tmp_path):
    script, marker, out = tmp_path / "slow_save.py", tmp_path / "marker", tmp_path / "run"
    script.write_text(SLOW_SAVE)
    cmd = [sys.executable, str(script), str(marker), *_train_cmd(out, sample_data)[3:]]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(marker.is_file, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    ckpts = out / "checkpoints"
    temps = [p for p in ckpts.iterdir() if p.name.endswith(".tmp")]
    assert temps, "the kill should have left the half-saved temp file"
    assert torch.load(ckpts / "last.pt", weights_only=True)["step"] == 2  # the previous one, intact
    res = subprocess.run(_train_cmd(out, sample_data, "--resume"), env=ENV, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert not [p for p in ckpts.iterdir() if p.name.endswith(".tmp")]
    assert _equal(_state(straight / "checkpoints" / "last.pt"), _state(ckpts / "last.pt"))


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().split()[3]) == pid:
                    kids.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return kids


def test_sigkilled_prepare_leaves_nothing_after_its_rerun(tmp_path):
    from facegan.bench.prepare import make_synthetic_celeba
    from facegan.data.packed import PackedDataset

    root = make_synthetic_celeba(tmp_path / "celeba", 3000)
    out = tmp_path / "data" / "celeba-64"
    cmd = [sys.executable, "-m", "facegan", "prepare", "celeba", "--root", str(root), "--out", str(out), "--size", "64",
           "--workers", "2"]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        temp_dirs = lambda: [p for p in out.parent.glob(f".{out.name}.tmp-*") if (p / "train.npy").is_file()]
        _wait_for(lambda: bool(temp_dirs()) and len(_children(proc.pid)) >= 2, proc)
        workers = _children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert temp_dirs() and not out.exists()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{w}").exists() for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [w for w in workers if Path(f"/proc/{w}").exists()], "prepare's workers outlived it"
    res = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    assert not list(out.parent.glob(f".{out.name}.*")), "a temp folder or lock file is left"
    assert len(PackedDataset(out).split("train")) > 0


def test_two_trainings_of_one_folder(sample_data, tmp_path):
    out = tmp_path / "run"
    cmd = _long_train_cmd(out, sample_data)
    first = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(lambda: _steps_logged(out) >= 1, first)
        second = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert "in use by another facegan process" in second.stderr and "Traceback" not in second.stderr
        assert first.poll() is None  # the first goes on
        resumed = subprocess.run(_train_cmd(out, sample_data, "--resume"), env=ENV, capture_output=True, text=True,
                                 timeout=120)
        assert resumed.returncode == 2 and "in use by another facegan process" in resumed.stderr
    finally:
        first.kill()
        first.wait(timeout=30)
    # killed: the lock died with it
    again = subprocess.run(_train_cmd(out, sample_data, "--resume"), env=ENV, capture_output=True, text=True, timeout=300)
    assert "in use by another" not in again.stderr


# ---- round two: full disks, odd output targets, SIGTERM ------------------------------------


def test_a_full_disk_during_a_checkpoint_stops_in_one_line_and_resume_names_the_intact_one(sample_data, tmp_path,
                                                                                           monkeypatch):
    from typer.testing import CliRunner

    from facegan.cli import app

    real_save, calls = torch.save, []

    def save_until_the_disk_fills(obj, f, *args, **kwargs):  # the 3rd file (step 6) meets a full disk
        calls.append(1)
        if len(calls) == 3:
            f.write(b"\0" * 4096)
            raise OSError(28, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_the_disk_fills)
    out = tmp_path / "run"
    sets = [*TINY, "train.steps=6", "train.checkpoint_every=3", "train.sample_every=100", f"data.path={sample_data}"]
    res = CliRunner().invoke(app, ["train", str(RECIPE), *(f"--set={s}" for s in sets), "--out", str(out)])
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert res.exit_code == 1 and len(errors) == 1 and "Traceback" not in res.output, res.output
    assert "no space left on device (needed about" in errors[0] and "--resume" in errors[0], errors[0]
    ckpts = out / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.pt", "step_0000003.pt"]  # no temp file left
    assert torch.load(ckpts / "last.pt", weights_only=True)["step"] == 3
    monkeypatch.setattr(torch, "save", real_save)
    (ckpts / "last.pt").unlink()  # e.g. lost to the full disk in an earlier version
    res = CliRunner().invoke(app, ["train", str(out), "--resume"])
    assert res.exit_code == 2 and "newest intact checkpoint is" in res.output and "step_0000003.pt" in res.output


def test_outputs_follow_links_and_write_through_devices_and_pipes(tmp_path):
    import threading

    from facegan.core.atomic import WriteError, atomic_write_bytes

    target = tmp_path / "target.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    atomic_write_bytes(link, b"new")
    assert link.is_symlink() and target.read_text() == "new"  # the link stays, its target is replaced
    atomic_write_bytes(Path(os.devnull), b"x")
    assert Path(os.devnull).is_char_device()  # written through, not replaced by a file
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    atomic_write_bytes(fifo, b"through the pipe")
    reader.join(timeout=10)
    assert got == [b"through the pipe"] and fifo.is_fifo()
    if Path("/dev/full").exists():
        with pytest.raises(WriteError, match="cannot write /dev/full: no space left on device"):
            atomic_write_bytes(Path("/dev/full"), b"x" * 10000)
        assert Path("/dev/full").is_char_device()
    with pytest.raises(WriteError, match="it is a folder"):
        atomic_write_bytes(tmp_path, b"x")
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_real_full_disk_says_how_much_room_the_file_needed(tmp_path):
    from facegan.core.atomic import WriteError, atomic_write_bytes

    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root and CAP_SYS_ADMIN)")
    try:
        (disk / "kept.bin").write_bytes(b"kept")
        with pytest.raises(WriteError, match=r"no space left on device \(needed about [0-9.]+ MB at"):
            atomic_write_bytes(disk / "kept.bin", b"\1" * (3 << 20))
        assert (disk / "kept.bin").read_bytes() == b"kept" and sorted(p.name for p in disk.iterdir()) == ["kept.bin"]
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_sigterm_stops_a_training_like_ctrl_c_with_exit_143_and_no_temp_file(sample_data, tmp_path):
    out = tmp_path / "run"
    code, err = _sigterm_when(_long_train_cmd(out, sample_data), lambda: _steps_logged(out) >= 3)
    assert code == 143 and "terminated" in err and "Traceback" not in err, err
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_eval_json_to_a_full_device_is_one_line_and_one_image_gives_strict_json(tiny_run, tmp_path):
    from typer.testing import CliRunner

    from facegan.cli import app

    if Path("/dev/full").exists():
        res = CliRunner().invoke(app, ["eval", str(tiny_run), "--device", "cpu", "--max-images", "2", "--out",
                                       str(tmp_path / "a"), "--json", "/dev/full"])
        errors = [line for line in res.output.splitlines() if line.startswith("error:")]
        assert res.exit_code == 1 and len(errors) == 1 and "no space left on device" in errors[0], res.output
        assert Path("/dev/full").is_char_device()
    res = CliRunner().invoke(app, ["eval", str(tiny_run), "--device", "cpu", "--max-images", "1", "--out",
                                   str(tmp_path / "b"), "--json", str(tmp_path / "one.json")])
    assert res.exit_code == 0 and "no confidence interval" in res.output, res.output

    def refuse(constant):
        raise AssertionError(f"{constant} in the JSON")

    summary = json.loads((tmp_path / "one.json").read_text(), parse_constant=refuse)
    assert summary["n_images"] == 1 and all(v is None for v in summary["ci95"].values())
    assert all(d["lo"] is None and d["p"] is None for ref in summary["paired"].values() for d in ref.values())


def test_temp_files_of_killed_restores_and_exports_are_removed_by_the_next_run(tiny_run, tmp_path):
    from typer.testing import CliRunner

    from facegan.cli import app
    from facegan.data.prepare import SAMPLE_DIR

    out = tmp_path / "restored"
    out.mkdir()
    dead = out / ".img11_restored.png.999999.abcd1234.tmp"  # no process 999999
    dead.write_bytes(b"half a photo")
    res = CliRunner().invoke(app, ["restore", str(SAMPLE_DIR / "deepface" / "img11.jpg"), "-c", str(tiny_run),
                                   "--out", str(out), "--device", "cpu"])
    assert res.exit_code == 0 and not dead.exists(), res.output
    dead_export = tmp_path / ".model.onnx.999999.abcd1234.tmp"
    dead_export.write_bytes(b"half a model")
    res = CliRunner().invoke(app, ["export", str(tiny_run), "--out", str(tmp_path / "model.onnx")])
    assert res.exit_code == 0 and not dead_export.exists() and (tmp_path / "model.onnx").is_file(), res.output
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_sigterm_during_an_export_leaves_no_temp_file(tiny_run, tmp_path):
    cmd = [sys.executable, "-m", "facegan", "export", str(tiny_run), "--out", str(tmp_path / "m.onnx")]
    code, err = _sigterm_when(cmd, lambda: any(p.name.endswith(".tmp") for p in tmp_path.iterdir()))
    assert code == 143 and "terminated" in err and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []
