"""Shared test fixtures.

``shared`` is the team folder at ``../shared`` (real faces, reference weights). A user's
clone has no such folder: tests that need it take the ``shared_dir`` fixture and skip with a
reason when it is absent. Core tests run on what the repo ships (bundled sample faces and
MobileFaceNet weights).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACEGAN_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "data" / "faces" / "fixtures").is_dir():
        pytest.skip(f"needs the team's shared folder ({SHARED}), absent in this checkout")
    return SHARED


@pytest.fixture(scope="session")
def fixtures_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "faces" / "fixtures"


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except Exception:  # pragma: no cover - torch missing means nothing runs anyway
        has_gpu = False
    if has_gpu:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# --------------------------------------------------------------------------- tiny real runs

TINY = [
    "data.size=64",
    "model.width=8",
    "model.d_width=8",
    "train.batch=4",
    "train.steps=6",
    "train.log_every=2",
    "train.sample_every=3",
    "train.checkpoint_every=3",
    "train.lr_g=1e-3",
    "loss.identity_net=mobilefacenet",
    "loss.identity=0.1",
]


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory) -> Path:
    """The bundled sample faces, packed at 64 px (MTCNN + alignment: the real pipeline)."""
    from facegan.data.prepare import prepare_sample

    return prepare_sample(tmp_path_factory.mktemp("data") / "sample64", size=64)


def tiny_recipe(data: Path, *extra: str):
    from facegan.recipe import load_recipe

    return load_recipe(REPO / "recipes" / "quickstart_inpaint.yaml", [*TINY, f"data.path={data}", *extra])


@pytest.fixture(scope="session")
def tiny_run(sample_data, tmp_path_factory) -> Path:
    """A 6-step inpainting run on the sample faces (checkpoints at steps 3 and 6)."""
    from facegan.engines.gan import train

    out = tmp_path_factory.mktemp("runs") / "tiny"
    train(tiny_recipe(sample_data), out)
    return out


# --------------------------------------------------------------------------- helpers


def recording_console(width: int = 200):
    """A rich console that records into a string (read it with ``.file.getvalue()``)."""
    from rich.console import Console

    return Console(file=io.StringIO(), width=width, force_terminal=False)


@pytest.fixture
def one_torch_thread():
    """MTCNN runs in this process (workers=1); one thread is steadier on a shared 2-core box."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
