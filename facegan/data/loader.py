"""Random training batches from a packed split, straight to the device.

The whole split is held as one uint8 tensor, on the accelerator when it fits (then a batch
is a single gather, no host copies) or in pinned host RAM (one gather + one asynchronous
copy per step). There is no per-image decoding and no Python loop per image: a step's batch
is ``images[index]``.

Data order is a pure function of (seed, epoch): every process draws the same permutation
of the split and takes its own slice of each global batch, so a run is reproducible, a
resumed run sees exactly the batches it would have seen, and DistributedDataParallel ranks
never overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from facegan.data.packed import Split

#: Landmark order after a horizontal flip: left/right eyes and mouth corners swap.
FLIP_ORDER = [1, 0, 2, 4, 3]


@dataclass
class FaceBatch:
    images: torch.Tensor  # (B,3,S,S) float in [-1, 1]
    landmarks: torch.Tensor  # (B,5,2) float, pixel-index coordinates
    indices: torch.Tensor  # (B,) positions in the split (on the device)
    flipped: torch.Tensor | None = None  # (B,) bool, True where the face was mirrored


def to_model_range(images_u8: torch.Tensor) -> torch.Tensor:
    """(B,S,S,3) uint8 -> (B,3,S,S) float in [-1, 1]."""
    return images_u8.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def hflip(batch: FaceBatch, flip: torch.Tensor) -> FaceBatch:
    """Flip the samples where ``flip`` (B,) is True, landmarks included."""
    size = batch.images.shape[-1]
    images = torch.where(flip[:, None, None, None], batch.images.flip(-1), batch.images)
    flipped = batch.landmarks[:, FLIP_ORDER].clone()
    flipped[..., 0] = size - 1 - flipped[..., 0]
    landmarks = torch.where(flip[:, None, None], flipped, batch.landmarks)
    return FaceBatch(images, landmarks, batch.indices, flip)


class BatchLoader:
    """Batches of ``batch`` faces per process, drawn without replacement per epoch."""

    def __init__(
        self,
        split: Split,
        batch: int,
        device: torch.device,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
        placement: str = "auto",
        flip: bool = True,
    ) -> None:
        self.n = len(split)
        self.batch, self.seed, self.rank, self.world, self.flip = batch, seed, rank, world, flip
        self.device = device
        if self.n < batch * world:
            from facegan.core.errors import FaceganError

            raise FaceganError(
                f"train.batch {batch} x {world} process(es) is larger than the {split.name} split "
                f"({self.n} images); lower train.batch"
            )
        self.placement = self._choose_placement(split, placement, device)
        images = torch.from_numpy(np.array(split.images))  # one read of the memory map into RAM
        if self.placement == "device":
            self.images = images.to(device)
        elif device.type == "cuda":
            self.images = images.pin_memory()
        else:
            self.images = images
        self.landmarks = torch.from_numpy(np.asarray(split.landmarks, dtype=np.float32)).to(device)
        self._perm_epoch = -1
        self._perm = torch.empty(0, dtype=torch.long)

    @staticmethod
    def _choose_placement(split: Split, placement: str, device: torch.device) -> str:
        if device.type != "cuda" or placement == "host":
            return "device" if device.type == "cpu" else "host"
        if placement == "device":
            return "device"
        free, _ = torch.cuda.mem_get_info(device)
        return "device" if split.images.nbytes < free / 4 else "host"

    @property
    def steps_per_epoch(self) -> int:
        return self.n // (self.batch * self.world)

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.n, generator=g)
            self._perm_epoch = epoch
        return self._perm

    def indices_for_steps(self, first: int, last: int) -> torch.Tensor:
        """The positions in the split of every face this process takes in steps [first, last)."""
        per_step = self.batch * self.world
        picked = []
        for step in range(first, last):
            epoch, pos = divmod(step, self.steps_per_epoch)
            start = pos * per_step + self.rank * self.batch
            picked.append(self._permutation(epoch)[start : start + self.batch])
        return torch.unique(torch.cat(picked)) if picked else torch.zeros(0, dtype=torch.long)

    def get(self, step: int, generator: torch.Generator | None = None) -> FaceBatch:
        """The batch of global step ``step`` for this process (flips drawn from ``generator``)."""
        epoch, pos = divmod(step, self.steps_per_epoch)
        per_step = self.batch * self.world
        start = pos * per_step + self.rank * self.batch
        index = self._permutation(epoch)[start : start + self.batch]
        on_device = index.to(self.device)
        if self.placement == "device":
            raw = self.images[on_device]
        else:
            raw = self.images[index].to(self.device, non_blocking=True)
        out = FaceBatch(to_model_range(raw), self.landmarks[on_device], on_device)
        if self.flip:
            draw = torch.rand(self.batch, generator=generator, device=self.device)
            out = hflip(out, draw < 0.5)
        return out
