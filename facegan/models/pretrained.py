"""Where pretrained weights come from, and how they are checked (docs/design.md, "Weights").

Every pretrained network facegan uses has one :class:`WeightSpec` in :data:`WEIGHTS`.
:func:`resolve_weights` finds its file, first match wins:

1. an explicit path (a recipe key such as ``loss.identity_weights``, passed in by the caller);
2. the spec's environment variable (e.g. ``FACEGAN_WEIGHTS_FACENET_VGGFACE2=/path/file.pt``);
3. the copy shipped inside the package (``facegan/assets/weights``, as safetensors; MobileFaceNet only);
4. the torch hub cache, ``torch.hub.get_dir()/checkpoints/<filename>``;
5. a download into that cache: to a temporary file, verified, then renamed into place.

Anything else is one :class:`~facegan.core.errors.FaceganError` saying which file to put where.

Checks: files with a known sha256 (the shipped ones) are verified against it. Files named with
the start of their sha256 (torchvision's convention, e.g. ``vgg19-dcbb9e9d.pth``) are checked
against that prefix. Downloads have no published full checksum, so a download is also verified
by loading it (``weights_only=True``) into the network it is for; a file that is not a state dict, or does not fit, is deleted, and the sha256
of a good one is written beside it (``<file>.sha256``) so a later load notices a corrupted
cache. :func:`load_weights` resolves, loads and returns the network with the weights in it.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from facegan.core.errors import FaceganError
from facegan.core.hashing import sha256_file

#: Folder of the weights shipped inside the package.
PACKAGED_DIR = Path(__file__).resolve().parent.parent / "assets" / "weights"
_FACENET_RELEASE = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9"


def _mobilefacenet() -> nn.Module:
    from facegan.models.mobilefacenet import MobileFaceNet

    return MobileFaceNet()


def _vgg19_trunk() -> nn.Module:
    from facegan.models.vgg import VGG19Trunk

    return VGG19Trunk()


def _inception_resnet_v1() -> nn.Module:
    from facenet_pytorch import InceptionResnetV1

    return InceptionResnetV1(pretrained=None, classify=False)


@dataclass(frozen=True)
class WeightSpec:
    """One pretrained weights file and how to get and check it."""

    name: str
    #: File name, in the package (``packaged``) or in the torch hub cache.
    filename: str
    #: Where to download it from; None when there is nowhere to download it from.
    url: str | None
    #: Known sha256 of the file, or None when none is published (then a download is checked by
    #: loading it, and the sha256 of the verified file is recorded beside it).
    sha256: str | None
    #: Environment variable that may hold the file's path.
    env_var: str
    #: The recipe key that takes an explicit path, named in error messages.
    option: str
    #: Builds the (randomly initialised) network whose state dict the file must fit.
    build: Callable[[], nn.Module]
    #: Key prefixes present in the file but unused by ``build()``'s network (classifier heads).
    unused_prefixes: tuple[str, ...] = ()
    #: Whether the file ships inside the package (``facegan/assets/weights``).
    packaged: bool = False
    #: Known start of the file's sha256 (torchvision names its files ``<name>-<prefix>.pth``);
    #: cached and downloaded files are checked against it.
    sha256_prefix: str | None = None


WEIGHTS: dict[str, WeightSpec] = {
    "mobilefacenet": WeightSpec(
        name="mobilefacenet",
        filename="mobilefacenet.safetensors",
        url=None,
        sha256="fb6017d443b9c3913b15f527df7fa34b30423a2c3706a680f2a41786d61e6ba1",
        env_var="FACEGAN_WEIGHTS_MOBILEFACENET",
        option="loss.identity_weights",
        build=_mobilefacenet,
        packaged=True,
    ),
    "facenet-vggface2": WeightSpec(
        name="facenet-vggface2",
        filename="20180402-114759-vggface2.pt",
        url=f"{_FACENET_RELEASE}/20180402-114759-vggface2.pt",
        sha256=None,
        env_var="FACEGAN_WEIGHTS_FACENET_VGGFACE2",
        option="loss.identity_weights",
        build=_inception_resnet_v1,
        unused_prefixes=("logits.",),
    ),
    # torchvision's VGG19 IMAGENET1K_V1 (the SRGAN content loss); the file holds the classifier
    # too, which the content loss never uses.
    "vgg19": WeightSpec(
        name="vgg19",
        filename="vgg19-dcbb9e9d.pth",
        url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        sha256=None,
        sha256_prefix="dcbb9e9d",
        env_var="FACEGAN_WEIGHTS_VGG19",
        option="loss.vgg_weights",
        build=_vgg19_trunk,
        unused_prefixes=("classifier.",),
    ),
    "facenet-casia": WeightSpec(
        name="facenet-casia",
        filename="20180408-102900-casia-webface.pt",
        url=f"{_FACENET_RELEASE}/20180408-102900-casia-webface.pt",
        sha256=None,
        env_var="FACEGAN_WEIGHTS_FACENET_CASIA",
        option="loss.identity_weights",
        build=_inception_resnet_v1,
        unused_prefixes=("logits.",),
    ),
}


def weight_spec(name: str) -> WeightSpec:
    """The :class:`WeightSpec` called ``name``; FaceganError listing the known ones otherwise."""
    try:
        return WEIGHTS[name]
    except KeyError:
        raise FaceganError(
            f"unknown pretrained weights {name!r}; known: {', '.join(WEIGHTS)}"
        ) from None


def hub_checkpoint_dir() -> Path:
    """The torch hub cache folder for weight files: ``torch.hub.get_dir()/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def sidecar_path(path: Path) -> Path:
    """Where the recorded sha256 of a verified download lives: ``<file>.sha256``."""
    return path.with_name(path.name + ".sha256")


