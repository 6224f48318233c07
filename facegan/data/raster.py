"""Exact rasterising of unions of convex shapes, batched on the device (for the masks).

Every shape is a union of convex pieces. A convex piece meets each pixel row in one interval,
so a piece is described by two (..., S) tensors: the left and right ends of its interval on
every row (empty when left > right). That costs O(batch x rows) per piece instead of
O(batch x pixels); :func:`fill_rows` then paints all intervals at once. Coordinates are
continuous (pixel j covers [j, j + 1)).
"""

from __future__ import annotations

import torch
from torch import Tensor

BIG = 1.0e9  # "infinity" for row intervals, finite so arithmetic never makes NaN


def centres(size: int, device) -> Tensor:
    """Continuous coordinates of the pixel centres along one axis: 0.5, 1.5, ..."""
    return torch.arange(size, device=device, dtype=torch.float32) + 0.5


def slab_rows(a: Tensor, b: Tensor, lo: Tensor, hi: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Rows of the slab ``lo <= a*x + b*y <= hi`` (all (...)) as (left, right), each (..., S)."""
    y = centres(size, a.device)
    small = a.abs() < 1e-6
    inv = 1.0 / torch.where(small, torch.ones_like(a), a)
    at_lo = (lo[..., None] - b[..., None] * y) * inv[..., None]  # x where a*x + b*y = lo
    at_hi = (hi[..., None] - b[..., None] * y) * inv[..., None]
    left, right = torch.minimum(at_lo, at_hi), torch.maximum(at_lo, at_hi)
    # a ~ 0: the constraint does not depend on x, so a row is all in or all out.
    inside = (lo[..., None] <= b[..., None] * y) & (b[..., None] * y <= hi[..., None])
    free_left = torch.where(inside, -BIG, BIG)
    free_right = -free_left
    flat = small[..., None]
    return torch.where(flat, free_left, left), torch.where(flat, free_right, right)


def intersect(*pieces: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """Rows of the intersection of convex pieces."""
    left = torch.stack([p[0] for p in pieces]).amax(0)
    right = torch.stack([p[1] for p in pieces]).amin(0)
    return left, right


def hull(*pieces: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """Rows of a union of pieces that is known to be convex (e.g. a capsule's parts)."""
    left = torch.stack([p[0] for p in pieces]).amin(0)
    right = torch.stack([p[1] for p in pieces]).amax(0)
    return left, right


def disc_rows(cx: Tensor, cy: Tensor, r: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Rows of the discs (cx, cy, r), all (...)."""
    dy = centres(size, cx.device) - cy[..., None]
    h2 = r[..., None] ** 2 - dy * dy
    h = h2.clamp_min(0).sqrt()
    hit = h2 >= 0
    return torch.where(hit, cx[..., None] - h, BIG), torch.where(hit, cx[..., None] + h, -BIG)


def fill_rows(left: Tensor, right: Tensor, size: int) -> Tensor:
    """Paint the union of per-row intervals: (n, m, S) each -> boolean (n, S, S).

    A difference array: +1 at each interval's first covered column, -1 after its last, then
    a cumulative sum along each row. A pixel is covered when its centre lies in the interval.
    """
    n, m, _ = left.shape
    left = torch.nan_to_num(left, nan=BIG, posinf=BIG, neginf=-BIG)
    right = torch.nan_to_num(right, nan=-BIG, posinf=BIG, neginf=-BIG)
    first = torch.ceil(left - 0.5).clamp(0, size).long()  # first column with centre >= left
    last = torch.floor(right - 0.5).clamp(-1, size - 1).long()  # last column with centre <= right
    weight = (first <= last).to(torch.int32).reshape(-1)
    # Flat index of (sample, row, column) in an (n, S, S + 1) array; 1-D scatter_add_ also
    # has a deterministic CUDA implementation (torch.use_deterministic_algorithms).
    sample = torch.arange(n, device=left.device)[:, None, None] * (size * (size + 1))
    row = sample + torch.arange(size, device=left.device) * (size + 1)
    diff = torch.zeros(n * size * (size + 1), dtype=torch.int32, device=left.device)
    diff.scatter_add_(0, (row + first).reshape(-1), weight)
    diff.scatter_add_(0, (row + last + 1).reshape(-1), -weight)
    return diff.view(n, size, size + 1).cumsum(2, dtype=torch.int32)[:, :, :size] > 0


class Frame:
    """A rotated frame: s along the unit vector u, t along v = u turned 90 degrees (down).

    Built from an origin (ox, oy) and u (ux, uy), all tensors of one batch shape. Its methods
    give the rows of frame-aligned boxes, half-planes and ellipses.
    """

    def __init__(self, ox: Tensor, oy: Tensor, ux: Tensor, uy: Tensor, size: int) -> None:
        self.ox, self.oy, self.ux, self.uy, self.size = ox, oy, ux, uy, size
        self.vx, self.vy = -uy, ux

    def slab(self, ds: Tensor, dt: Tensor, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
        """Rows of ``lo <= ds*s + dt*t <= hi``."""
        a = ds * self.ux + dt * self.vx
        b = ds * self.uy + dt * self.vy
        shift = a * self.ox + b * self.oy
        return slab_rows(a, b, lo + shift, hi + shift, self.size)

    def box(self, s0: Tensor, s1: Tensor, t0: Tensor, t1: Tensor) -> tuple[Tensor, Tensor]:
        """Rows of the box ``[s0, s1] x [t0, t1]``."""
        one, zero = torch.ones_like(s0), torch.zeros_like(s0)
        return intersect(self.slab(one, zero, s0, s1), self.slab(zero, one, t0, t1))

    def ellipse(self, cs: Tensor, ct: Tensor, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        """Rows of the ellipse centred (cs, ct) with semi-axes a (along s) and b (along t)."""
        y = centres(self.size, self.ox.device)
        e = lambda t: t[..., None]  # noqa: E731 - broadcast a batch tensor over the rows
        # s/a = p1*x + q1 and t/b = p2*x + q2 on row y; solve (p1 x + q1)^2 + (p2 x + q2)^2 = 1.
        p1, p2 = e(self.ux / a), e(self.vx / b)
        q1 = (e(self.uy) * y - e(self.ux * self.ox + self.uy * self.oy + cs)) / e(a)
        q2 = (e(self.vy) * y - e(self.vx * self.ox + self.vy * self.oy + ct)) / e(b)
        aa = p1 * p1 + p2 * p2
        bb = p1 * q1 + p2 * q2
        disc = bb * bb - aa * (q1 * q1 + q2 * q2 - 1)
        root = disc.clamp_min(0).sqrt()
        hit = disc >= 0
        left = torch.where(hit, (-bb - root) / aa, BIG)
        right = torch.where(hit, (-bb + root) / aa, -BIG)
        return left, right
