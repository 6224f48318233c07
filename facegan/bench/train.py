"""`facegan bench train`: how fast a recipe trains here, phase by phase, as ratios.

Every configuration (the recipe, then each ``--compare`` variant) is built as a real
:class:`facegan.training.trainer.Trainer` in a temporary folder (nothing is written to runs/), and
their steps are *interleaved* in one process: step 1 of every config, step 2 of every config,
... so slow drift of the machine (another process, thermal limits) hits all of them alike, and
the ratio between two configs is much steadier than two separate absolute figures.

Per config: the median img/s over the measured steps (after the warm-up steps), the milliseconds
of each phase of a step (batch and masks, G forward, D step, identity loss forward, G losses +
backward + optimizer, EMA and schedules), the peak memory (CUDA: ``max_memory_allocated`` per
config; CPU: the process's peak RSS, shared by all configs), the model FLOPs per image counted by
``torch.utils.flop_counter`` on one step, the achieved TFLOP/s and, on a known GPU, the model
FLOPs utilisation (MFU) against its dense bf16 peak. Phases are timed with CUDA events on a GPU
(no host sync inside the step) and with the wall clock on a CPU.
"""

from __future__ import annotations

import contextlib
import resource
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import torch

#: The phases of a step, in order, as Trainer.train_step names them, and their table headers.
PHASES = (("batch", "batch+masks"), ("g_forward", "G fwd"), ("d_step", "D step"), ("identity", "id fwd"),
          ("g_step", "G bwd+opt"), ("ema", "EMA"))
#: Dense bf16 tensor peak (FLOP/s) by GPU name fragment, for the MFU column.
BF16_PEAK = {"H200": 989e12, "H100 SXM": 989e12, "H100 NVL": 835e12, "H100 PCIe": 756e12, "H100": 756e12,
             "A100": 312e12, "L40S": 362e12, "L4": 121e12, "A10G": 70e12, "A10": 125e12, "RTX 4090": 165e12}


@dataclass
class ConfigResult:
    """The measurements of one configuration."""

    name: str
    overrides: list[str]
    batch: int
    step_seconds: list[float] = field(default_factory=list)
    phase_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    peak_bytes: int = 0
    flops_per_image: float | None = None
    setup_seconds: float = 0.0

    @property
    def img_s(self) -> float:
        return self.batch / statistics.median(self.step_seconds)

    def phase_median(self, name: str) -> float | None:
        values = self.phase_ms.get(name)
        return statistics.median(values) if values else None

    def as_dict(self) -> dict:
        return {"name": self.name, "overrides": self.overrides, "batch": self.batch, "img_s": self.img_s,
                "step_ms": [s * 1e3 for s in self.step_seconds],
                "phase_ms": {k: self.phase_median(k) for k, _ in PHASES},
                "peak_bytes": self.peak_bytes, "flops_per_image": self.flops_per_image,
                "setup_seconds": self.setup_seconds}


class PhaseTimer:
    """Times the named phases of one step: CUDA events on a GPU, the wall clock on a CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.events: list[tuple[str, object, object]] = []
        self.seconds: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def __call__(self, name: str):
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            yield
            end.record()
            self.events.append((name, start, end))
        else:
            t = time.perf_counter()
            yield
            self.seconds[name] += time.perf_counter() - t

    def milliseconds(self) -> dict[str, float]:
        """Each phase's time in this step (call after the step; syncs on a GPU)."""
        if self.cuda:
            torch.cuda.synchronize()
            for name, start, end in self.events:
                self.seconds[name] += start.elapsed_time(end) / 1e3
        return {k: v * 1e3 for k, v in self.seconds.items()}


