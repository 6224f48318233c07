"""The weights policy: explicit path -> env var -> package -> hub cache -> verified download.

Most tests use a tiny registered spec so every code path runs in milliseconds; the network is
never touched (the downloader is replaced in every test).
"""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch
from torch import nn

from facegan.core.errors import FaceganError
from facegan.core.hashing import sha256_file
from facegan.models import pretrained as weights
from facegan.models.pretrained import WeightSpec, load_weights, resolve_weights, sidecar_path

TINY_URL = "https://example.invalid/releases/tiny-v1.pt"


def _tiny() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))


TINY = WeightSpec(
    name="tiny",
    filename="tiny-v1.pt",
    url=TINY_URL,
    sha256=None,
    env_var="FACEGAN_WEIGHTS_TINY",
    option="loss.tiny_weights",
    build=_tiny,
    unused_prefixes=("head.",),
)


def _no_network(url: str, dest: Path) -> None:
    raise AssertionError(f"the test tried to download {url}")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache, no weight env vars, no network, and the tiny spec registered."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for spec in weights.WEIGHTS.values():
        monkeypatch.delenv(spec.env_var, raising=False)
    monkeypatch.setattr(weights, "_download", _no_network)
    monkeypatch.setitem(weights.WEIGHTS, "tiny", TINY)
    checkpoints = weights.hub_checkpoint_dir()
    assert checkpoints == tmp_path / "torch" / "hub" / "checkpoints"
    return checkpoints


