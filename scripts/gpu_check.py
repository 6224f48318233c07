"""The GPU check: everything a CPU cannot show, in one run of a few minutes (`make gpu-check`).

1. the `gpu`-marked tests;
2. a bf16 smoke training of both tasks on the bundled sample (losses finite, a checkpoint
   resumed to the end);
3. `facegan bench train` on inpaint_identity, sr_identity (MobileFaceNet identity loss, no VGG
   content loss: nothing to download) and both quickstarts, each against `train.compile=true`
   and `train.channels_last=true`, on a synthetic CelebA-format dataset of 2,000 faces;
4. restore latency per aligned face at batch 1 and 32, for both tasks.

Everything goes to one JSON (default gpu_check.json) and a summary is printed. `--quick` runs a
reduced version that also works on a CPU (to check the script itself).

Usage: python scripts/gpu_check.py [--out gpu_check.json] [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "runs" / "gpu_check"


def sh(*cmd: str, timeout: int = 900) -> subprocess.CompletedProcess:
    print("$", " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def facegan(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return sh(sys.executable, "-m", "facegan", *args, timeout=timeout)


def gpu_tests() -> dict:
    res = sh(sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider")
    return {"returncode": res.returncode, "tail": res.stdout.strip().splitlines()[-1:] if res.stdout else []}


def smoke(task: str, steps: int) -> dict:
    """bf16 training of a quickstart: finite losses, then resumed to twice the steps."""
    recipe = REPO / "recipes" / f"quickstart_{task}.yaml"
    out = WORK / f"smoke_{task}"
    sets = [f"train.steps={steps}", "train.amp=true", "train.log_every=5", f"train.checkpoint_every={steps}",
            f"train.sample_every={steps}"]
    first = facegan("train", str(recipe), *(f"--set={s}" for s in sets), "--out", str(out))
    second = facegan("train", str(out), "--resume", f"--set=train.steps={2 * steps}")
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()] if (out / "log.jsonl").exists() else []
    losses = [r["g"] for r in records if r.get("kind") == "step"]
    return {"train_rc": first.returncode, "resume_rc": second.returncode, "steps_logged": len(losses),
            "finite": bool(losses) and all(abs(x) < float("inf") for x in losses),
            "error": (first.stderr + second.stderr).strip().splitlines()[-3:]}


def synthetic_data(n: int) -> Path:
    """A synthetic CelebA-format tree of ``n`` faces, packed at 128 px (offline, no downloads)."""
    from facegan.bench.prepare import make_synthetic_celeba

    out = WORK / f"synthetic-{n}"
    if not (out / "meta.json").is_file():
        root = make_synthetic_celeba(WORK / f"celeba-{n}", n)
        res = facegan("prepare", "celeba", "--root", str(root), "--out", str(out))
        if res.returncode:
            raise SystemExit(res.stderr)
    return out


def bench(recipe: str, data: Path, steps: int, warmup: int, extra: list[str]) -> dict:
    name = Path(recipe).stem
    json_path = WORK / f"bench_{name}.json"
    sets = [f"data.path={data}", *extra]
    res = facegan("bench", "train", str(REPO / "recipes" / recipe), "--steps", str(steps), "--warmup", str(warmup),
                  *(f"--set={s}" for s in sets), "--compare", "train.compile=true", "--compare", "train.channels_last=true",
                  "--json", str(json_path), timeout=1200)
    if res.returncode:
        return {"error": (res.stderr or res.stdout).strip().splitlines()[-3:]}
    return json.loads(json_path.read_text())


def latency(task: str, repeats: int) -> dict:
    """Milliseconds per aligned face through TorchRestorer.restore, at batch 1 and 32."""
    import numpy as np
    import torch

    from facegan.restoring.torch_restorer import TorchRestorer

    restorer = TorchRestorer.find(task, WORK / f"smoke_{task}", device="auto")
    s, size = restorer.input_size, restorer.size
    out = {}
    for batch in (1, 32):
        faces = np.random.default_rng(0).integers(0, 256, (batch, s, s, 3), dtype=np.uint8)
        holes = np.zeros((batch, size, size), bool) if restorer.task.takes_hole else None
        if holes is not None:
            holes[:, size // 4 : size // 2, size // 4 : 3 * size // 4] = True
        restorer.restore(faces, holes, batch_size=batch)  # warm-up
        if restorer.device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(repeats):
            restorer.restore(faces, holes, batch_size=batch)
        if restorer.device.type == "cuda":
            torch.cuda.synchronize()
        out[f"batch{batch}_ms_per_face"] = (time.perf_counter() - t) / repeats / batch * 1e3
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="gpu_check.json")
    ap.add_argument("--quick", action="store_true", help="a reduced check that also runs on a CPU")
    args = ap.parse_args()
    import torch

    WORK.mkdir(parents=True, exist_ok=True)
    started = time.time()
    report: dict = {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                    "torch": torch.__version__, "quick": args.quick}
    prep = facegan("prepare", "sample", "--out", "data/sample")
    report["prepare_sample_rc"] = prep.returncode
    report["gpu_tests"] = gpu_tests()
    steps = 10 if args.quick else 60
    report["smoke"] = {task: smoke(task, steps) for task in ("inpaint", "sr")}
    data = synthetic_data(300 if args.quick else 2000)
    b_steps, b_warm = (2, 1) if args.quick else (20, 5)
    small = ["train.batch=8"] if args.quick else []
    offline = ["loss.identity_net=mobilefacenet"]
    report["bench"] = {
        "inpaint_identity": bench("inpaint_identity.yaml", data, b_steps, b_warm, [*offline, *small]),
        "sr_identity": bench("sr_identity.yaml", data, b_steps, b_warm, [*offline, "loss.content=0", *small]),
        "quickstart_inpaint": bench("quickstart_inpaint.yaml", data, b_steps, b_warm, small),
        "quickstart_sr": bench("quickstart_sr.yaml", data, b_steps, b_warm, small),
    }
    report["restore_latency"] = {task: latency(task, 3 if args.quick else 20) for task in ("inpaint", "sr")}
    report["seconds"] = time.time() - started
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(summary(report))
    print(f"wrote {args.out} in {report['seconds']:.0f} s")


def summary(report: dict) -> str:
    lines = [f"device: {report['device']} (torch {report['torch']})",
             f"gpu tests: {report['gpu_tests']}"]
    for task, s in report["smoke"].items():
        lines.append(f"smoke {task}: train rc {s['train_rc']}, resume rc {s['resume_rc']}, finite {s['finite']}")
    for name, b in report["bench"].items():
        if "error" in b:
            lines.append(f"bench {name}: {b['error']}")
            continue
        peak = b["info"].get("bf16_peak")
        for c in b["configs"]:
            flops = c.get("flops_per_image") or 0
            mfu = f", MFU {flops * c['img_s'] / peak:.1%}" if peak and flops else ""
            lines.append(f"bench {name} [{c['name']}]: {c['img_s']:.1f} img/s, {flops / 1e9:.2f} GFLOP/img, "
                         f"peak {c['peak_bytes'] / 2**30:.2f} GiB{mfu}")
    for task, lat in report["restore_latency"].items():
        lines.append(f"restore {task}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in lat.items()))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
