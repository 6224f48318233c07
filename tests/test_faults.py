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
    from facegan.bench_prepare import make_synthetic_celeba
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
    cmd = _train_cmd(out, sample_data)[:-2] + ["--set=train.steps=400", "--out", str(out)]
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