def _save_tiny(path: Path, extra: bool = True) -> Path:
    state = dict(_tiny().state_dict())
    if extra:  # a classifier head the embedding network does not use, as in facenet's files
        state["head.weight"] = torch.zeros(2, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def _fake_download(source: Path):
    def download(url: str, dest: Path) -> None:
        assert url == TINY_URL
        dest.write_bytes(source.read_bytes())

    return download


def test_explicit_path_wins_and_loads(cache: Path, tmp_path: Path, monkeypatch) -> None:
    mine = _save_tiny(tmp_path / "mine.pt")
    monkeypatch.setenv("FACEGAN_WEIGHTS_TINY", str(_save_tiny(tmp_path / "env.pt")))
    assert resolve_weights("tiny", mine) == mine
    model = load_weights("tiny", str(mine))
    expected = torch.load(mine, map_location="cpu", weights_only=True)
    assert torch.equal(model[0].weight, expected["0.weight"])


def test_missing_explicit_path_names_file_and_option(cache: Path, tmp_path: Path) -> None:
    with pytest.raises(FaceganError, match=r"tiny weights file \(loss.tiny_weights\) not found: .*nope.pt"):
        resolve_weights("tiny", tmp_path / "nope.pt")


def test_env_var(cache: Path, tmp_path: Path, monkeypatch) -> None:
    env_file = _save_tiny(tmp_path / "env.pt")
    monkeypatch.setenv("FACEGAN_WEIGHTS_TINY", str(env_file))
    assert resolve_weights("tiny") == env_file
    monkeypatch.setenv("FACEGAN_WEIGHTS_TINY", str(tmp_path / "gone.pt"))
    with pytest.raises(FaceganError, match="FACEGAN_WEIGHTS_TINY.*gone.pt"):
        resolve_weights("tiny")


def test_hub_cache_hit_is_verified_once_then_by_sidecar(cache: Path) -> None:
    cached = _save_tiny(cache / TINY.filename)
    assert resolve_weights("tiny") == cached
    sidecar = sidecar_path(cached)
    assert sidecar.read_text().split()[0] == sha256_file(cached)
    assert resolve_weights("tiny") == cached  # now checked against the sidecar


def test_sidecar_mismatch_is_detected(cache: Path) -> None:
    cached = _save_tiny(cache / TINY.filename)
    resolve_weights("tiny")
    # Same keys and shapes (it would still load), different bytes: only the checksum can tell.
    state = torch.load(cached, map_location="cpu", weights_only=True)
    state["0.bias"] += 1.0
    torch.save(state, cached)
    with pytest.raises(FaceganError, match=r"cached tiny weights .*tiny-v1.pt are corrupted"):
        resolve_weights("tiny")


def test_download_is_verified_kept_and_recorded(cache: Path, tmp_path: Path, monkeypatch) -> None:
    source = _save_tiny(tmp_path / "server" / "tiny-v1.pt")
    monkeypatch.setattr(weights, "_download", _fake_download(source))
    path = resolve_weights("tiny")
    assert path == cache / TINY.filename
    assert sha256_file(path) == sha256_file(source)
    assert sidecar_path(path).read_text().split()[0] == sha256_file(source)
    assert sorted(p.name for p in cache.iterdir()) == ["tiny-v1.pt", "tiny-v1.pt.sha256"]
    monkeypatch.setattr(weights, "_download", _no_network)  # the second call uses the cache
    assert isinstance(load_weights("tiny"), nn.Sequential)


@pytest.mark.parametrize("kind", ["html", "truncated", "wrong-shapes"])
def test_bad_download_is_refused_and_not_kept(cache: Path, tmp_path: Path, monkeypatch, kind) -> None:
    source = tmp_path / "server" / "tiny-v1.pt"
    if kind == "html":
        source.parent.mkdir(parents=True)
        source.write_text("<!DOCTYPE html><html><body>Rate limit exceeded</body></html>")
    elif kind == "truncated":
        data = _save_tiny(source).read_bytes()
        source.write_bytes(data[: len(data) // 2])
    else:
        source.parent.mkdir(parents=True)
        torch.save({"0.weight": torch.zeros(5, 4), "0.bias": torch.zeros(5)}, source)
    monkeypatch.setattr(weights, "_download", _fake_download(source))
    with pytest.raises(FaceganError) as err:
        resolve_weights("tiny")
    message = str(err.value)
    assert "\n" not in message
    assert f"downloaded from {TINY_URL} are unusable and were not kept" in message
    assert "loss.tiny_weights=PATH" in message and "FACEGAN_WEIGHTS_TINY=PATH" in message
    expected = {"html": "not a PyTorch weights file (an HTML page)", "truncated": "not a readable PyTorch weights file (truncated?",
                "wrong-shapes": "does not fit the tiny network"}[kind]
    assert expected in message
    assert list(cache.iterdir()) == []


def test_offline_download_failure_says_what_to_do(cache: Path, monkeypatch) -> None:
    def offline(url: str, dest: Path) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(weights, "_download", offline)
    spec = weights.WEIGHTS["facenet-vggface2"]
    with pytest.raises(FaceganError) as err:
        resolve_weights("facenet-vggface2")
    message = str(err.value)
    assert message.startswith("facenet-vggface2 weights are not cached and could not be downloaded")
    assert "Temporary failure in name resolution" in message
    assert f"download {spec.url} and pass its path with loss.identity_weights=PATH" in message
    assert "set FACEGAN_WEIGHTS_FACENET_VGGFACE2=PATH" in message
    assert spec.url.endswith("/v2.2.9/20180402-114759-vggface2.pt")
    assert list(cache.iterdir()) == []  # nothing half-written is left behind


def test_not_a_state_dict_names_the_file(cache: Path, tmp_path: Path) -> None:
    listing = tmp_path / "list.pt"
    torch.save([torch.zeros(1)], listing)
    with pytest.raises(FaceganError, match=r"list.pt is not a state dict \(it holds a list\)"):
        load_weights("tiny", listing)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(FaceganError, match=r"notes.pt is not a PyTorch weights file"):
        load_weights("tiny", text)
    pickled = tmp_path / "pickled.pt"
    torch.save({"model": _tiny()}, pickled)  # a whole module: code, refused by weights_only
    with pytest.raises(FaceganError, match=r"pickled.pt holds Python objects other than tensors"):
        load_weights("tiny", pickled)


def test_state_dict_that_does_not_fit_names_the_file(cache: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "other.pt"
    torch.save({"0.weight": torch.zeros(3, 5), "0.bias": torch.zeros(3), "x": torch.zeros(1)}, wrong)
    with pytest.raises(FaceganError) as err:
        load_weights("tiny", wrong)
    message = str(err.value)
    assert "other.pt does not fit the tiny network" in message
    assert "missing keys" in message and "1 unexpected keys (e.g. x)" in message
    assert "0.weight (3, 5) != (3, 4)" in message


def test_packaged_mobilefacenet_needs_no_network_and_is_checked(cache: Path, tmp_path, monkeypatch) -> None:
    path = resolve_weights("mobilefacenet")
    assert path == weights.PACKAGED_DIR / "mobilefacenet.safetensors"
    assert sha256_file(path) == weights.WEIGHTS["mobilefacenet"].sha256
    assert (weights.PACKAGED_DIR / "LICENSE-mobilefacenet.txt").is_file()
    bad = tmp_path / "assets"
    bad.mkdir()
    (bad / "mobilefacenet.safetensors").write_bytes(path.read_bytes()[:-10])
    monkeypatch.setattr(weights, "PACKAGED_DIR", bad)
    with pytest.raises(FaceganError, match="shipped with facegan are corrupted.*reinstall"):
        resolve_weights("mobilefacenet")
    monkeypatch.setattr(weights, "PACKAGED_DIR", tmp_path / "empty")  # a broken install
    with pytest.raises(FaceganError, match="not shipped or cached.*FACEGAN_WEIGHTS_MOBILEFACENET=PATH"):
        resolve_weights("mobilefacenet")


def test_unknown_name_lists_known(cache: Path) -> None:
    with pytest.raises(FaceganError, match="unknown pretrained weights 'nope'; known: mobilefacenet, facenet-vggface2"):
        resolve_weights("nope")
