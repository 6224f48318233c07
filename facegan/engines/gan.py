"""The one training loop: D step, G step, AMP, EMA, DDP-ready, checkpoints, logs.

Written once for every task (see :mod:`facegan.engines.task`). Per step:

1. take the batch of this step (a gather from the packed split on the device) and let the
   task make its inputs (masks / degradations, on the device);
2. run the generator once;
3. discriminator step on (ground truth, detached result), BCE on logits;
4. generator step: task losses (weighted by the recipe) + non-saturating adversarial loss
   + identity loss (frozen network, gradients flow to the generator only);
5. EMA update of the generator; learning-rate schedule.

The first ``train.warmup_steps`` steps are generator-only (step 3 and the adversarial term are
skipped; for SR this is SRResNet pre-training). D(x) and D(G(z)) (mean sigmoid of the
discriminator on real and generated faces) are logged every adversarial step; when their gap
stays under :data:`COLLAPSE_GAP` over a whole log interval (after :data:`COLLAPSE_GRACE`
adversarial steps) the discriminator has collapsed, the adversarial term gives the generator
no signal, and the progress line says so.

Every step's losses are kept on the device and flushed to ``log.jsonl`` every
``train.log_every`` steps (one host sync per flush, not per step). Under ``torchrun`` each
process takes its slice of every batch and its own random stream (seed, rank, step); only
rank 0 prints, plots and saves. Randomness is a pure function of (seed, rank, step), so a
resumed run continues exactly as the uninterrupted one would have.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from facegan import __version__
from facegan.engines.checkpoint import FORMAT, FORMAT_VERSION, atomic_torch_save, load_checkpoint
from facegan.engines.runlog import TrainProgress, append_log, truncate_log
from facegan.engines.runtime import pick_device, setup_distributed, step_generator
from facegan.errors import FaceganError
from facegan.recipe import Recipe

#: Recipe keys that may change when a run is resumed (the rest must match the checkpoint).
RESUMABLE_CHANGES = {"train.steps", "train.epochs", "train.log_every", "train.sample_every",
                     "train.checkpoint_every", "train.keep_checkpoints", "train.device", "data.placement", "name"}
#: Columns of the per-step loss record, in order (a task's other loss terms follow as g_<name>).
LOSS_KEYS = ["d", "g", "g_adv", "g_rec", "g_id", "d_real", "d_fake"]
#: Record columns that only adversarial steps have (warm-up records leave them out).
ADVERSARIAL_KEYS = ("d", "g_adv", "d_real", "d_fake")
#: The discriminator has collapsed when mean |D(x) - D(G(z))| over a log interval is below this...
COLLAPSE_GAP = 0.02
#: ...after at least this many adversarial steps (a fresh discriminator starts at chance).
COLLAPSE_GRACE = 100


class EMA:
    """Exponential moving average of a model's parameters (buffers are copied)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        # Warm-up (as in many GAN codebases): early on the average follows the weights closely.
        d = min(self.decay, (1 + step) / (10 + step))
        ema_p = list(self.model.parameters())
        torch._foreach_lerp_(ema_p, [p.detach() for p in model.parameters()], 1 - d)
        for eb, b in zip(self.model.buffers(), model.buffers()):
            eb.copy_(b)


def total_steps(recipe: Recipe, steps_per_epoch: int) -> int:
    t = recipe.train
    return t.steps if t.steps is not None else max(1, math.ceil(t.epochs * steps_per_epoch))


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def check_resume_compatible(stored: dict, current: Recipe) -> None:
    from facegan.recipe import validate_recipe

    # Re-validated so that keys added to the schema since the checkpoint compare as their defaults.
    stored = validate_recipe(stored, source="the checkpoint's recipe").model_dump(mode="json")
    a, b = _flat(stored), _flat(current.model_dump(mode="json"))
    diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in RESUMABLE_CHANGES)
    if diff:
        raise FaceganError(
            "cannot resume: the recipe differs from the checkpoint's in " + ", ".join(diff)
            + " (only the length, intervals and device may change)"
        )


