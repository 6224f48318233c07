"""Frozen identity networks: MobileFaceNet against its ONNX reference, the crop geometry,
same/different-person separation on real faces, and the identity loss's gradients."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from facegan.core.errors import FaceganError
from facegan.faces import geometry
from facegan.models import pretrained as weights
from facegan.models.identity import FACENET_MTCNN_160, IDENTITY_NETS, IdentityNet, identity_loss, load_identity_net
from facegan.models.mobilefacenet import MEAN, STD


@pytest.fixture(scope="module")
def mobilefacenet() -> IdentityNet:
    return load_identity_net("mobilefacenet")


def _to_tensor(images: list[Image.Image]) -> torch.Tensor:
    """uint8 HWC PIL images -> (B, 3, H, W) float in [-1, 1]."""
    arrays = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) for im in images])
    return torch.from_numpy(arrays).permute(0, 3, 1, 2) / 127.5 - 1.0


def _celeba_square(path: Path, size: int = 128) -> Image.Image:
    """A 178x218 CelebA-aligned image -> facegan's template frame at ``size``."""
    square = Image.open(path).convert("RGB").crop(geometry.CELEBA_SQUARE_BOX)
    return square.resize((size, size), Image.LANCZOS)


def test_mobilefacenet_matches_onnx_reference(shared_dir: Path, fixtures_dir: Path, mobilefacenet) -> None:
    ort = pytest.importorskip("onnxruntime")
    files = sorted((fixtures_dir / "facenet_pytorch_aligned_160").glob("*.png"))
    files += sorted((fixtures_dir / "gfpgan_cropped_faces_256").glob("*.jpg"))
    assert len(files) == 9
    crops = _to_tensor([Image.open(f).convert("RGB").resize((112, 112), Image.BICUBIC) for f in files])
    x01 = (crops.numpy() + 1.0) / 2.0
    onnx_in = ((x01 - np.array(MEAN).reshape(1, 3, 1, 1)) / np.array(STD).reshape(1, 3, 1, 1))
    session = ort.InferenceSession(
        str(shared_dir / "weights" / "mobilefacenet" / "MobileFaceNet.onnx"),
        providers=["CPUExecutionProvider"],
    )
    ref = np.concatenate(
        [session.run(None, {"input0": onnx_in[i : i + 1].astype(np.float32)})[0] for i in range(len(files))]
    )
    with torch.no_grad():
        raw = mobilefacenet.backbone(torch.from_numpy(onnx_in).float()).numpy()
        emb = mobilefacenet.embed_crops(crops).numpy()
    assert np.abs(raw - ref).max() < 1e-4, np.abs(raw - ref).max()
    ref_unit = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    assert np.abs(emb - ref_unit).max() < 1e-4
    print(f"MobileFaceNet vs ONNX: max |raw diff| {np.abs(raw - ref).max():.2e}")


def test_packaged_weights_load_offline(tmp_path: Path, monkeypatch) -> None:
    def no_network(url: str, dest: Path) -> None:
        raise AssertionError("tried to download")

    monkeypatch.setattr(weights, "_download", no_network)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache
    monkeypatch.delenv("FACEGAN_WEIGHTS_MOBILEFACENET", raising=False)
    assert weights.resolve_weights("mobilefacenet").is_relative_to(weights.PACKAGED_DIR)
    net = load_identity_net("mobilefacenet")
    assert (net.name, net.input_size, net.embedding_dim) == ("mobilefacenet", 112, 128)
    out = net(torch.rand(1, 3, 96, 96) * 2 - 1)  # batch of one, another size
    assert out.shape == (1, 128)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(1))


def test_celeba_same_person_scores_higher(fixtures_dir: Path, mobilefacenet) -> None:
    folder = "celeba_realigned_178x218_heldout_ids"
    with open(fixtures_dir / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["subset"] == folder]
    assert len(rows) == 18
    faces = _to_tensor([_celeba_square(fixtures_dir / r["file"]) for r in rows])
    labels = np.array([r["identity"] for r in rows])
    with torch.no_grad():
        emb = mobilefacenet(faces).numpy()
    sim = emb @ emb.T
    upper = np.triu_indices(len(rows), 1)
    same = (labels[:, None] == labels[None, :])[upper]
    pos, neg = sim[upper][same], sim[upper][~same]
    assert (len(pos), len(neg)) == (18, 135)
    auc = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    print(f"mobilefacenet same-person cos {pos.mean():.3f}, different {neg.mean():.3f}, AUC {auc:.3f}")
    assert pos.mean() - neg.mean() > 0.3
    assert auc > 0.9


