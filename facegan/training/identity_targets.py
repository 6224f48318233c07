"""The identity loss's targets, embedded once per training face instead of at every step.

The identity loss compares the embedding of the generator's result with the embedding of the
ground truth. The network is frozen and a training face is always one of the split's faces,
mirrored or not, so its embedding is known in advance: :class:`TargetEmbeddings` computes it
once for every (face, mirror) pair and the step looks it up by the batch's indices and flips
(a gather on the device, no host sync). The loss and its gradients are the same; only the
no-grad forward pass of the targets, a fifth of the step with MobileFaceNet on a CPU, is gone.

It pays when the run sees each pair at least once on average (``should_cache``); a short run
on a huge split embeds its targets step by step as before. Embeddings are computed in batches
of the training batch's size: a convolution's result for one face can depend on how many faces
share its call (other kernels are picked), never on which, so the cached embeddings are
bit-identical to those a step would compute, and a run that starts caching when it is resumed
with more steps continues exactly.
"""

from __future__ import annotations

import torch

from facegan.data.loader import to_model_range


def should_cache(n_faces: int, flips: bool, images_seen: int) -> bool:
    """Whether embedding every (face, mirror) pair up front costs no more than per step."""
    return n_faces * (2 if flips else 1) <= images_seen


class TargetEmbeddings:
    """(N, 2, D) embeddings of the split's faces, plain (0) and mirrored (1), on the device."""

    def __init__(self, net, images_u8: torch.Tensor, flips: bool, device: torch.device, batch: int,
                 only: torch.Tensor | None = None) -> None:
        """Embed the faces ``images_u8`` (N,S,S,3) uint8, and their mirror images when ``flips``,
        ``batch`` per forward pass (the training batch); ``only`` (positions) limits the work to
        those faces (a benchmark's few steps)."""
        wanted = torch.arange(len(images_u8)) if only is None else only.cpu()
        self.table = torch.zeros((len(images_u8), 2, net.embedding_dim), device=device)
        with torch.no_grad():
            for start in range(0, len(wanted), batch):
                idx = wanted[start : start + batch]
                k = len(idx)
                if k < batch:  # a full batch, as every step has (the padding is dropped)
                    idx = torch.cat([idx, wanted[: batch - k].repeat(batch)[: batch - k]])
                faces = to_model_range(images_u8[idx.to(images_u8.device)].to(device))
                rows = idx[:k].to(device)
                self.table[rows, 0] = net(faces)[:k]
                self.table[rows, 1] = net(faces.flip(-1))[:k] if flips else self.table[rows, 0]

    def lookup(self, indices: torch.Tensor, flipped: torch.Tensor | None) -> torch.Tensor:
        """(B, D) embeddings of faces ``indices`` (positions in the split), mirrored where ``flipped``."""
        which = flipped.long() if flipped is not None else torch.zeros_like(indices)
        return self.table[indices, which]
