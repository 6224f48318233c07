"""Occlusion masks: named generators made on the device, per batch, (mask files: :mod:`facegan.data.mask_files`).

A mask is a float32 tensor ``(B, 1, H, W)`` with values exactly 0 or 1; **1 = hole** (the
area to inpaint, white in a PNG). Every generator works on the whole batch at once with
tensor operations on the target device: there is no Python loop over the samples of a batch.

Geometry is done in *continuous* coordinates (pixel ``j`` covers ``[j, j + 1)``, its centre is
``j + 0.5``); landmarks, which facegan keeps in pixel-index coordinates (see
:mod:`facegan.faces.geometry`), are shifted by +0.5 on entry. A pixel is a hole when its centre
lies inside the shape, so every mask lies inside the image by construction.

The named kinds (``random=True`` adds per-sample jitter for training; ``random=False`` gives
the canonical shape used for evaluation and ``restore``):

- ``center``: the middle 50% square (jitter: position by up to 5% of the side).
- ``half``: the left or the right half (random side; canonical: the left half).
- ``eyes``: a box over both eyes, placed from each face's landmarks in the face's own frame
  (x along the eye line): from 0.5 d outside the left eye to 0.5 d outside the right eye and
  +-0.33 d around the eye line, d = eye distance (jitter: size +-15%, position +-0.1 d).
- ``mouth``: a box over the mouth: 0.35 x mouth width outside each corner, from 0.3 d above
  to 0.4 d below the mouth line (the lower lip hangs below the corners); jitter as ``eyes``.
- ``box``: a random rectangle, 20-50% of the side in each dimension, anywhere inside.
- ``freeform``: DeepFill-style brush strokes (polylines with a random brush width), made by
  an exact row-interval rasteriser; typically 10-40% holes.
- ``glasses``: two elliptic lenses around the eyes, a bridge and the start of the temples.
- ``facemask``: a surgical mask from a bit above the nose tip to below the chin, between the
  cheeks, with a rounded bottom.

``box`` and ``freeform`` are random by nature; ``random=False`` does not change them (their
evaluation masks are reproducible through :func:`eval_masks`). Landmark-based masks whose
hole would be under 1% of the image (landmarks off the image, degenerate or NaN) fall back to
the same shape on the template face, so every mask has at least 1% holes.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import torch
from torch import Tensor

from facegan.core.errors import FaceganError
from facegan.data.raster import BIG, Frame, centres, disc_rows, fill_rows, hull, intersect
from facegan.faces.geometry import template_points

MASK_TYPES: tuple[str, ...] = (
    "center",
    "half",
    "eyes",
    "mouth",
    "box",
    "freeform",
    "glasses",
    "facemask",
)
#: The kinds whose shape comes from the face's landmarks.
LANDMARK_TYPES: tuple[str, ...] = ("eyes", "mouth", "glasses", "facemask")
#: Every generated mask has at least this fraction of hole pixels.
MIN_HOLE_FRACTION = 0.01

# Free-form strokes: at most this many strokes per mask, each with this many vertices.
_FREEFORM_STROKES = 5
_FREEFORM_VERTICES = 5


# --------------------------------------------------------------------------- random numbers


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None, device) -> Tensor:
    """Uniform [0, 1) numbers from ``generator`` (on its own device) or the global RNG."""
    if generator is not None:
        return torch.rand(shape, generator=generator, device=generator.device).to(device)
    return torch.rand(shape, device=device)


def _span(u: Tensor, lo: float, hi: float) -> Tensor:
    """Map uniform [0, 1) numbers to [lo, hi)."""
    return lo + (hi - lo) * u


def _jitter(
    n: int, generator: torch.Generator | None, device, random: bool, scale: float, shift: float
) -> Tensor:
    """Per-sample (scale_s, scale_t, shift_s, shift_t): identity when ``random`` is False.

    Scales are factors in ``[1 - scale, 1 + scale)``; shifts are in ``[-shift, shift)`` and are
    multiplied by the kind's own length unit (eye distance) by the caller.
    """
    if not random:
        return torch.tensor([1.0, 1.0, 0.0, 0.0], device=device).expand(n, 4)
    u = _uniform((n, 4), generator, device)
    return torch.cat([_span(u[:, :2], 1 - scale, 1 + scale), _span(u[:, 2:], -shift, shift)], 1)


class _FaceFrame(Frame):
    """Each face's frame: origin at the eyes' midpoint, s along the eye line (left to right
    eye), t down the face; ``d`` is the eye distance. Landmarks in continuous coordinates."""

    def __init__(self, lm: Tensor, size: int) -> None:
        mid = (lm[:, 0] + lm[:, 1]) / 2
        diff = lm[:, 1] - lm[:, 0]
        self.d = diff.norm(dim=1).clamp_min(1e-3)
        u = diff / self.d[:, None]
        super().__init__(mid[:, 0], mid[:, 1], u[:, 0], u[:, 1], size)

    def local(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """(s, t) of (n, 2) points, each (n,)."""
        px, py = points[:, 0] - self.ox, points[:, 1] - self.oy
        return px * self.ux + py * self.uy, px * self.vx + py * self.vy


def _jittered_box(f: _FaceFrame, s0, s1, t0, t1, jit: Tensor) -> tuple[Tensor, Tensor]:
    """A face-frame box scaled about its centre and shifted (in eye distances) by ``jit``."""
    cs = (s0 + s1) / 2 + jit[:, 2] * f.d
    ct = (t0 + t1) / 2 + jit[:, 3] * f.d
    hs = (s1 - s0) / 2 * jit[:, 0]
    ht = (t1 - t0) / 2 * jit[:, 1]
    return f.box(cs - hs, cs + hs, ct - ht, ct + ht)


def _stack(*pieces: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """Collect (n, S) pieces into (n, m, S) for :func:`fill_rows`."""
    return torch.stack([p[0] for p in pieces], 1), torch.stack([p[1] for p in pieces], 1)


# --------------------------------------------------------------------------- landmark kinds


def _eyes(lm: Tensor, jit: Tensor, size: int) -> tuple[Tensor, Tensor]:
    f = _FaceFrame(lm, size)
    d = f.d
    return _stack(_jittered_box(f, -d, d, -0.33 * d, 0.33 * d, jit))


def _mouth(lm: Tensor, jit: Tensor, size: int) -> tuple[Tensor, Tensor]:
    f = _FaceFrame(lm, size)
    ls, lt = f.local(lm[:, 3])
    rs, rt = f.local(lm[:, 4])
    width = (lm[:, 4] - lm[:, 3]).norm(dim=1)
    s0 = torch.minimum(ls, rs) - 0.35 * width
    s1 = torch.maximum(ls, rs) + 0.35 * width
    t0 = torch.minimum(lt, rt) - 0.3 * f.d
    t1 = torch.maximum(lt, rt) + 0.4 * f.d
    return _stack(_jittered_box(f, s0, s1, t0, t1, jit))


def _glasses(lm: Tensor, jit: Tensor, size: int) -> tuple[Tensor, Tensor]:
    f = _FaceFrame(lm, size)
    d = f.d
    shift_s, shift_t = jit[:, 2] * d, jit[:, 3] * d
    a, b = 0.42 * d * jit[:, 0], 0.3 * d * jit[:, 1]
    left = f.ellipse(shift_s - d / 2, shift_t, a, b)
    right = f.ellipse(shift_s + d / 2, shift_t, a, b)
    # One bar a little above the lens centres: the bridge and the start of both temples.
    reach = d / 2 + a + 0.45 * d
    bar = f.box(shift_s - reach, shift_s + reach, shift_t - 0.16 * d, shift_t - 0.01 * d)
    return _stack(left, right, bar)


def _facemask(lm: Tensor, jit: Tensor, size: int) -> tuple[Tensor, Tensor]:
    f = _FaceFrame(lm, size)
    d = f.d
    mouth_s, mouth_t = f.local((lm[:, 3] + lm[:, 4]) / 2)
    _, nose_t = f.local(lm[:, 2])
    h = mouth_t.clamp_min(0.3 * d)  # eye line to mouth line
    cs = mouth_s / 2 + jit[:, 2] * d  # midway between the eye and mouth midpoints
    top = torch.maximum(nose_t - 0.25 * h, 0.1 * h) + jit[:, 3] * h  # above the nose tip
    mid = torch.maximum(mouth_t, top + 0.1 * h)  # straight-ish sides down to the mouth line
    chin = 0.9 * h * jit[:, 1]  # the rounded part goes this far below the mouth line
    width = 1.2 * d * jit[:, 0]  # half-width at the mouth line, between the cheeks
    # Upper part: a trapezoid, 85% as wide at the top (over the nose) as at the mouth line.
    k = 0.15 * width / (mid - top)  # |s - cs| <= 0.85 * width + k * (t - top)
    one, zero = torch.ones_like(d), torch.zeros_like(d)
    free = torch.full_like(d, -BIG)
    upper = intersect(
        f.slab(zero, one, top, mid),
        f.slab(one, -k, free, cs + 0.85 * width - k * top),
        f.slab(-one, -k, free, -cs + 0.85 * width - k * top),
    )
    lower = intersect(f.ellipse(cs, mid, width, chin), f.slab(zero, one, mid, -free))
    return _stack(upper, lower)


_LANDMARK_SHAPES = {
    # kind: (rows of the shape's pieces, jitter scale, jitter shift in eye distances)
    "eyes": (_eyes, 0.15, 0.1),
    "mouth": (_mouth, 0.15, 0.1),
    "glasses": (_glasses, 0.1, 0.05),
    "facemask": (_facemask, 0.1, 0.05),
}


def _landmark_mask(
    kind: str, lm: Tensor, size: int, generator: torch.Generator | None, random: bool
) -> Tensor:
    """A landmark kind for the batch; samples under 1% holes use the template face instead."""
    shape, scale, shift = _LANDMARK_SHAPES[kind]
    n = lm.shape[0]
    lm = lm.float() + 0.5  # pixel-index -> continuous coordinates
    jit = _jitter(n, generator, lm.device, random, scale, shift)
    template = landmarks_or_template(None, n, size, lm.device) + 0.5
    both = fill_rows(*shape(torch.cat([lm, template]), torch.cat([jit, jit]), size), size)
    own, fallback = both[:n], both[n:]
    enough = own.sum((1, 2)) >= MIN_HOLE_FRACTION * size * size
    return torch.where(enough[:, None, None], own, fallback)


# --------------------------------------------------------------------------- other kinds


def _axis_box(x0: Tensor, y0: Tensor, x1: Tensor, y1: Tensor, size: int) -> Tensor:
    """Boolean (n, S, S): pixels whose centre lies in ``[x0, x1] x [y0, y1]`` (each (n,))."""
    c = centres(size, x0.device)
    inside_x = (c >= x0[:, None]) & (c <= x1[:, None])  # (n, S)
    inside_y = (c >= y0[:, None]) & (c <= y1[:, None])
    return inside_y[:, :, None] & inside_x[:, None, :]


def _center(n: int, size: int, generator, device, random: bool) -> Tensor:
    q = torch.full((n,), size / 4, device=device)
    if random:
        off = _span(_uniform((n, 2), generator, device), -0.05 * size, 0.05 * size)
    else:
        off = torch.zeros((n, 2), device=device)
    x0, y0 = q + off[:, 0], q + off[:, 1]
    return _axis_box(x0, y0, x0 + size / 2, y0 + size / 2, size)


def _half(n: int, size: int, generator, device, random: bool) -> Tensor:
    if random:
        right = _uniform((n,), generator, device) < 0.5
    else:
        right = torch.zeros((n,), dtype=torch.bool, device=device)
    x0 = right.float() * (size / 2)
    y0 = torch.zeros((n,), device=device)
    return _axis_box(x0, y0, x0 + size / 2, y0 + size, size)


def _box_from(u: Tensor, size: int) -> Tensor:
    """A rectangle 20-50% of the side in each dimension, placed inside, from (n, 4) uniforms."""
    w, h = _span(u[:, 0], 0.2, 0.5) * size, _span(u[:, 1], 0.2, 0.5) * size
    x0, y0 = u[:, 2] * (size - w), u[:, 3] * (size - h)
    return _axis_box(x0, y0, x0 + w, y0 + h, size)


# --------------------------------------------------------------------------- free-form strokes


def _reflect(x: Tensor, size: int) -> Tensor:
    """Fold coordinates into [0, size] like a ball bouncing off the image borders."""
    return size - (torch.remainder(x, 2.0 * size) - size).abs()


def _freeform(n: int, size: int, generator, device) -> Tensor:
    """DeepFill-style strokes: 2-5 random-walk polylines of 4 segments, 5-12% brush width.

    Each segment with its brush is a capsule (a rectangle plus a disc at each end), convex,
    so it is one interval per row; every stroke of every sample is rasterised at once.
    """
    k, v = _FREEFORM_STROKES, _FREEFORM_VERTICES
    segs = v - 1
    u = _uniform((n, 1 + k * (4 + 2 * segs) + 4), generator, device)
    count, u = u[:, 0], u[:, 1:]
    start, u = u[:, : 2 * k].view(n, k, 2), u[:, 2 * k :]
    heading, u = u[:, :k], u[:, k:]
    width, u = u[:, :k], u[:, k:]
    turns, u = u[:, : k * segs].view(n, k, segs), u[:, k * segs :]
    lengths, spare = u[:, : k * segs].view(n, k, segs), u[:, k * segs :]

    strokes = 2 + (count * (k - 1)).long().clamp_max(k - 2)  # 2..k strokes per sample
    active = torch.arange(k, device=device)[None, :] < strokes[:, None]  # (n, k)
    turn = _span(turns, -0.45 * math.pi, 0.45 * math.pi).cumsum(2)
    angle = heading[:, :, None] * (2 * math.pi) + turn
    step = _span(lengths, 0.1, 0.3) * size
    walk = torch.stack([torch.cos(angle) * step, torch.sin(angle) * step], 3).cumsum(2)
    walk = torch.cat([torch.zeros_like(walk[:, :, :1]), walk], 2)
    points = _reflect(walk + start[:, :, None] * size, size)  # (n, k, v, 2)
    radius = _span(width, 0.05, 0.12) * (size / 2)  # (n, k)

    # Discs at the vertices, then each segment's rectangle hulled with its two end discs.
    px, py = points[..., 0], points[..., 1]
    r_v = radius[:, :, None].expand(n, k, v)
    disc_l, disc_r = disc_rows(px, py, r_v, size)  # (n, k, v, S)
    dx, dy = px[:, :, 1:] - px[:, :, :-1], py[:, :, 1:] - py[:, :, :-1]
    length = (dx * dx + dy * dy).sqrt()
    safe = length.clamp_min(1e-6)
    seg = Frame(px[:, :, :-1], py[:, :, :-1], dx / safe, dy / safe, size)
    r_s = radius[:, :, None].expand(n, k, segs)
    rect_l, rect_r = seg.box(torch.zeros_like(length), length, -r_s, r_s)
    start_disc = (disc_l[:, :, :-1], disc_r[:, :, :-1])
    end_disc = (disc_l[:, :, 1:], disc_r[:, :, 1:])
    left, right = hull((rect_l, rect_r), start_disc, end_disc)
    left = torch.where(active[:, :, None, None], left, BIG)  # unused strokes paint nothing
    mask = fill_rows(left.reshape(n, k * segs, size), right.reshape(n, k * segs, size), size)
    # Strokes that fold onto themselves can leave < 1%: add a box drawn from the same numbers.
    thin = mask.sum((1, 2)) < MIN_HOLE_FRACTION * size * size
    return mask | (_box_from(spare, size) & thin[:, None, None])


# --------------------------------------------------------------------------- public API


def _check_kind(kind: str) -> None:
    if kind not in MASK_TYPES:
        raise FaceganError(f"unknown mask type {kind!r}; choose one of: {', '.join(MASK_TYPES)}")


def _pick_device(device, landmarks, generator: torch.Generator | None) -> torch.device:
    """``device``, else the landmarks' device, else the generator's, else the CPU."""
    if device is None:
        if isinstance(landmarks, Tensor):
            device = landmarks.device
        elif generator is not None:
            device = generator.device
    return torch.device(device if device is not None else "cpu")


def landmarks_or_template(landmarks: Tensor | None, n: int, size: int, device) -> Tensor:
    """Landmarks as an (n, 5, 2) float32 tensor on ``device`` (pixel-index coordinates).

    ``None`` gives the canonical template landmarks of a ``size`` x ``size`` aligned face for
    every sample; a single (5, 2) or (1, 5, 2) set is repeated for all ``n`` samples.
    """
    if landmarks is None:
        pts = torch.as_tensor(template_points(size), dtype=torch.float32, device=device)
        return pts[None].expand(n, 5, 2)
    lm = torch.as_tensor(landmarks).to(device=device, dtype=torch.float32)
    if lm.dim() == 2:
        lm = lm[None]
    if lm.shape[1:] != (5, 2) or lm.shape[0] not in (1, n):
        raise ValueError(f"landmarks must be (n, 5, 2) with n = {n}, got {tuple(lm.shape)}")
    return lm.expand(n, 5, 2)


def make_masks(
    kind: str,
    n: int,
    size: int,
    *,
    landmarks: Tensor | None = None,
    generator: torch.Generator | None = None,
    device=None,
    random: bool = True,
) -> Tensor:
    """A batch of ``n`` masks of one kind: (n, 1, size, size) float32, exactly 0/1, 1 = hole.

    ``landmarks``: (n, 5, 2) per-face landmarks in pixel-index coordinates for the landmark
    kinds (``eyes``, ``mouth``, ``glasses``, ``facemask``); ``None`` uses the template face.
    Random numbers come from ``generator`` (drawn on its device) or the global RNG. The device
    is ``device``, else that of ``landmarks``, else that of ``generator``, else the CPU.
    ``random=False`` gives the canonical shape (``half``: the left half); ``box`` and
    ``freeform`` stay random either way.
    """
    _check_kind(kind)
    device = _pick_device(device, landmarks, generator)
    if kind in LANDMARK_TYPES:
        lm = landmarks_or_template(landmarks, n, size, device)
        mask = _landmark_mask(kind, lm, size, generator, random)
    elif kind == "center":
        mask = _center(n, size, generator, device, random)
    elif kind == "half":
        mask = _half(n, size, generator, device, random)
    elif kind == "box":
        mask = _box_from(_uniform((n, 4), generator, device), size)
    else:
        mask = _freeform(n, size, generator, device)
    return mask[:, None].float()


def make_mixed_masks(
    kinds: Sequence[str],
    n: int,
    size: int,
    *,
    landmarks: Tensor | None = None,
    generator: torch.Generator | None = None,
    device=None,
) -> Tensor:
    """``n`` training masks, each of one of ``kinds`` chosen uniformly at random per sample.

    Builds every kind for the whole batch (with jitter) and selects per sample, so nothing
    loops over the batch. Returns (n, 1, size, size) float32.
    """
    kinds = list(kinds)
    if not kinds:
        raise FaceganError(f"no mask types given; choose from: {', '.join(MASK_TYPES)}")
    for kind in kinds:
        _check_kind(kind)
    device = _pick_device(device, landmarks, generator)
    choice = (_uniform((n,), generator, device) * len(kinds)).long().clamp_max(len(kinds) - 1)
    out = torch.zeros((n, 1, size, size), device=device)
    for index, kind in enumerate(kinds):
        mask = make_masks(
            kind, n, size, landmarks=landmarks, generator=generator, device=device, random=True
        )
        out = torch.where((choice == index)[:, None, None, None], mask, out)
    return out


def _eval_seed(kind: str, index: int, seed: int) -> int:
    """A stable 63-bit seed for (kind, index, seed): the same in every process and machine."""
    digest = hashlib.sha256(f"{kind}:{index}:{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def eval_masks(
    kind: str,
    indices: Sequence[int],
    size: int,
    *,
    landmarks: Tensor | None = None,
    seed: int = 0,
) -> Tensor:
    """Deterministic evaluation masks for images ``indices``: (len, 1, size, size) on the CPU.

    The mask of image ``i`` depends only on (kind, i, seed) -- and, for landmark kinds, on
    that image's landmarks (``landmarks[j]`` belongs to ``indices[j]``) -- never on the batch
    size, order, device or process. Canonical shapes (``random=False``) are used; ``box`` and
    ``freeform`` draw from a CPU generator seeded by a SHA-256 of ``f"{kind}:{i}:{seed}"``.
    """
    _check_kind(kind)
    indices = [int(i) for i in indices]
    if not indices:
        return torch.zeros((0, 1, size, size))
    lm = None
    if landmarks is not None:
        lm = landmarks_or_template(torch.as_tensor(landmarks).cpu(), len(indices), size, "cpu")
    if kind not in ("box", "freeform"):  # deterministic shapes: one batched call
        return make_masks(kind, len(indices), size, landmarks=lm, device="cpu", random=False)
    masks = []
    for index in indices:  # evaluation only: one small generator per image index
        g = torch.Generator(device="cpu").manual_seed(_eval_seed(kind, index, seed))
        masks.append(make_masks(kind, 1, size, generator=g, device="cpu", random=False))
    return torch.cat(masks)