class Trainer:
    """Holds the models, optimizers and data of one run; ``run()`` trains it."""

    def __init__(self, recipe: Recipe, out_dir: Path, resume: bool = False, console=None) -> None:
        from facegan.data.loader import BatchLoader
        from facegan.data.packed import PackedDataset
        from facegan.engines.tasks import make_task

        self.recipe, self.out = recipe, Path(out_dir)
        self.dist = setup_distributed()
        self.device = pick_device(recipe.train.device, self.dist.local_rank)
        self.console = console
        t = recipe.train
        ckpt_dir = self.out / "checkpoints"
        if not resume and (ckpt_dir / "last.pt").exists():
            raise FaceganError(f"{self.out} already holds a run; pass --resume to continue it or --out to start a new one")
        if resume and not (ckpt_dir / "last.pt").exists():
            raise FaceganError(f"--resume: {ckpt_dir / 'last.pt'} not found")

        self.dataset = PackedDataset(recipe.data.path)
        if self.dataset.size != recipe.data.size:
            raise FaceganError(
                f"data.size is {recipe.data.size} but {recipe.data.path} holds {self.dataset.size}x{self.dataset.size} faces; "
                f"set data.size={self.dataset.size} or prepare the data at --size {recipe.data.size}"
            )
        self.task = make_task(recipe)
        torch.manual_seed(t.seed)  # identical initial weights on every rank
        self.G = self.task.build_generator().to(self.device)
        self.D = self.task.build_discriminator().to(self.device)
        self.ema = EMA(self.G, t.ema) if t.ema > 0 else None
        prepare = getattr(self.task, "prepare_training", None)
        if prepare is not None:  # frozen loss networks (e.g. VGG19 for SR); fails early when missing
            prepare(self.device)
        self.extra_terms = [k for k in self.task.loss_weights() if k != "rec"]
        self.log_keys = LOSS_KEYS + [f"g_{k}" for k in self.extra_terms]
        self.id_net = None
        if recipe.loss.identity > 0:
            from facegan.models.identity import load_identity_net

            self.id_net = load_identity_net(recipe.loss.identity_net, recipe.loss.identity_weights, device=self.device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=t.lr_g, betas=t.betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=t.lr_d, betas=t.betas)
        self.loader = BatchLoader(
            self.dataset.split("train"), t.batch, self.device, seed=t.seed, rank=self.dist.rank,
            world=self.dist.world, placement=recipe.data.placement, flip=recipe.data.hflip,
        )
        self.total = total_steps(recipe, self.loader.steps_per_epoch)
        self.sched_g = self._scheduler(self.opt_g, self.total)
        self.sched_d = self._scheduler(self.opt_d, self.d_steps)
        self.step = 0
        self.amp = bool(t.amp and self.device.type == "cuda")
        if resume:
            self._load(ckpt_dir / "last.pt")
        self.G_train, self.D_train = self.G, self.D
        if self.dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.G_train = DDP(self.G, device_ids=ids)
            self.D_train = DDP(self.D, device_ids=ids)

    # -- setup helpers -----------------------------------------------------------------
    @property
    def d_steps(self) -> int:
        """Steps the discriminator trains (its schedule's length): all but the warm-up."""
        return max(1, self.total - self.recipe.train.warmup_steps)

    def _scheduler(self, opt: torch.optim.Optimizer, steps: int):
        if self.recipe.train.lr_schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)

    def _load(self, path: Path) -> None:
        ckpt = load_checkpoint(path, task=self.task.name)
        if ckpt.get("scale") != self.task.scale:
            raise FaceganError(
                f"{path} is a ×{ckpt.get('scale')} checkpoint; it cannot be resumed as ×{self.task.scale} "
                f"(model.scale={self.task.scale}); start a new run with --out, or keep model.scale={ckpt.get('scale')}"
            )
        check_resume_compatible(ckpt["recipe"], self.recipe)
        self.G.load_state_dict(ckpt["generator"])
        self.D.load_state_dict(ckpt["discriminator"])
        if self.ema is not None and ckpt.get("ema") is not None:
            self.ema.model.load_state_dict(ckpt["ema"])
        self.opt_g.load_state_dict(ckpt["opt_g"])
        self.opt_d.load_state_dict(ckpt["opt_d"])
        self.sched_g.load_state_dict(ckpt["sched_g"])
        self.sched_d.load_state_dict(ckpt["sched_d"])
        if self.recipe.train.lr_schedule == "cosine":
            self.sched_g.T_max, self.sched_d.T_max = self.total, self.d_steps
        self.step = int(ckpt["step"])
        if self.step >= self.total:
            raise FaceganError(f"{path} is already at step {self.step} of {self.total}; raise train.steps to train longer")

    def checkpoint_state(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "facegan_version": __version__,
            "task": self.task.name,
            "scale": self.task.scale,
            "size": self.recipe.data.size,
            "template": {"name": self.dataset.meta.get("template", {}).get("name"),
                         "points": self.dataset.template.tolist()},
            "recipe": self.recipe.model_dump(mode="json"),
            "step": self.step,
            "total_steps": self.total,
            "epoch": self.step / self.loader.steps_per_epoch,
            "generator": self.G.state_dict(),
            "discriminator": self.D.state_dict(),
            "ema": self.ema.model.state_dict() if self.ema is not None else None,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "sched_d": self.sched_d.state_dict(),
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
            "dataset": {"path": str(self.recipe.data.path), "inputs_sha256": self.dataset.meta.get("inputs_sha256")},
        }

    def save(self) -> Path:
        ckpt_dir = self.out / "checkpoints"
        state = self.checkpoint_state()
        path = ckpt_dir / f"step_{self.step:07d}.pt"
        atomic_torch_save(state, path)
        atomic_torch_save(state, ckpt_dir / "last.pt")
        keep = self.recipe.train.keep_checkpoints
        for old in sorted(ckpt_dir.glob("step_*.pt"))[:-keep]:
            old.unlink(missing_ok=True)
        return path

    # -- one step ------------------------------------------------------------------------
    def warming_up(self, step: int | None = None) -> bool:
        """Whether ``step`` (default: the current one) is a generator-only warm-up step."""
        return (self.step if step is None else step) < self.recipe.train.warmup_steps

    def train_step(self) -> torch.Tensor:
        """One D step and one G step (G only during warm-up); returns the step's loss record
        (on the device, in ``self.log_keys`` order; NaN where a warm-up step has no value)."""
        w = self.recipe.loss
        warm = self.warming_up()
        gen = step_generator(self.device, self.recipe.train.seed, self.dist.rank, self.step)
        faces = self.loader.get(self.step, gen)
        batch = self.task.train_batch(faces.images, faces.landmarks, gen)
        autocast = torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp)
        zero = torch.zeros((), device=self.device)
        nan = torch.full((), float("nan"), device=self.device)

        with autocast:
            raw, result = self.task.run(self.G_train, batch)

        # Discriminator step (none during warm-up).
        loss_d = d_real = d_fake = nan
        if not warm:
            self.D.requires_grad_(True)
            with autocast:
                logit_real = self.D_train(batch.target)
                logit_fake = self.D_train(result.detach())
                loss_d = 0.5 * (
                    F.binary_cross_entropy_with_logits(logit_real.float(), torch.ones_like(logit_real, dtype=torch.float32))
                    + F.binary_cross_entropy_with_logits(logit_fake.float(), torch.zeros_like(logit_fake, dtype=torch.float32))
                )
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            d_real = torch.sigmoid(logit_real.detach().float()).mean()
            d_fake = torch.sigmoid(logit_fake.detach().float()).mean()

        # Generator step (D frozen so no gradient is spent on its weights).
        self.D.requires_grad_(False)
        loss_adv = nan
        with autocast:
            if not warm:
                logit_g = self.D(result)  # the plain module: no gradient sync for D in the G step (DDP)
                loss_adv = F.binary_cross_entropy_with_logits(logit_g.float(), torch.ones_like(logit_g, dtype=torch.float32))
            terms = self.task.losses(raw, result, batch)
        loss_id = zero
        if self.id_net is not None:
            from facegan.models.identity import identity_loss

            loss_id = identity_loss(self.id_net, result.float(), batch.target.float())
        weights = self.task.loss_weights()
        loss_task = sum((weights[k] * v for k, v in terms.items()), zero)
        loss_g = loss_task + w.identity * loss_id
        if not warm:
            loss_g = loss_g + w.adversarial * loss_adv
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)

        if self.ema is not None:
            self.ema.update(self.G, self.step)
        self.sched_g.step()
        if not warm:
            self.sched_d.step()
        return torch.stack([
            loss_d.detach(), loss_g.detach(), loss_adv.detach(), terms.get("rec", zero).detach(), loss_id.detach(),
            d_real, d_fake, *(terms.get(k, zero).detach().float() for k in self.extra_terms),
        ])

    def records(self, values: list[list[float]], first: int) -> list[dict]:
        """Log records of steps ``first, first+1, ...``; warm-up records leave out the D columns."""
        out = []
        for i, v in enumerate(values):
            rec = dict(kind="step", step=first + i, **dict(zip(self.log_keys, v)))
            if self.warming_up(first + i - 1):
                for k in ADVERSARIAL_KEYS:
                    rec.pop(k)
                rec["warmup"] = True
            out.append(rec)
        return out

    def collapse_gap(self, records: list[dict]) -> float | None:
        """Mean |D(x) - D(G(z))| over ``records`` when the collapse test applies to them
        (every record adversarial, at least COLLAPSE_GRACE adversarial steps done), else None."""
        if not records or any(r.get("warmup") for r in records):
            return None
        if records[-1]["step"] - self.recipe.train.warmup_steps < COLLAPSE_GRACE:
            return None
        return sum(abs(r["d_real"] - r["d_fake"]) for r in records) / len(records)

    # -- validation / samples -------------------------------------------------------------
    @torch.no_grad()
    def validate(self, n: int = 8) -> dict:
        """EMA generator on the first n faces of val (test when there is no val): grid + PSNR/SSIM."""
        from facegan import metrics
        from facegan.data.loader import to_model_range
        from facegan.report import grid_image, save_image

        name = "val" if "val" in self.dataset.split_names else self.recipe.eval.split
        split = self.dataset.split(name)
        k = min(n, len(split))
        images = to_model_range(torch.from_numpy(split.images[:k].copy()).to(self.device))
        lms = torch.from_numpy(split.landmarks[:k].copy()).to(self.device)
        mask = getattr(self.recipe.eval, "mask", None)  # inpaint only; sr evaluates on plain bicubic
        mask_spec = mask if mask in _mask_types() else "center"
        batch = self.task.eval_batch(images, lms, range(k), mask_spec, getattr(self.recipe.eval, "seed", 0))
        gen = self.ema.model if self.ema is not None else self.G
        was_training = gen.training
        gen.eval()
        raw, result = self.task.run(gen, batch)
        gen.train(was_training)
        out_u8, gt_u8 = metrics.to_uint8(result), metrics.to_uint8(batch.target)
        crop = self.task.scale or 0
        vals = {"psnr": float(metrics.psnr(out_u8, gt_u8, crop_border=crop).mean()),
                "ssim": float(metrics.ssim(out_u8, gt_u8, crop_border=crop).mean())}
        columns = [(v.title, metrics.to_uint8(v.images)) for v in self.task.visuals(batch, raw, result)]
        save_image(grid_image(columns), self.out / "samples" / f"step_{self.step:07d}.png")
        return vals

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> Path:
        from facegan.report import plot_curves, read_log

        t = self.recipe.train
        main = self.dist.main
        log_path = self.out / "log.jsonl"
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "recipe.yaml").write_text(_recipe_yaml(self.recipe))
            truncate_log(log_path, self.step)
        pending: list[torch.Tensor] = []
        device = str(self.device) + (" bf16" if self.amp else "")
        progress = TrainProgress(self.recipe.name, device, self.total, self.step, self.console, enabled=main)
        last_flush = time.perf_counter()
        collapsed = False
        with progress:
            while self.step < self.total:
                pending.append(self.train_step())
                self.step += 1
                done = self.step >= self.total
                if self.step % t.log_every == 0 or done:
                    values = torch.stack(pending).tolist()  # the one host sync of the interval
                    now = time.perf_counter()
                    img_s = len(pending) * t.batch * self.dist.world / max(now - last_flush, 1e-9)
                    records = self.records(values, self.step - len(pending) + 1)
                    pending, last_flush = [], now
                    last = records[-1]
                    if last.get("warmup"):
                        info = f"warm-up (G only) G {last['g']:.3f} rec {last['g_rec']:.3f} id {last['g_id']:.3f}"
                    else:
                        info = (f"D {last['d']:.3f} G {last['g']:.3f} rec {last['g_rec']:.3f} id {last['g_id']:.3f} "
                                f"D(x) {last['d_real']:.2f} D(G(z)) {last['d_fake']:.2f}")
                    gap = self.collapse_gap(records)
                    if gap is not None:
                        records[-1]["d_gap"] = gap
                        if (gap < COLLAPSE_GAP) != collapsed:  # say so when the state changes
                            collapsed = not collapsed
                            progress.note(_collapse_note(self.step, gap, len(records), collapsed),
                                          style="yellow" if collapsed else "dim")
                        if collapsed:
                            info += " [bold red]D collapsed[/]"
                    if main:
                        records[-1]["img_s"] = img_s
                        records[-1]["lr_g"] = self.opt_g.param_groups[0]["lr"]
                        if gap is not None:
                            records[-1]["d_collapsed"] = collapsed
                        append_log(log_path, records)
                    progress.update(self.step, img_s, info)
                if main and (self.step % t.sample_every == 0 or done):
                    vals = self.validate()
                    append_log(log_path, [dict(kind="val", step=self.step, **vals)])
                    plot_curves(read_log(log_path), self.out)
                    progress.note(f"step {self.step}: val PSNR {vals['psnr']:.2f} dB, SSIM {vals['ssim']:.4f}")
                if main and (self.step % t.checkpoint_every == 0 or done):
                    path = self.save()
                    progress.note(f"checkpoint {path.relative_to(self.out)}")
                if self.dist.world > 1 and (self.step % t.checkpoint_every == 0 or done):
                    torch.distributed.barrier()
        return self.out / "checkpoints" / "last.pt"


