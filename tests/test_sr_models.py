"""SRResNet and the SRGAN discriminator: shapes, ranges, sizes, and scale-safe loading."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from facegan.core.errors import FaceganError
from facegan.models.srresnet import SRDiscriminator, SRResNet, Upsample2x


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_default_generator_size_matches_the_design():
    # 9x9 head + PReLU, 5 blocks (2 conv3x3 + 2 BN + PReLU), conv3x3 + BN, 3 upsampling stages
    # (conv 64->256 + PReLU) for x8, 9x9 tail. PReLUs have one parameter each.
    conv = lambda cin, cout, k: cin * cout * k * k + cout  # noqa: E731
    head = conv(3, 64, 9) + 1
    block = 2 * conv(64, 64, 3) + 2 * 2 * 64 + 1
    post = conv(64, 64, 3) + 2 * 64
    up = conv(64, 256, 3) + 1
    tail = conv(64, 3, 9)
    assert n_params(SRResNet(scale=8)) == head + 5 * block + post + 3 * up + tail == 881_932
    assert n_params(SRResNet(scale=4, num_blocks=16)) == head + 16 * block + post + 2 * up + tail


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_generator_upscales_by_its_scale_into_model_range(scale):
    g = SRResNet(scale=scale, width=8, num_blocks=2)
    y = g(torch.randn(2, 3, 8, 8) * 3)
    assert y.shape == (2, 3, 8 * scale, 8 * scale)
    assert y.min() >= -1 and y.max() <= 1
    assert len(g.upsample) == {2: 1, 4: 2, 8: 3}[scale]
    assert isinstance(g.upsample[0].shuffle, nn.PixelShuffle)


def test_generator_global_skip_and_blocks():
    g = SRResNet(scale=2, width=8, num_blocks=3)
    assert len(g.blocks) == 3
    kinds = [type(m) for m in g.blocks[0].body]
    assert kinds == [nn.Conv2d, nn.BatchNorm2d, nn.PReLU, nn.Conv2d, nn.BatchNorm2d]
    assert g.head[0].kernel_size == (9, 9) and g.tail.kernel_size == (9, 9)
    with pytest.raises(ValueError):
        SRResNet(scale=3)


def test_weights_of_another_scale_are_refused_clearly():
    x4 = SRResNet(scale=4, width=8, num_blocks=1).state_dict()
    assert SRResNet.scale_of_state(x4) == 4
    with pytest.raises(FaceganError, match=r"weights are for a ×4 SRResNet; they cannot upscale ×8"):
        SRResNet(scale=8, width=8, num_blocks=1).load_state_dict(x4)
    SRResNet(scale=4, width=8, num_blocks=1).load_state_dict(x4)  # same scale loads


def _sub_pixels(y):
    return [y[..., i::2, j::2] for i in (0, 1) for j in (0, 1)]


def test_icnr_starts_each_upsampling_stage_without_a_checkerboard():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 5, 5)
    plain = _sub_pixels(Upsample2x(8)(x))
    assert not torch.allclose(plain[0], plain[3])  # default init: four different sub-pixel filters
    corners = _sub_pixels(Upsample2x(8, icnr=True)(x))
    for c in corners[1:]:
        assert torch.equal(c, corners[0])  # every 2x2 block equal: a nearest-neighbour 2x resize


def test_icnr_draws_no_extra_random_numbers():
    torch.manual_seed(3)
    plain = SRResNet(scale=4, width=8, num_blocks=2).state_dict()
    torch.manual_seed(3)
    icnr = SRResNet(scale=4, width=8, num_blocks=2, icnr=True).state_dict()
    for k, v in plain.items():
        if k.startswith("upsample.") and k.endswith((".conv.weight", ".conv.bias")):
            assert torch.equal(icnr[k], v[:8].repeat_interleave(4, dim=0)), k
        else:
            assert torch.equal(icnr[k], v), k


def test_recipe_icnr_reaches_the_generator():
    from facegan.tasks.recipes import load_recipe
    from facegan.tasks.registry import make_task

    from helpers import REPO

    recipe = load_recipe(REPO / "recipes" / "quickstart_sr.yaml", ["model.icnr=true", "model.width=8"])
    w = make_task(recipe).build_generator().upsample[0].conv.weight
    assert torch.equal(w[0::4], w[1::4]) and torch.equal(w[0::4], w[3::4])
    recipe = load_recipe(REPO / "recipes" / "quickstart_sr.yaml", ["model.width=8"])
    w = make_task(recipe).build_generator().upsample[0].conv.weight
    assert not torch.equal(w[0::4], w[1::4])


def test_discriminator_layout_and_logits():
    d = SRDiscriminator(width=64)
    convs = [m for m in d.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.features) == 7  # all but the first conv
    assert all(m.negative_slope == 0.2 for m in d.features if isinstance(m, nn.LeakyReLU))
    head_convs = [m for m in d.head if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in head_convs] == [(512, 1024, (1, 1)), (1024, 1, (1, 1))]
    small = SRDiscriminator(width=8, head=16)
    for size in (32, 64, 96):  # adaptive pooling: any input size, one logit per image
        assert small(torch.randn(2, 3, size, size)).shape == (2, 1, 1, 1)