def resolve_weights(name: str, path: str | Path | None = None) -> Path:
    """The weights file for ``name``, found in the order the module docstring lists.

    An explicit ``path`` must exist (its contents are checked when loaded, see
    :func:`load_weights`). Shipped and cached files are checked against their known or recorded
    sha256; a download is verified before it is kept.
    """
    spec = weight_spec(name)
    if path is not None:
        return _existing(Path(path).expanduser(), f"{spec.name} weights file ({spec.option})")
    env_path = os.environ.get(spec.env_var, "").strip()
    if env_path:
        return _existing(Path(env_path).expanduser(), f"{spec.name} weights file ({spec.env_var})")
    if spec.packaged and (PACKAGED_DIR / spec.filename).is_file():
        return _check_packaged(spec, PACKAGED_DIR / spec.filename)
    cached = hub_checkpoint_dir() / spec.filename
    if cached.is_file():
        return _check_cached(spec, cached)
    return _download_verified(spec, cached)


def load_weights(name: str, path: str | Path | None = None) -> nn.Module:
    """Build the network for weights ``name`` and load its resolved weights file (strict).

    FaceganError, naming the file, when it is not a state dict or does not fit the network.
    """
    spec = weight_spec(name)
    return _load_into_model(spec, resolve_weights(name, path))


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Load a state dict with ``weights_only=True``; FaceganError naming the file otherwise."""
    try:
        return _read_state_dict(path)
    except _Unusable as exc:
        raise FaceganError(f"{path} {exc}") from None


def fit_state_dict(
    spec: WeightSpec, state: Mapping[str, torch.Tensor], model: nn.Module, path: Path
) -> dict[str, torch.Tensor]:
    """``state`` without the spec's unused keys, checked to fit ``model`` key by key and shape
    by shape; FaceganError naming the file and the first differences otherwise."""
    try:
        return _fit_state_dict(spec, state, model)
    except _Unusable as exc:
        raise FaceganError(f"{path} {exc}") from None


class _Unusable(Exception):
    """Why a file cannot be used as weights (completed into a FaceganError by the caller)."""


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    with open(path, "rb") as f:
        head = f.read(64)
    # torch.save writes a zip archive (PK..), or a bare pickle (0x80 ..) in the legacy format.
    if not (head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")):
        looks = head.lstrip().lower().startswith((b"<!doctype", b"<html"))
        what = "an HTML page" if looks else f"it starts with {head[:16]!r}"
        raise _Unusable(f"is not a PyTorch weights file ({what})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise _Unusable(
            "holds Python objects other than tensors, which facegan does not load "
            "(torch.load weights_only=True)"
        ) from None
    except Exception as exc:  # truncated or corrupted archive
        raise _Unusable(f"is not a readable PyTorch weights file (truncated? {_one_line(exc)})") from None
    if not isinstance(state, Mapping) or not state:
        raise _Unusable(f"is not a state dict (it holds a {type(state).__name__})")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise _Unusable("is not a state dict (not every entry is a named tensor)")
    return dict(state)


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors (the format facegan ships: no pickle, nothing to execute)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise _Unusable(f"is not a readable safetensors file ({_one_line(exc)})") from None
    if not state:
        raise _Unusable("holds no tensors")
    return state


def _fit_state_dict(
    spec: WeightSpec, state: Mapping[str, torch.Tensor], model: nn.Module
) -> dict[str, torch.Tensor]:
    state = {k: v for k, v in state.items() if not k.startswith(spec.unused_prefixes)}
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = [
        f"{len(items)} {what} (e.g. {', '.join(items[:2])})"
        for what, items in (("missing keys", missing), ("unexpected keys", unexpected),
                            ("shape mismatches", wrong))
        if items
    ]
    if problems:
        raise _Unusable(f"does not fit the {spec.name} network: {'; '.join(problems)}")
    return state


# --- resolution steps --------------------------------------------------------------------------


def _existing(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FaceganError(f"{what} not found: {path}")
    return path


def _check_packaged(spec: WeightSpec, path: Path) -> Path:
    actual = sha256_file(path)
    if spec.sha256 is not None and actual != spec.sha256:
        raise FaceganError(
            f"the {spec.name} weights shipped with facegan are corrupted ({path}: sha256 "
            f"{actual[:12]}..., expected {spec.sha256[:12]}...): reinstall facegan"
        )
    return path


def _check_cached(spec: WeightSpec, path: Path) -> Path:
    sidecar = sidecar_path(path)
    if spec.sha256_prefix is not None:
        actual = sha256_file(path)
        if not actual.startswith(spec.sha256_prefix):
            raise FaceganError(
                f"cached {spec.name} weights {path} are corrupted (sha256 {actual[:12]}... does not start "
                f"with {spec.sha256_prefix}): delete it to download it again, or pass another copy with "
                f"{spec.option}=PATH or {spec.env_var}=PATH"
            )
    expected = spec.sha256
    if expected is None and sidecar.is_file():
        expected = (sidecar.read_text().split() or [""])[0]
    if expected is None:
        # Put there by hand or by another tool: verify once, then record what was verified.
        _load_into_model(spec, path)
        _write_sidecar(path, sha256_file(path), required=False)
        return path
    actual = sha256_file(path)
    if actual != expected:
        raise FaceganError(
            f"cached {spec.name} weights {path} are corrupted (sha256 {actual[:12]}..., "
            f"expected {expected[:12]}... from {sidecar.name if spec.sha256 is None else 'facegan'}"
            f"): delete it and its .sha256 to download it again, or pass another copy with "
            f"{spec.option}=PATH or {spec.env_var}=PATH"
        )
    return path


def _download_verified(spec: WeightSpec, dest: Path) -> Path:
    """Download ``spec.url`` to a temporary file beside ``dest``, verify it, rename it."""
    advice = (
        f"pass its path with {spec.option}=PATH or set {spec.env_var}=PATH"
        if spec.url is None
        else f"download {spec.url} and pass its path with {spec.option}=PATH or set "
        f"{spec.env_var}=PATH"
    )
    if spec.url is None:
        raise FaceganError(
            f"{spec.name} weights ({spec.filename}) are not shipped or cached and have no "
            f"download address: {advice}"
        )
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _download(spec.url, tmp)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise FaceganError(
            f"{spec.name} weights are not cached and could not be downloaded "
            f"({_one_line(exc)}): {advice}"
        ) from None
    try:
        actual = sha256_file(tmp)
        if spec.sha256 is not None and actual != spec.sha256:
            raise _Unusable(f"sha256 {actual[:12]}... is not the expected {spec.sha256[:12]}...")
        if spec.sha256_prefix is not None and not actual.startswith(spec.sha256_prefix):
            raise _Unusable(f"sha256 {actual[:12]}... does not start with the expected {spec.sha256_prefix}")
        _fit_state_dict(spec, _read_state_dict(tmp), spec.build())
    except _Unusable as exc:
        tmp.unlink(missing_ok=True)
        raise FaceganError(
            f"the {spec.name} weights downloaded from {spec.url} are unusable and were not kept "
            f"(the file {exc}): {advice}"
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, dest)
    _write_sidecar(dest, actual, required=True)
    return dest


def _download(url: str, dest: Path) -> None:
    """Fetch ``url`` into ``dest`` (the one place facegan touches the network; tests replace it)."""
    torch.hub.download_url_to_file(url, str(dest), progress=True)


def _write_sidecar(path: Path, digest: str, required: bool) -> None:
    try:
        sidecar_path(path).write_text(f"{digest}  {path.name}\n")
    except OSError:
        if required:
            raise


def _load_into_model(spec: WeightSpec, path: Path) -> nn.Module:
    model = spec.build()
    state = fit_state_dict(spec, read_state_dict(path), model, path)
    model.load_state_dict(state, strict=True)
    return model


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