def _collapse_note(step: int, gap: float, n: int, collapsed: bool) -> str:
    if collapsed:
        return (f"step {step}: mean |D(x) - D(G(z))| = {gap:.3f} < {COLLAPSE_GAP} over the last {n} steps: the "
                "discriminator has collapsed and the adversarial term gives no signal "
                "(try a lower train.lr_d or a longer train.warmup_steps)")
    return f"step {step}: the discriminator separates real and generated faces again (mean |D(x) - D(G(z))| = {gap:.3f})"


def _mask_types() -> tuple[str, ...]:
    from facegan.data.masks import MASK_TYPES

    return MASK_TYPES


def _recipe_yaml(recipe: Recipe) -> str:
    from facegan.recipe import recipe_to_yaml

    return recipe_to_yaml(recipe)


def train(recipe: Recipe, out_dir: Path, resume: bool = False, console=None) -> Path:
    """Train a recipe into ``out_dir``; returns the path of the final checkpoint."""
    trainer = Trainer(recipe, out_dir, resume=resume, console=console)
    if console is not None and trainer.dist.main:
        n_g = sum(p.numel() for p in trainer.G.parameters()) / 1e6
        n_d = sum(p.numel() for p in trainer.D.parameters()) / 1e6
        ident = f"{recipe.loss.identity_net} (x{recipe.loss.identity})" if trainer.id_net is not None else "off"
        task = recipe.task + (f" x{trainer.task.scale}" if trainer.task.scale else "")
        warm = f", {recipe.train.warmup_steps} warm-up steps (G only)" if recipe.train.warmup_steps else ""
        console.print(
            f"[bold]{task}[/] {recipe.name}: G {n_g:.2f} M params, D {n_d:.2f} M, identity loss {ident}{warm}, "
            f"{len(trainer.loader.images)} train faces, batch {recipe.train.batch}, steps {trainer.step}->{trainer.total}, "
            f"device {trainer.device} ({trainer.loader.placement} data){', bf16' if trainer.amp else ''}"
        )
        if recipe.train.amp and not trainer.amp:
            console.print("[yellow]train.amp is on but there is no CUDA device: training in fp32[/]")
    return trainer.run()