def bf16_peak(device: torch.device) -> float | None:
    """The dense bf16 peak of the GPU (FLOP/s), when its name is known."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in BF16_PEAK.items() if key in name), None)


def bench_train(recipe_path: Path, overrides: list[str], compare: list[list[str]], steps: int = 20, warmup: int = 5,
                console=None) -> tuple[list[ConfigResult], dict]:
    """Measure the recipe (with ``overrides``) and each ``compare`` variant, interleaved."""
    from facegan.core.errors import FaceganError
    from facegan.tasks.recipes import load_recipe
    from facegan.training.trainer import Trainer

    if steps < 1 or warmup < 0:
        raise FaceganError(f"--steps must be at least 1 and --warmup at least 0, got {steps} and {warmup}")
    configs = [("recipe", overrides)] + [(", ".join(v), [*overrides, *v]) for v in compare]
    results, trainers = [], []
    with tempfile.TemporaryDirectory(prefix="facegan-bench-train-") as tmp:
        for i, (name, sets) in enumerate(configs):
            recipe = load_recipe(recipe_path, sets)
            started = time.perf_counter()
            trainer = Trainer(recipe, Path(tmp) / f"config{i}", bench_steps=warmup + steps + 1)
            if trainer.total < warmup + steps + 1:
                raise FaceganError(f"{name}: the recipe has {trainer.total} steps; the bench needs {warmup + steps + 1} "
                                   "(lower --steps / --warmup)")
            results.append(ConfigResult(name, list(sets), recipe.train.batch * trainer.dist.world,
                                        setup_seconds=time.perf_counter() - started))
            trainers.append(trainer)
            _say(console, f"built {name}: {trainer.task.label}, batch {recipe.train.batch}, device {trainer.device} "
                          f"({results[-1].setup_seconds:.1f} s)")
        device = trainers[0].device
        for it in range(warmup + steps):
            for trainer, res in zip(trainers, results):
                timer = PhaseTimer(device)
                trainer.phase = timer
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                    torch.cuda.reset_peak_memory_stats(device)
                t0 = time.perf_counter()
                trainer.train_step()
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                seconds = time.perf_counter() - t0
                trainer.step += 1
                if it >= warmup:
                    res.step_seconds.append(seconds)
                    for k, v in timer.milliseconds().items():
                        res.phase_ms[k].append(v)
                    if device.type == "cuda":
                        res.peak_bytes = max(res.peak_bytes, torch.cuda.max_memory_allocated(device))
            _say(console, f"step {it + 1}/{warmup + steps}" + (" (warm-up)" if it < warmup else ""), transient=True)
        for trainer, res in zip(trainers, results):  # one more step, counted, not timed
            from torch.utils.flop_counter import FlopCounterMode

            trainer.phase = PhaseTimer(device)
            with FlopCounterMode(display=False) as counter:
                trainer.train_step()
            res.flops_per_image = counter.get_total_flops() / res.batch
    if device.type != "cuda":
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        for res in results:
            res.peak_bytes = peak
    info = {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "threads": torch.get_num_threads(), "steps": steps, "warmup": warmup, "bf16_peak": bf16_peak(device),
            "torch": torch.__version__, "recipe": str(recipe_path)}
    return results, info


def results_table(results: list[ConfigResult], info: dict):
    """One rich row per config: img/s, ratio to the first, phases (ms), memory, FLOPs, MFU."""
    from rich.table import Table

    from facegan.data.build import human_bytes

    cpu = info["device"] == "cpu"
    table = Table(title=f"facegan bench train: {info['recipe']} on {info['device_name']} "
                        f"({info['steps']} measured steps after {info['warmup']} warm-up, interleaved)",
                  caption=("peak memory: the process's peak RSS (all configs together)" if cpu
                           else "peak memory: torch.cuda.max_memory_allocated per config")
                  + "; phases: medians in ms; FLOPs: torch.utils.flop_counter on one step",
                  caption_justify="left")
    for col in ("config", "img/s", "ratio", *(h for _, h in PHASES), "peak mem", "GFLOP/img", "TFLOP/s", "MFU"):
        table.add_column(col, justify="left" if col == "config" else "right")
    base = results[0].img_s
    for r in results:
        achieved = (r.flops_per_image or 0) * r.img_s
        mfu = f"{achieved / info['bf16_peak']:.1%}" if info.get("bf16_peak") and r.flops_per_image else "-"
        phases = [r.phase_median(k) for k, _ in PHASES]
        table.add_row(r.name, f"{r.img_s:.2f}", f"{r.img_s / base:.3f}x",
                      *("-" if v is None else f"{v:.1f}" for v in phases),
                      human_bytes(r.peak_bytes),
                      f"{r.flops_per_image / 1e9:.2f}" if r.flops_per_image else "-",
                      f"{achieved / 1e12:.3f}" if r.flops_per_image else "-", mfu)
    return table


def _say(console, text: str, transient: bool = False) -> None:
    if console is not None and not transient:
        console.print(f"[dim]{text}[/]")
