"""Digests of tensors and networks: equal digests mean bit-identical weights (or inputs)."""

from __future__ import annotations

import hashlib
import itertools

import torch


def weights_digest(modules, buffers: bool = False) -> str:
    """SHA-256 of the modules' parameters, in order: equal digests mean bit-identical weights.
    (Buffers such as BatchNorm statistics are left out unless ``buffers``: under DDP each
    process updates them from its own slice of the batch, and rank 0's are the ones broadcast
    and saved. A frozen network's buffers change its outputs: include them to key its results.)"""
    sha = hashlib.sha256()
    for module in modules:
        named = module.named_parameters()
        if buffers:
            named = itertools.chain(named, module.named_buffers())
        for key, value in named:
            hash_tensor(sha, key, value)
    return sha.hexdigest()


def hash_tensor(sha, label: str, value: torch.Tensor) -> None:
    """Feed ``label`` and ``value``'s bytes (any dtype or shape, on any device) to the hash ``sha``."""
    sha.update(label.encode())
    value = value.detach().cpu().contiguous()
    sha.update(value.reshape(-1).view(torch.uint8).numpy().tobytes() if value.numel() else b"")