def _blob_image(points: np.ndarray, size: int) -> torch.Tensor:
    """A (1, 1, size, size) image with a small Gaussian blob at each point (pixel-index)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    sigma = size / 64
    img = sum(np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)) for x, y in points)
    return torch.from_numpy(img).float()[None, None]


@pytest.mark.parametrize("name", ["mobilefacenet", "facenet-vggface2"])
@pytest.mark.parametrize("size", [128, 512])
def test_crop_maps_template_to_backbone_template(name: str, size: int) -> None:
    """Blobs drawn at facegan's template land where the similarity puts them in the crop,
    i.e. close to the backbone's own template (the pixel-index convention holds end to end,
    with and without antialiasing)."""
    spec = IDENTITY_NETS[name]
    net = IdentityNet(name, spec, nn.Conv2d(3, 1, 1))  # crop() does not touch the backbone
    src = geometry.template_points(size)
    crop = net.crop(_blob_image(src, size))[0, 0].numpy()
    expected = geometry.apply_affine(net._similarity(size), src)
    d = spec.input_size
    yy, xx = np.mgrid[0:d, 0:d].astype(np.float64)
    for x, y in expected:
        window = (np.abs(xx - x) < d / 16) & (np.abs(yy - y) < d / 16)
        w = crop * window
        centroid = np.array([(w * xx).sum(), (w * yy).sum()]) / w.sum()
        assert np.abs(centroid - (x, y)).max() < 0.35, (centroid, (x, y))
    assert np.abs(expected - np.asarray(spec.template)).max() < 5.0  # the templates agree


def test_identity_loss_gradients_and_frozen_net(mobilefacenet) -> None:
    torch.manual_seed(0)

    class Parent(nn.Module):
        def __init__(self, net: IdentityNet) -> None:
            super().__init__()
            self.generator = nn.Conv2d(3, 3, 3, padding=1)
            self.identity = net

    parent = Parent(mobilefacenet)
    parent.train()
    assert parent.generator.training
    assert not any(m.training for m in mobilefacenet.modules())
    assert not any(p.requires_grad for p in mobilefacenet.parameters())
    inputs = torch.rand(2, 3, 64, 64) * 2 - 1
    target = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_(True)
    output = torch.tanh(parent.generator(inputs))
    stats_before = [b.clone() for b in mobilefacenet.buffers()]
    loss = identity_loss(mobilefacenet, output, target)
    loss.backward()
    assert 0.0 < loss.item() < 2.0
    assert parent.generator.weight.grad is not None and parent.generator.weight.grad.abs().sum() > 0
    assert target.grad is None
    assert all(p.grad is None for p in mobilefacenet.parameters())
    assert all(torch.equal(a, b) for a, b in zip(stats_before, mobilefacenet.buffers()))
    same = identity_loss(mobilefacenet, output.detach(), output.detach())
    assert abs(same.item()) < 1e-5
    large = (torch.rand(1, 3, 256, 256) * 2 - 1).requires_grad_(True)  # the antialiased path
    identity_loss(mobilefacenet, large, torch.rand(1, 3, 256, 256) * 2 - 1).backward()
    assert large.grad is not None and large.grad.abs().sum() > 0


def test_facenet_from_local_weights_file(tmp_path: Path, monkeypatch) -> None:
    from facenet_pytorch import InceptionResnetV1

    monkeypatch.setattr(weights, "_download", lambda url, dest: pytest.fail("tried to download"))
    torch.manual_seed(0)
    random_net = InceptionResnetV1(pretrained=None, classify=False).eval()
    state = dict(random_net.state_dict())
    state["logits.weight"] = torch.zeros(8631, 512)  # the release files carry the classifier
    state["logits.bias"] = torch.zeros(8631)
    path = tmp_path / "vggface2.pt"
    torch.save(state, path)
    net = load_identity_net("facenet-vggface2", weights=path)
    assert (net.input_size, net.embedding_dim) == (160, 512)
    faces = torch.rand(2, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        emb = net(faces)
        crops = net.crop(faces * 0.5 + 0.5)
        direct = nn.functional.normalize(random_net((crops - 0.5) / (128 / 255)), dim=1)
    assert emb.shape == (2, 512)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(emb, direct, atol=1e-5, rtol=1e-4)  # the weights really loaded


def test_unknown_identity_net_lists_known() -> None:
    with pytest.raises(FaceganError, match="unknown identity network 'arcface'; known: mobilefacenet, facenet-vggface2"):
        load_identity_net("arcface")


def test_facenet_template_rederived_from_fixtures(fixtures_dir: Path) -> None:
    """The hard-coded FACENET_MTCNN_160 is what its comment says: MTCNN on the five 160x160
    facenet-pytorch crops, grey-padded by 80 px, each also mirrored, averaged."""
    from facenet_pytorch import MTCNN

    mtcnn = MTCNN(keep_all=True, device="cpu")
    found = []
    for path in sorted((fixtures_dir / "facenet_pytorch_aligned_160").glob("*.png")):
        face = np.asarray(Image.open(path).convert("RGB"))
        for mirrored in (False, True):
            img = face[:, ::-1] if mirrored else face
            padded = np.pad(img, ((80, 80), (80, 80), (0, 0)), constant_values=128)
            _, probs, points = mtcnn.detect(Image.fromarray(np.ascontiguousarray(padded)), landmarks=True)
            lm = points.astype(np.float32)[int(np.argmax(probs.astype(np.float32)))] - 80.0
            if mirrored:
                lm[:, 0] = 159.0 - lm[:, 0]
                lm = lm[[1, 0, 2, 4, 3]]
            found.append(lm)
    assert np.abs(np.mean(found, axis=0) - np.asarray(FACENET_MTCNN_160)).max() < 0.5


@pytest.mark.gpu
def test_mixed_devices_and_autocast(mobilefacenet) -> None:
    faces = torch.rand(1, 3, 128, 128, device="cuda") * 2 - 1
    on_cpu = mobilefacenet(faces)  # net on the CPU, images on the GPU
    assert on_cpu.device.type == "cuda"
    net = load_identity_net("mobilefacenet", device="cuda")
    with torch.autocast("cuda", dtype=torch.float16):
        on_gpu = net(faces)
    assert on_gpu.dtype == torch.float32
    torch.testing.assert_close(on_gpu, on_cpu, atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("sigma", [0.7, 1.0, 1.5])
def test_gaussian_blur_matches_scipy(sigma: float) -> None:
    from scipy import ndimage

    from facegan.models.identity import gaussian_blur

    x = torch.rand(2, 3, 20, 17, dtype=torch.float64)
    # torch's "reflect" padding is scipy's "mirror"; scipy's radius is int(3 sigma + 0.5)
    radius = max(1, int(np.ceil(3 * sigma)))
    want = ndimage.gaussian_filter(x.numpy(), sigma=(0, 0, sigma, sigma), mode="mirror",
                                   truncate=radius / sigma)
    np.testing.assert_allclose(gaussian_blur(x, sigma).numpy(), want, atol=1e-12)
    assert gaussian_blur(x, 0.0) is x


def test_identity_blur_hides_a_pixel_grid_from_the_loss(fixtures_dir: Path) -> None:
    """The tinted grid a generator can paint to please the recogniser: blurred away, it barely
    moves the embedding; seen sharp, it moves it much more."""
    path = sorted(fixtures_dir.rglob("*.jpg"))[0]
    face = _to_tensor([_celeba_square(path)])
    yy, xx = torch.meshgrid(torch.arange(128), torch.arange(128), indexing="ij")
    grid = ((yy + xx) % 2 * 2 - 1).float() * torch.tensor([0.15, -0.1, 0.15]).view(3, 1, 1)
    patterned = (face + grid).clamp(-1, 1)
    sharp = load_identity_net("mobilefacenet")
    blurred = load_identity_net("mobilefacenet", blur=1.0)
    assert blurred.blur == 1.0 and sharp.blur == 0.0
    moved_sharp = identity_loss(sharp, patterned, face).item()
    moved_blurred = identity_loss(blurred, patterned, face).item()
    assert moved_blurred < 0.25 * moved_sharp, (moved_blurred, moved_sharp)
    # gradients still reach the output through the blur
    out = patterned.clone().requires_grad_(True)
    identity_loss(blurred, out, face).backward()
    assert out.grad is not None and out.grad.abs().sum() > 0
