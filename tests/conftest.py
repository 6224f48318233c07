"""Shared test fixtures.

``shared`` is the team folder at ``../shared`` (real faces, reference weights). A user's
clone has no such folder: tests that need it take the ``shared_dir`` fixture and skip with a
reason when it is absent. Core tests run on what the repo ships (bundled sample faces and
MobileFaceNet weights).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import REPO, SHARED, tiny_recipe


@pytest.fixture(scope="session", autouse=True)
def _private_cache_dir(tmp_path_factory):
    """facegan's cache (eval's reference rows) in a folder of this session, not the user's."""
    import os

    before = os.environ.get("FACEGAN_CACHE_DIR")
    os.environ["FACEGAN_CACHE_DIR"] = str(tmp_path_factory.mktemp("facegan-cache"))
    yield
    if before is None:
        os.environ.pop("FACEGAN_CACHE_DIR", None)
    else:
        os.environ["FACEGAN_CACHE_DIR"] = before


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

@pytest.fixture(scope="session")
def sample_data(tmp_path_factory) -> Path:
    """The bundled sample faces, packed at 64 px (MTCNN + alignment: the real pipeline)."""
    from facegan.data.prepare import prepare_sample

    return prepare_sample(tmp_path_factory.mktemp("data") / "sample64", size=64)


@pytest.fixture(scope="session")
def tiny_run(sample_data, tmp_path_factory) -> Path:
    """A 6-step inpainting run on the sample faces (checkpoints at steps 3 and 6)."""
    from facegan.training.train import train

    out = tmp_path_factory.mktemp("runs") / "tiny"
    train(tiny_recipe(sample_data), out)
    return out


@pytest.fixture(scope="session")
def tiny_sr(sample_data, tmp_path_factory) -> Path:
    """A 2-step x4 super-resolution run on the sample faces, shared by every test that needs a
    trained SR checkpoint but not a trained-looking one (export, restore, paste-back)."""
    from facegan.tasks.recipes import load_recipe
    from facegan.training.train import train

    recipe = load_recipe(REPO / "recipes" / "quickstart_sr.yaml", [
        "data.size=64", "model.width=8", "model.d_width=8", "model.num_blocks=1", "model.d_head=16", "train.batch=4",
        "train.steps=2", "train.warmup_steps=0", "train.log_every=1", "train.sample_every=2",
        "train.checkpoint_every=2", f"data.path={sample_data}"])
    out = tmp_path_factory.mktemp("runs") / "tiny_sr"
    train(recipe, out)
    return out


@pytest.fixture
def one_torch_thread():
    """MTCNN runs in this process (workers=1); one thread is steadier on a shared 2-core box."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
