"""What a task engine gives the shared training loop.

A task turns clean faces into generator inputs and targets, runs its generator, and names
its own loss terms; everything generic (optimizers, adversarial and identity losses, AMP,
EMA, checkpoints, logging, DDP) lives once in :mod:`facegan.engines.gan`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class TaskBatch:
    """One batch as a task sees it."""

    target: torch.Tensor  # (B,3,H,W) ground truth in [-1, 1]
    inputs: tuple[torch.Tensor, ...]  # positional generator inputs
    mask: torch.Tensor | None = None  # (B,1,H,W), 1 = hole (inpaint)
    extra: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class Visual:
    """One column of a sample grid."""

    title: str
    images: torch.Tensor  # (B,3,H,W) in [-1, 1]
