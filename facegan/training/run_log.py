"""What a training run records and shows: log.jsonl, the progress line, and the health checks
made on every flush of the log (a non-finite loss, a collapsed discriminator, a generator whose
reconstruction loss jumps).

Every step's losses stay on the device until the log is flushed (every ``train.log_every``
steps, and before every sample and checkpoint): one host transfer per flush, none per step.
:class:`RunLog` turns the flushed values into records, checks them and writes them.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from facegan.core.errors import FaceganError

#: Columns of the per-step loss record, in order (a task's loss terms follow as g_<name>).
LOSS_KEYS = ["d", "g", "g_adv", "g_id", "d_real", "d_fake"]
#: Record columns that only adversarial steps have (warm-up records, and every record of a run
#: with loss.adversarial 0, leave them out).
ADVERSARIAL_KEYS = ("d", "g_adv", "d_real", "d_fake")
#: The discriminator has collapsed when mean |D(x) - D(G(z))| over a log interval is below this...
COLLAPSE_GAP = 0.02
#: ...after at least this many adversarial steps (a fresh discriminator starts at chance).
COLLAPSE_GRACE = 100


#: The generator has blown up when its reconstruction loss is this many times its median over
#: the last :data:`SPIKE_WINDOW` steps (GAN fine-tunes of SPAN jumped from 0.05 to 0.6-0.9 in one step)...
SPIKE_FACTOR = 4.0
#: ...a window that must be full before the test applies.
SPIKE_WINDOW = 50


class DivergedError(FaceganError):
    """A loss became NaN or infinite: the run stops and keeps its last finite checkpoint."""

    exit_code = 1


def append_log(path: Path, records: list[dict]) -> None:
    with path.open("a") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


def truncate_log(path: Path, step: int) -> None:
    """On resume, drop log records past the checkpoint (they will be recomputed identically)."""
    if not path.exists():
        return
    from facegan.core.atomic import atomic_write_bytes
    from facegan.core.report import read_log

    kept = [r for r in read_log(path) if r.get("step", 0) <= step]
    atomic_write_bytes(path, "".join(json.dumps(r) + "\n" for r in kept).encode())


@dataclass
class CollapseWatch:
    """Says when the discriminator collapses (and when it recovers): D(x) and D(G(z)) are
    logged every adversarial step, and a gap under :data:`COLLAPSE_GAP` over a whole log
    interval means the adversarial term gives the generator no signal."""

    warmup_steps: int
    collapsed: bool = False

    def gap(self, records: list[dict]) -> float | None:
        """Mean |D(x) - D(G(z))| over ``records`` when the test applies to them (every record
        adversarial, at least COLLAPSE_GRACE adversarial steps done), else None."""
        if not records or any(r.get("warmup") for r in records):
            return None
        if records[-1]["step"] - self.warmup_steps < COLLAPSE_GRACE:
            return None
        return sum(abs(r["d_real"] - r["d_fake"]) for r in records) / len(records)

    def update(self, gap: float) -> str | None:
        """Record a gap; the note to print when the state changed, else None."""
        if (gap < COLLAPSE_GAP) == self.collapsed:
            return None
        self.collapsed = not self.collapsed
        if self.collapsed:
            return (f"mean |D(x) - D(G(z))| = {gap:.3f} < {COLLAPSE_GAP}: the discriminator has collapsed and the "
                    "adversarial term gives no signal (try a lower train.lr_d or a longer train.warmup_steps)")
        return f"the discriminator separates real and generated faces again (mean |D(x) - D(G(z))| = {gap:.3f})"


@dataclass
class SpikeWatch:
    """Says when the generator's reconstruction loss jumps far above its recent median: a
    generator that blew up between two steps (finite, so not a divergence the run stops for) and
    now makes noise. The EMA weights, a slow average, are hurt less; the note says where to resume."""

    key: str
    #: The last SPIKE_WINDOW values of ``key`` (a spike's first step left out).
    recent: deque = field(default_factory=lambda: deque(maxlen=SPIKE_WINDOW))
    #: The step the current spike started at; None while the loss is normal.
    spiked_at: int | None = None

    def update(self, records: list[dict]) -> str | None:
        """Feed ``records``; a note for the first step of a spike, else None."""
        note = None
        for rec in records:
            value = rec.get(self.key)
            if value is None:
                continue
            if len(self.recent) == SPIKE_WINDOW:
                median = statistics.median(self.recent)
                if value <= SPIKE_FACTOR * median:
                    self.spiked_at = None
                elif self.spiked_at is None:
                    self.spiked_at = rec["step"]
                    rec["g_spike"] = True
                    note = (f"step {rec['step']}: the generator's {self.key[2:]} loss jumped to {value:.3f} "
                            f"({value / median:.0f}x its recent median {median:.3f}): it has blown up; resume from a "
                            "checkpoint before this step with a lower train.lr_g or Adam beta1 0.9 (train.betas)")
                    continue  # the spike does not enter the median
            self.recent.append(value)
        return note


class RunLog:
    """The records of one run: built from flushed loss values, checked, written, summarised."""

    def __init__(self, path: Path, terms: list[str], warmup_steps: int, progress_terms: tuple[str, ...] = ("rec",),
                 adversarial: bool = True) -> None:
        self.path = path
        #: False when loss.adversarial is 0: no step trains D, and no record has its columns.
        self.adversarial = adversarial
        #: The loss record's columns: LOSS_KEYS, then g_<term> for each of the task's terms.
        self.keys = LOSS_KEYS + [f"g_{t}" for t in terms]
        self.warmup_steps = warmup_steps
        self.progress_terms = [t for t in progress_terms if t in terms]
        self.collapse = CollapseWatch(warmup_steps)
        self.spike = SpikeWatch(f"g_{self.progress_terms[0]}") if self.progress_terms else None

    def records(self, values: list[list[float]], first: int) -> list[dict]:
        """Log records of steps ``first, first+1, ...``; generator-only records (the warm-up's,
        or all of them with no adversarial term) leave out the D columns."""
        out = []
        for i, v in enumerate(values):
            rec = dict(kind="step", step=first + i, **dict(zip(self.keys, v)))
            warm = first + i - 1 < self.warmup_steps
            if warm or not self.adversarial:
                for k in ADVERSARIAL_KEYS:
                    rec.pop(k)
            if warm:
                rec["warmup"] = True
            out.append(rec)
        return out

    @staticmethod
    def first_non_finite(records: list[dict]) -> tuple[int, str] | None:
        """(step, loss column) of the first NaN or infinite loss in ``records``, else None."""
        for rec in records:
            for key, value in rec.items():
                if isinstance(value, float) and not math.isfinite(value):
                    return rec["step"], key
        return None

    def diverged(self, step: int, key: str, kept: str) -> DivergedError:
        return DivergedError(
            f"training diverged: loss {key} is not finite at step {step}; stopped, {kept} "
            "(lower train.lr_g / train.lr_d, or raise train.warmup_steps)"
        )

    @property
    def alarmed(self) -> bool:
        """Whether the run is in trouble now: a collapsed discriminator or a generator spike."""
        return self.collapse.collapsed or (self.spike is not None and self.spike.spiked_at is not None)

    def health(self, records: list[dict]) -> tuple[str, list[str]]:
        """Check the discriminator and the generator over ``records``; (progress-line text, notes
        to print). The last record gets ``d_gap`` and ``d_collapsed`` when the test applies; the
        first record of a generator spike gets ``g_spike``."""
        notes = []
        if self.spike is not None:
            note = self.spike.update(records)
            if note is not None:
                notes.append(note)
        gap = self.collapse.gap(records) if self.adversarial else None
        if gap is not None:
            note = self.collapse.update(gap)
            if note is not None:
                notes.append(f"step {records[-1]['step']}: {note}")
            records[-1]["d_gap"] = gap
            records[-1]["d_collapsed"] = self.collapse.collapsed
        return self.progress_text(records[-1]), notes

    def progress_text(self, last: dict) -> str:
        """The losses of the last record, for the progress line (rich markup)."""
        terms = " ".join(f"{t} {last[f'g_{t}']:.3f}" for t in self.progress_terms)
        if last.get("warmup"):
            return f"warm-up (G only) G {last['g']:.3f} {terms} id {last['g_id']:.3f}"
        if not self.adversarial:
            return f"G {last['g']:.3f} {terms} id {last['g_id']:.3f}"
        text = (f"D {last['d']:.3f} G {last['g']:.3f} {terms} id {last['g_id']:.3f} "
                f"D(x) {last['d_real']:.2f} D(G(z)) {last['d_fake']:.2f}")
        return text + (" [bold red]D collapsed[/]" if self.collapse.collapsed else "")

    def write(self, records: list[dict]) -> None:
        append_log(self.path, records)


class TrainProgress:
    """Rich progress line: step/total, img/s, ETA, current losses, device."""

    def __init__(self, name: str, device: str, total: int, start: int, console=None, enabled: bool = True) -> None:
        self.enabled = enabled and console is not None
        if not self.enabled:
            return
        from rich.markup import escape
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn(f"[bold]{escape(name)}[/] [dim]{device}[/]"),
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


def describe_run(trainer) -> str:
    """One line about the run: task, sizes, identity loss, data, steps, device."""
    r = trainer.recipe
    n_g = sum(p.numel() for p in trainer.G.parameters()) / 1e6
    n_d = sum(p.numel() for p in trainer.D.parameters()) / 1e6
    disc = f"D {n_d:.2f} M" if trainer.adversarial else "no adversarial term (D off)"
    ident = f"{r.loss.identity_net} (x{r.loss.identity})" if trainer.id_net is not None else "off"
    warm = f", {r.train.warmup_steps} warm-up steps (G only)" if r.train.warmup_steps else ""
    warm += f", started from {r.train.init_from}" if r.train.init_from else ""
    world = f" x {trainer.dist.world} processes" if trainer.dist.world > 1 else ""
    return (f"[bold]{trainer.task.label}[/] {r.name}: G {n_g:.2f} M params, {disc}, identity loss {ident}{warm}, "
            f"{len(trainer.loader.images)} train faces, batch {r.train.batch}{world}, steps {trainer.step}->{trainer.total}, "
            f"device {trainer.device} ({trainer.loader.placement} data){', bf16' if trainer.amp else ''}")
