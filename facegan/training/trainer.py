"""The one training loop: D step, G step, AMP, EMA, DDP, checkpoints, logs.

Written once for every task (:class:`facegan.tasks.base.Task`). A :class:`Trainer` has
named phases, in the manner of litgpt's setup / fit / validate:

* **build** (``__init__``): the process group and device, the data, the task's models, EMA,
  the identity network, optimizers and schedules; ``resume`` loads the last checkpoint;
* **step** (:meth:`Trainer.train_step`): one D step and one G step, no host sync;
* **flush** (:meth:`Trainer.flush`): every ``train.log_every`` steps (and before every sample
  and checkpoint) the device-side loss records go to ``log.jsonl`` in one transfer, are
  checked (a non-finite loss stops the run, a collapsed discriminator is reported) and
  summarised on the progress line (:mod:`facegan.training.run_log`);
* **sample** (:meth:`Trainer.sample`, :mod:`facegan.training.samples`): the EMA generator on
  the first validation faces, scored by the task's own metrics, a grid and the curves;
* **checkpoint** (:meth:`Trainer.checkpoint`): an atomic save of everything needed to resume.

Per step: the task makes its inputs from this step's batch; the generator runs once; a D step
on (ground truth, detached result) and a G step on the task's losses (weighted by the recipe),
the adversarial term (:mod:`facegan.training.adversarial`) and the identity loss (frozen
network); EMA update; schedules. The first ``train.warmup_steps`` steps are generator-only.

Under ``torchrun`` each process takes its slice of every global batch and its own random
stream (seed, rank, step); only rank 0 prints, plots and saves. Randomness is a pure function
of (seed, rank, step), so a resumed run continues exactly as the uninterrupted one would have.

:func:`facegan.training.train.train` is the entry point: it guards the run folder and calls
:meth:`Trainer.fit`.
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path

import torch
from torch import nn

from facegan import __version__
from facegan.checkpoints.checkpoint import Checkpoint
from facegan.checkpoints.format import FORMAT, FORMAT_VERSION, atomic_torch_save
from facegan.core.atomic import WriteError
from facegan.core.device import pick_device
from facegan.core.errors import FaceganError
from facegan.tasks.recipes import recipe_to_yaml
from facegan.tasks.schema import Recipe
from facegan.training.adversarial import discriminator_loss, generator_loss
from facegan.training.run_log import RunLog, TrainProgress, truncate_log
from facegan.training.run_state import (
    EMA, agreed_weights_digest, all_finite, check_resume_compatible, intact_hint, load_init_weights,
)
from facegan.training.runtime import setup_distributed, step_generator
from facegan.training.samples import sample_split, write_samples


def total_steps(recipe: Recipe, steps_per_epoch: int) -> int:
    t = recipe.train
    return t.steps if t.steps is not None else max(1, math.ceil(t.epochs * steps_per_epoch))


class Trainer:
    """One run: built (or resumed) by ``__init__``, trained by :meth:`fit`."""

    def __init__(self, recipe: Recipe, out_dir: Path, resume: bool = False, console=None,
                 bench_steps: int | None = None) -> None:
        self.recipe, self.out, self.console = recipe, Path(out_dir), console
        #: `facegan bench train` runs only this many steps: set-up work is limited to them.
        self.bench_steps = bench_steps
        self.dist = setup_distributed()
        self.device = pick_device(recipe.train.device, self.dist.local_rank, option="train.device")
        self.amp = bool(recipe.train.amp and self.device.type == "cuda")
        #: loss.adversarial = 0: a plain regression run; the discriminator is built (checkpoints
        #: keep their shape) but never run or stepped.
        self.adversarial = recipe.loss.adversarial > 0
        self._check_run_folder(resume)
        self._build_data()
        self._build_models()
        #: the stages the starting weights were trained in (train.init_from), oldest first
        self.earlier_stages: list[dict] = []
        if recipe.train.init_from and not resume:
            self.earlier_stages = load_init_weights(recipe, self.task.name, self.G, self.ema, self.D)
        self._build_optimizers()
        self.step = 0
        self.phase = _no_phase  # bench: replaced by a timer of each phase of a step
        if resume:
            self._resume(self.out / "checkpoints" / "last.pt")
        self._wrap_distributed()
        self.log = RunLog(self.out / "log.jsonl", self.terms, recipe.train.warmup_steps, self.task.progress_terms,
                          adversarial=self.adversarial)
        self.sample_settings = self.task.eval_settings(size=self.dataset.size)

    # ---- build ------------------------------------------------------------------------------

    def _check_run_folder(self, resume: bool) -> None:
        last = self.out / "checkpoints" / "last.pt"
        if not resume and last.exists():
            raise FaceganError(f"{self.out} already holds a run; pass --resume to continue it or --out to start a new one")
        if resume and not last.exists():
            raise FaceganError(f"--resume: {last} not found; {intact_hint(last)}")

    def _build_data(self) -> None:
        from facegan.data.loader import BatchLoader
        from facegan.data.packed import PackedDataset

        r, t = self.recipe, self.recipe.train
        self.dataset = PackedDataset(r.data.path)
        if self.dataset.size != r.data.size:
            raise FaceganError(
                f"data.size is {r.data.size} but {r.data.path} holds {self.dataset.size}x{self.dataset.size} faces; "
                f"set data.size={self.dataset.size} or prepare the data at --size {r.data.size}"
            )
        self.loader = BatchLoader(
            self.dataset.split("train"), t.batch, self.device, seed=t.seed, rank=self.dist.rank,
            world=self.dist.world, placement=r.data.placement, flip=r.data.hflip,
        )
        self.total = total_steps(r, self.loader.steps_per_epoch)

    def _build_models(self) -> None:
        from facegan.tasks.registry import make_task

        r = self.recipe
        self.task = make_task(r)
        torch.manual_seed(r.train.seed)  # identical initial weights on every rank
        self.G = self.task.build_generator().to(self.device)
        self.D = self.task.build_discriminator().to(self.device)
        self.ema = EMA(self.G, r.train.ema) if r.train.ema > 0 else None
        self.task.prepare_training(self.device)  # frozen loss networks; fails early when missing
        self.terms = list(self.task.loss_weights())
        self.id_net = self.id_targets = None
        if r.loss.identity > 0:
            from facegan.models.identity import load_identity_net

            self.id_net = load_identity_net(r.loss.identity_net, r.loss.identity_weights, device=self.device,
                                            blur=r.loss.identity_blur)
            self.id_net.amp = self.amp  # its backbone in bf16 on CUDA (the crop and the cosine in fp32)
            self._embed_targets()
        if r.train.channels_last:
            for m in (self.G, self.D, self.id_net):
                if m is not None:
                    m.to(memory_format=torch.channels_last)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest kernels once

    def _embed_targets(self) -> None:
        """Embed every training face (and its mirror image) once, when the run sees each at
        least once on average (:mod:`facegan.training.identity_targets`)."""
        from facegan.training.identity_targets import TargetEmbeddings, should_cache

        t, n = self.recipe.train, len(self.loader.images)
        if not t.identity_cache or not should_cache(n, self.recipe.data.hflip, self.total * t.batch * self.dist.world):
            return
        status = contextlib.nullcontext()
        if self.console is not None and self.dist.main:
            status = self.console.status(f"embedding the {n:,} training faces once for the identity loss")
        only = self.loader.indices_for_steps(0, self.bench_steps) if self.bench_steps else None
        with status:
            self.id_targets = TargetEmbeddings(self.id_net, self.loader.images, self.recipe.data.hflip, self.device,
                                               t.batch, only=only)

    def _build_optimizers(self) -> None:
        t = self.recipe.train
        fused = self.device.type == "cuda"  # one kernel per step for all parameters
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=t.lr_g, betas=t.betas, fused=fused)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=t.lr_d, betas=t.betas, fused=fused)
        self.sched_g = self._scheduler(self.opt_g, self.total)
        self.sched_d = self._scheduler(self.opt_d, self.d_steps)

    def _wrap_distributed(self) -> None:
        """The modules the step calls: DDP-wrapped under torchrun, compiled with train.compile
        (the plain modules keep the weights: checkpoints never see the wrappers)."""
        self.G_train, self.D_train, self.D_frozen = self.G, self.D, self.D
        if self.dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.G_train = DDP(self.G, device_ids=ids)
            self.D_train = DDP(self.D, device_ids=ids)
        if self.recipe.train.compile:
            self.G_train, self.D_train, self.D_frozen = (torch.compile(m) for m in (self.G_train, self.D_train, self.D))
            if self.id_net is not None:
                self.id_net.backbone = torch.compile(self.id_net.backbone)

    @property
    def d_steps(self) -> int:
        """Steps the discriminator trains (its schedule's length): all but the warm-up."""
        return max(1, self.total - self.recipe.train.warmup_steps)

    def _scheduler(self, opt: torch.optim.Optimizer, steps: int):
        if self.recipe.train.lr_schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)

    def _resume(self, path: Path) -> None:
        try:
            ckpt = Checkpoint.load(path, task=self.task.name).state
        except FaceganError as err:
            if "not a readable" not in str(err) and "not a facegan checkpoint" not in str(err):
                raise
            raise FaceganError(f"{err}; {intact_hint(path)}") from None
        self.task.check_resume(ckpt, str(path))
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
        self.earlier_stages = list(ckpt.get("earlier_stages") or [])
        if self.step >= self.total:
            raise FaceganError(f"{path} is already at step {self.step} of {self.total}; raise train.steps to train longer")

    # ---- step -------------------------------------------------------------------------------

    def warming_up(self, step: int | None = None) -> bool:
        """Whether ``step`` (default: the current one) is a generator-only warm-up step."""
        return (self.step if step is None else step) < self.recipe.train.warmup_steps

    def adversarial_step(self, step: int | None = None) -> bool:
        """Whether ``step`` (default: the current one) trains D and adds the adversarial term:
        past the warm-up, and only when loss.adversarial is above 0."""
        return self.adversarial and not self.warming_up(step)

    def train_step(self) -> torch.Tensor:
        """One D step and one G step (G only during warm-up, or with loss.adversarial 0); returns
        the step's loss record (on the device, in ``self.log.keys`` order; NaN where a
        generator-only step has no value)."""
        w = self.recipe.loss
        adv = self.adversarial_step()
        phase = self.phase
        autocast = torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp)
        zero = torch.zeros((), device=self.device)
        nan = torch.full((), float("nan"), device=self.device)

        with phase("batch"):
            gen = step_generator(self.device, self.recipe.train.seed, self.dist.rank, self.step)
            faces = self.loader.get(self.step, gen)
            if self.recipe.train.channels_last:
                faces.images = faces.images.contiguous(memory_format=torch.channels_last)
            batch = self.task.train_batch(faces.images, faces.landmarks, gen)
        with phase("g_forward"), autocast:
            raw, result = self.task.run(self.G_train, batch)

        loss_d = d_real = d_fake = nan
        if adv:
            with phase("d_step"):
                self.D.requires_grad_(True)
                with autocast:
                    logit_real = self.D_train(batch.target)
                    logit_fake = self.D_train(result.detach())
                    loss_d = discriminator_loss(logit_real, logit_fake, w.adversarial_loss)
                self.opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                self.opt_d.step()
                d_real = torch.sigmoid(logit_real.detach().float()).mean()
                d_fake = torch.sigmoid(logit_fake.detach().float()).mean()

        loss_id = zero
        if self.id_net is not None:
            with phase("identity"):
                from facegan.models.identity import identity_loss

                known = self.id_targets is not None and batch.target is faces.images
                target_emb = self.id_targets.lookup(faces.indices, faces.flipped) if known else None
                loss_id = identity_loss(self.id_net, result.float(), batch.target.float(), target_emb)

        with phase("g_step"):
            self.D.requires_grad_(False)  # no gradient spent on D's weights in the G step
            loss_adv = nan
            with autocast:
                if adv:
                    logit_g = self.D_frozen(result)  # not DDP-wrapped: no gradient sync for D in the G step
                    real_g = self.D_frozen(batch.target).detach() if w.adversarial_loss == "relativistic" else None
                    loss_adv = generator_loss(logit_g, real_g, w.adversarial_loss)
                terms = self.task.losses(raw, result, batch)
            weights = self.task.loss_weights()
            loss_g = sum((weights[k] * v for k, v in terms.items()), zero) + w.identity * loss_id
            if adv:
                loss_g = loss_g + w.adversarial * loss_adv
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
            self.D.requires_grad_(True)

        with phase("ema"):
            if self.ema is not None:
                self.ema.update(self.G, self.step)
            self.sched_g.step()
            if adv:
                self.sched_d.step()
        return torch.stack([
            loss_d.detach(), loss_g.detach(), loss_adv.detach(), loss_id.detach(), d_real, d_fake,
            *(terms.get(k, zero).detach().float() for k in self.terms),
        ])

    # ---- flush ------------------------------------------------------------------------------

    def flush(self, pending: list[torch.Tensor], seconds: float, progress: TrainProgress) -> None:
        """Move the pending loss records to the host (one sync), stop on a non-finite loss,
        report the discriminator's health, write log.jsonl (rank 0) and update the progress."""
        values = torch.stack(pending).tolist()
        records = self.log.records(values, self.step - len(pending) + 1)
        bad = self.log.first_non_finite(records)
        if self.dist.world > 1:  # every rank stops together
            flag = torch.tensor([0.0 if bad is None else 1.0], device=self.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            if bad is None and flag.item() > 0:
                bad = (self.step, "on another process")
        if bad is not None:
            if self.dist.main:
                self.log.write(records)
            raise self.log.diverged(*bad, kept=self._kept_checkpoint())
        img_s = len(pending) * self.recipe.train.batch * self.dist.world / max(seconds, 1e-9)
        info, notes = self.log.health(records)
        for note in notes:
            progress.note(note, style="yellow" if self.log.alarmed else "dim")
        if self.dist.main:
            records[-1]["img_s"] = img_s
            records[-1]["lr_g"] = self.opt_g.param_groups[0]["lr"]
            self.log.write(records)
        progress.update(self.step, img_s, info)

    def _kept_checkpoint(self) -> str:
        last = self.out / "checkpoints" / "last.pt"
        if last.is_file():
            return "checkpoints/last.pt (the last finite weights) is kept"
        return "no checkpoint was written"

    # ---- sample -----------------------------------------------------------------------------

    def sample(self, progress: TrainProgress) -> None:
        """The EMA generator on the first validation faces (:mod:`facegan.training.samples`);
        skipped when there are none (fit says so once)."""
        split = sample_split(self.dataset, self.recipe.eval.split)
        if split is not None:
            gen = self.ema.model if self.ema is not None else self.G
            progress.note(write_samples(self.task, gen, split, self.sample_settings, self.step, self.out,
                                        self.log, self.device))

    # ---- checkpoint -------------------------------------------------------------------------

    def models(self) -> list[nn.Module]:
        """The modules a checkpoint saves: G, D and (when on) the EMA generator."""
        return [self.G, self.D] + ([self.ema.model] if self.ema is not None else [])

    def checkpoint_state(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "facegan_version": __version__,
            **self.task.checkpoint_info(),
            "template": {"name": self.dataset.meta.get("template", {}).get("name"),
                         "points": self.dataset.template.tolist()},
            "recipe": self.recipe.model_dump(mode="json"),
            "earlier_stages": self.earlier_stages,
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
        """Write step_N.pt and last.pt atomically (refusing non-finite weights); prune old ones."""
        if not all_finite([p for m in self.models() for p in m.state_dict().values()]):
            raise self.log.diverged(self.step, "(the weights)", kept=self._kept_checkpoint())
        ckpt_dir = self.out / "checkpoints"
        state = self.checkpoint_state()
        path = ckpt_dir / f"step_{self.step:07d}.pt"
        try:
            atomic_torch_save(state, path)
            atomic_torch_save(state, ckpt_dir / "last.pt")
        except WriteError as err:  # a full disk: the run stops, every checkpoint on disk is whole
            raise FaceganError(f"{err}; the run stopped at step {self.step}: free some space, then "
                               f"`facegan train {self.out} --resume` ({intact_hint(ckpt_dir / 'last.pt')})",
                               exit_code=1) from None
        keep = self.recipe.train.keep_checkpoints
        for old in sorted(ckpt_dir.glob("step_*.pt"))[:-keep]:
            old.unlink(missing_ok=True)
        return path

    def checkpoint(self, progress: TrainProgress) -> None:
        """Save on rank 0; every rank waits for it. Under torchrun every rank first shows the
        digest of its weights: DDP keeps them bit-identical, and a run whose ranks drifted
        apart stops here instead of saving one rank's view of it."""
        if self.dist.world > 1:
            digest = agreed_weights_digest(self.models(), self.dist.world, self.step)
            if self.dist.main:
                self.log.write([dict(kind="ddp", step=self.step, world=self.dist.world, weights_sha256=digest,
                                     ranks_identical=True)])
        if self.dist.main:
            path = self.save()
            progress.note(f"checkpoint {path.relative_to(self.out)}")
        if self.dist.world > 1:
            torch.distributed.barrier()

    # ---- fit --------------------------------------------------------------------------------

    def fit(self) -> Path:
        """Train to ``total`` steps; returns the path of the last checkpoint."""
        t = self.recipe.train
        if self.dist.main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "recipe.yaml").write_text(recipe_to_yaml(self.recipe))
            truncate_log(self.log.path, self.step)
        device = str(self.device) + (" bf16" if self.amp else "")
        progress = TrainProgress(self.recipe.name, device, self.total, self.step, self.console, enabled=self.dist.main)
        if self.dist.main:
            self.log.write([dict(kind="start", step=self.step, world=self.dist.world, batch_per_process=t.batch,
                                 global_batch=t.batch * self.dist.world, device=str(self.device),
                                 identity_targets_cached=self.id_targets is not None)])
            if sample_split(self.dataset, self.recipe.eval.split) is None:
                progress.note("no validation faces (the val split is empty): training without samples or val scores",
                              "yellow")
        pending: list[torch.Tensor] = []
        last_flush = time.perf_counter()
        with progress:
            while self.step < self.total:
                pending.append(self.train_step())
                self.step += 1
                done = self.step >= self.total
                sample = self.step % t.sample_every == 0 or done
                save = self.step % t.checkpoint_every == 0 or done
                if self.step % t.log_every == 0 or sample or save:
                    now = time.perf_counter()
                    self.flush(pending, now - last_flush, progress)
                    pending, last_flush = [], now
                if sample and self.dist.main:
                    self.sample(progress)
                if save:
                    self.checkpoint(progress)
        return self.out / "checkpoints" / "last.pt"



@contextlib.contextmanager
def _no_phase(name: str):
    yield
