"""Shared test fixtures.

``shared`` is the team folder at ``../shared`` (real faces, reference weights). A user's
clone has no such folder: tests that need it take the ``shared_dir`` fixture and skip with a
reason when it is absent. Core tests run on what the repo ships (bundled sample faces and
MobileFaceNet weights).
"""

from __future__ import annotations

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
