"""DDP through torchrun, on CPU (gloo): two real processes train one run.

Checks what a user of several GPUs relies on: both processes hold bit-identical weights at
every checkpoint (facegan verifies it and logs it), only rank 0 writes logs, samples and
checkpoints, the global batch is train.batch x world with disjoint faces per process, --resume
under torchrun continues exactly, and a process that dies takes the run down with an error
instead of leaving the others waiting.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import REPO, TINY

pytestmark = pytest.mark.slow
WORLD = 2


def torchrun(out: Path, data: Path, *extra: str, timeout: int = 240, wait: bool = True):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}",
           "-m", "facegan", "train", str(REPO / "recipes" / "quickstart_inpaint.yaml"),
           *(f"--set={s}" for s in [*TINY, f"data.path={data}", "train.device=cpu"]), "--out", str(out), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def ddp_run(sample_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp") / "run"
    res = torchrun(out, sample_data)
    assert res.returncode == 0, res.stdout + res.stderr
    return out


def test_ranks_hold_identical_weights_and_only_rank0_writes(ddp_run):
    recs = records(ddp_run)
    start = [r for r in recs if r["kind"] == "start"]
    assert len(start) == 1 and start[0]["world"] == WORLD
    batch = int(next(s.split("=")[1] for s in TINY if s.startswith("train.batch=")))
    assert start[0]["global_batch"] == batch * WORLD
    ddp = [r for r in recs if r["kind"] == "ddp"]
    assert [r["step"] for r in ddp] == [3, 6] and all(r["ranks_identical"] and r["world"] == WORLD for r in ddp)
    steps = [r["step"] for r in recs if r["kind"] == "step"]
    assert steps == list(range(1, 7))  # one writer: every step once, in order
    assert sorted(p.name for p in (ddp_run / "checkpoints").iterdir()) == ["last.pt", "step_0000003.pt", "step_0000006.pt"]
    assert sorted(p.name for p in (ddp_run / "samples").iterdir()) == ["step_0000003.png", "step_0000006.png"]
    ckpt = torch.load(ddp_run / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["step"] == 6


def test_each_process_takes_its_own_faces(sample_data):
    from facegan.data.loader import BatchLoader
    from facegan.data.packed import PackedDataset

    split = PackedDataset(sample_data).split("train")
    batch = 4
    loaders = [BatchLoader(split, batch, torch.device("cpu"), seed=0, rank=r, world=WORLD) for r in range(WORLD)]
    for step in range(2 * loaders[0].steps_per_epoch):
        taken = [set(ld.get(step).indices.tolist()) for ld in loaders]
        assert len(taken[0] | taken[1]) == batch * WORLD and not taken[0] & taken[1]


def test_resume_under_torchrun_continues_exactly(ddp_run, sample_data, tmp_path):
    split = tmp_path / "split"
    first = torchrun(split, sample_data, "--set=train.steps=3")
    assert first.returncode == 0, first.stdout + first.stderr
    second = torchrun(split, sample_data, "--resume")
    assert second.returncode == 0, second.stdout + second.stderr
    a = torch.load(ddp_run / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(split / "checkpoints" / "last.pt", weights_only=True)
    for key in ("generator", "discriminator", "ema"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name}"
    assert a["opt_g"]["state"].keys() == b["opt_g"]["state"].keys()


def _rank_pids(parent: int, rank: int) -> list[int]:
    """Children of ``parent`` (torchrun) whose environment says RANK=rank."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text().split()
        except OSError:
            continue
        if f"RANK={rank}".encode() in env and int(stat[3]) == parent:
            found.append(int(entry.name))
    return found


def test_a_dying_process_stops_the_run_with_an_error(sample_data, tmp_path):
    out = tmp_path / "dies"
    proc = torchrun(out, sample_data, "--set=train.steps=400", "--set=train.checkpoint_every=1000", wait=False)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            log = out / "log.jsonl"
            if log.is_file() and sum(1 for line in log.read_text().splitlines() if '"step"' in line) >= 4:
                break
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.5)
        victims = _rank_pids(proc.pid, 1)
        assert victims, "rank 1 not found"
        os.kill(victims[0], signal.SIGKILL)
        code = proc.wait(timeout=120)  # not a hang
        assert code != 0
        steps = [r["step"] for r in records(out) if r["kind"] == "step"]
        assert steps[-1] < 400
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
