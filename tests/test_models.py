"""Generator and discriminator shapes, ranges and sizes."""

from __future__ import annotations

import pytest
import torch

from facegan.models.context_encoder import ContextEncoder
from facegan.models.patchgan import PatchGAN


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_context_encoder_matches_source_size():
    # 4 stride-2 convs 64->512 and 4 transposed convs back: 5.5 M parameters, as in the source.
    assert abs(n_params(ContextEncoder(128, 64, bottleneck="none")) / 1e6 - 5.51) < 0.02


@pytest.mark.parametrize("bottleneck", ["channel_fc", "none"])
@pytest.mark.parametrize("size", [64, 128])
def test_context_encoder_output(size, bottleneck):
    g = ContextEncoder(size, width=8, bottleneck=bottleneck)
    x = torch.randn(2, 3, size, size)
    m = torch.zeros(2, 1, size, size)
    m[..., size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1
    y = g(x * (1 - m), m)
    assert y.shape == (2, 3, size, size)
    assert y.min() >= -1 and y.max() <= 1


def test_channel_fc_gives_the_hole_centre_global_context():
    """With the channel-wise FC, a pixel far outside the hole changes the hole's centre."""
    torch.manual_seed(0)
    g = ContextEncoder(128, width=8).eval()
    x = torch.zeros(1, 3, 128, 128)
    m = torch.zeros(1, 1, 128, 128)
    m[..., 32:96, 32:96] = 1
    x2 = x.clone()
    x2[..., :8, :8] = 1.0  # a corner patch, ~90 px from the hole centre
    d = (g(x2, m) - g(x, m))[..., 60:68, 60:68].abs().max()
    assert d > 0
    g0 = ContextEncoder(128, width=8, bottleneck="none").eval()
    d0 = (g0(x2, m) - g0(x, m))[..., 60:68, 60:68].abs().max()
    assert d0 == 0  # the source design cannot see that far


def test_context_encoder_rejects_bad_size():
    with pytest.raises(ValueError):
        ContextEncoder(100)


def test_patchgan_logits_grid():
    d = PatchGAN(3, width=8, layers=3)
    out = d(torch.randn(2, 3, 128, 128))
    assert out.shape == (2, 1, 14, 14)
    assert d(torch.randn(1, 3, 64, 64)).shape == (1, 1, 6, 6)
