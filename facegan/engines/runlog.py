"""What a training run shows and keeps: the rich progress line and log.jsonl."""

from __future__ import annotations

import json
from pathlib import Path


def append_log(path: Path, records: list[dict]) -> None:
    with path.open("a") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


def truncate_log(path: Path, step: int) -> None:
    """On resume, drop log records past the checkpoint (they will be recomputed identically)."""
    if not path.exists():
        return
    from facegan.report import atomic_write_bytes, read_log

    kept = [r for r in read_log(path) if r.get("step", 0) <= step]
    atomic_write_bytes(path, "".join(json.dumps(r) + "\n" for r in kept).encode())


class TrainProgress:
    """Rich progress line: step/total, img/s, ETA, current losses, device."""

    def __init__(self, name: str, device: str, total: int, start: int, console=None, enabled: bool = True) -> None:
        self.enabled = enabled and console is not None
        if not self.enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn(f"[bold]{name}[/] [dim]{device}[/]"),
            BarColumn(bar_width=16),
            MofNCompleteColumn(),
            TextColumn("{task.fields[img_s]:.1f} img/s"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
        )
        self.task_id = self.bar.add_task("train", total=total, completed=start, img_s=0.0, info="")

    def __enter__(self):
        if self.enabled:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.__exit__(*exc)

    def update(self, step: int, img_s: float, info: str) -> None:
        if self.enabled:
            self.bar.update(self.task_id, completed=step, img_s=img_s, info=info)

    def note(self, text: str, style: str = "dim") -> None:
        if self.enabled:
            self.bar.console.print(f"[{style}]{text}[/]")
