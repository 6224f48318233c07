"""Seeded train/val/test splits that keep each identity inside one split.

Used where a dataset ships no official split (a folder of photos, CelebA-HQ without CelebA's
annotation files). Images are grouped (by identity where it is known, otherwise each image is
its own group), the groups are shuffled with ``seed``, and each group goes to the split that
is furthest below its share of images. The same inputs and seed always give the same split.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facegan.core.errors import FaceganError
from facegan.data.packed import SPLIT_ORDER

DEFAULT_FRACTIONS = (0.9, 0.05, 0.05)


def parse_fractions(text: str) -> tuple[float, float, float]:
    """``"0.9,0.05,0.05"`` -> (0.9, 0.05, 0.05); three non-negative numbers summing to 1."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise FaceganError(f"--split takes three numbers like 0.9,0.05,0.05 (train,val,test), "
                           f"got {text!r}") from None
    if len(values) != 3:
        raise FaceganError(f"--split takes three numbers (train,val,test), got {len(values)} "
                           f"in {text!r}")
    if any(not np.isfinite(v) or v < 0 for v in values) or values[0] <= 0:
        raise FaceganError(f"--split fractions must be >= 0 with train > 0, got {text!r}")
    if abs(sum(values) - 1.0) > 1e-6:
        raise FaceganError(f"--split fractions must add up to 1, got {text!r} "
                           f"(sum {sum(values):g})")
    return values  # type: ignore[return-value]


def seeded_split(
    identities: Sequence[str], fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0
) -> list[str]:
    """The split name of each item; items with the same non-empty identity share a split.

    Items with identity "" are placed one by one. Deterministic for given inputs and seed.
    """
    groups: dict[str, list[int]] = {}
    for i, identity in enumerate(identities):
        groups.setdefault(identity if identity else f"\0{i}", []).append(i)
    keys = sorted(groups)
    order = np.random.default_rng(seed).permutation(len(keys))
    targets = np.asarray(fractions, dtype=np.float64) * len(identities)
    counts = np.zeros(len(SPLIT_ORDER))
    result = [""] * len(identities)
    for k in order:
        members = groups[keys[k]]
        choice = int(np.argmax(targets - counts))  # the split furthest below its share
        counts[choice] += len(members)
        for i in members:
            result[i] = SPLIT_ORDER[choice]
    return result
