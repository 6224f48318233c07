"""VGG19 content loss: torchvision's layer indexing, weights policy (local files only), frozen net."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from facegan.core.errors import FaceganError
from facegan.models import pretrained as weights
from facegan.models.perceptual import (
    IMAGENET_MEAN, IMAGENET_STD, PerceptualLoss, load_perceptual_loss, load_vgg_features,
)
from facegan.models.vgg import VGG19_LAYERS, vgg19_features, vgg_layer_index
from facegan.tasks.recipes import validate_recipe

URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"


def _vgg_file(tmp_path, n_modules: int, name: str = "vgg.pth", seed: int = 0):
    """A random-init torchvision-layout VGG19 state dict (features.* of the first n modules)."""
    torch.manual_seed(seed)
    state = {f"features.{k}": v for k, v in vgg19_features(n_modules).state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # torchvision's file has a classifier too
    path = tmp_path / name
    torch.save(state, path)
    return path, state


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    """An empty torch hub cache, no env var, and no network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    monkeypatch.delenv("FACEGAN_WEIGHTS_VGG19", raising=False)

    def no_network(url, dest):
        raise OSError("network is unreachable")

    monkeypatch.setattr(weights, "_download", no_network)
    cache = weights.hub_checkpoint_dir()
    assert cache.is_relative_to(tmp_path)
    return cache


def test_layer_names_follow_torchvision_indexing():
    from torchvision.models import vgg19

    with torch.device("meta"):  # the architecture without allocating or downloading weights
        tv = vgg19(weights=None).features
    assert len(VGG19_LAYERS) == len(tv) == 37
    for name, module in zip(VGG19_LAYERS, tv):
        kind = {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d}[name.rstrip("0123456789_")]
        assert isinstance(module, kind), name
    assert vgg_layer_index("conv5_4") == 34 and vgg_layer_index("relu5_4") == 35
    assert isinstance(tv[34], nn.Conv2d) and tv[34].in_channels == tv[34].out_channels == 512
    assert vgg_layer_index("conv2_2") == 7 and vgg_layer_index("pool1") == 4
    ours = {k: v.shape for k, v in vgg19_features().state_dict().items()}
    assert ours == {k: v.shape for k, v in tv.state_dict().items()}
    assert len(vgg19_features(vgg_layer_index("conv5_4") + 1)) == 35  # SRGAN's features[:35]
    with pytest.raises(FaceganError, match="unknown VGG19 layer 'conv6_1'"):
        vgg_layer_index("conv6_1")


def test_loads_a_local_file_up_to_the_layer_frozen(tmp_path, offline_cache):
    path, state = _vgg_file(tmp_path, 9)
    feats = load_vgg_features("conv2_2", path)
    assert len(feats) == 8 and isinstance(feats[-1], nn.Conv2d)  # cut right after conv2_2, before its ReLU
    assert torch.equal(feats[7].weight, state["features.7.weight"])
    assert not any(p.requires_grad for p in feats.parameters()) and not feats.training
    assert len(load_vgg_features("relu2_2", path)) == 9


def test_environment_variable_is_used(tmp_path, offline_cache, monkeypatch):
    path, state = _vgg_file(tmp_path, 3)
    monkeypatch.setenv("FACEGAN_WEIGHTS_VGG19", str(path))
    assert torch.equal(load_vgg_features("conv1_2")[2].weight, state["features.2.weight"])


def test_offline_without_weights_is_one_clear_error(offline_cache):
    with pytest.raises(FaceganError) as err:
        load_vgg_features("conv5_4")
    msg = str(err.value)
    assert URL in msg and "loss.vgg_weights=PATH" in msg and "FACEGAN_WEIGHTS_VGG19=PATH" in msg
    assert "\n" not in msg
    assert not offline_cache.exists() or not list(offline_cache.iterdir())  # nothing half-written


def test_unusable_files_name_the_problem(tmp_path, offline_cache):
    short, _ = _vgg_file(tmp_path, 3, "short.pth")
    with pytest.raises(FaceganError, match=r"has no tensor features.5.weight, needed for VGG19 up to conv2_2"):
        load_vgg_features("conv2_2", short)
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(8, 3, 3, 3), "features.0.bias": torch.zeros(8)}, bad)
    with pytest.raises(FaceganError, match=r"features.0.weight has shape \(8, 3, 3, 3\), VGG19 needs \(64, 3, 3, 3\)"):
        load_vgg_features("conv1_1", bad)
    with pytest.raises(FaceganError, match="not found"):
        load_vgg_features("conv1_1", tmp_path / "missing.pth")


def test_cached_or_downloaded_files_must_match_the_sha256_prefix(tmp_path, offline_cache, monkeypatch):
    # A file in the hub cache under torchvision's name whose sha256 does not start with dcbb9e9d.
    offline_cache.mkdir(parents=True)
    _vgg_file(offline_cache, 3, "vgg19-dcbb9e9d.pth")
    with pytest.raises(FaceganError, match="corrupted .* does not start with dcbb9e9d"):
        load_vgg_features("conv1_2")
    (offline_cache / "vgg19-dcbb9e9d.pth").unlink()

    def fake_download(url, dest):
        assert url == URL
        torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, dest)

    monkeypatch.setattr(weights, "_download", fake_download)
    with pytest.raises(FaceganError, match="unusable and were not kept .* does not start with the expected dcbb9e9d"):
        load_vgg_features("conv1_2")
    assert not list(offline_cache.glob("*"))


def test_perceptual_loss_normalises_and_trains_only_the_output(tmp_path, offline_cache):
    path, _ = _vgg_file(tmp_path, 9)
    loss = load_perceptual_loss("relu2_2", path)
    loss.train()
    assert not loss.training and not loss.features.training
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(loss.embed(x), loss.features(((x + 1) / 2 - mean) / std))
    assert loss(x, x).item() == 0
    out = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_(True)
    value = loss(out, x)
    value.backward()
    assert value.item() > 0 and out.grad is not None and out.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())
    shallow = PerceptualLoss(load_vgg_features("conv1_1", path))
    assert shallow.embed(x).shape == (2, 64, 32, 32) and loss.embed(x).shape == (2, 128, 16, 16)


@pytest.mark.parametrize("layer, ok", [("conv5_4", True), ("relu2_2", True), ("pool5", False), ("conv6_1", False)])
def test_recipe_checks_the_content_layer(layer, ok):
    raw = {"task": "sr", "loss": {"content_layer": layer}, "train": {"steps": 1}}
    if ok:
        assert validate_recipe(raw).loss.content_layer == layer
    else:
        with pytest.raises(FaceganError, match=f"loss.content_layer: unknown VGG19 layer '{layer}'"):
            validate_recipe(raw)
