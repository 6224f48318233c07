"""SHA-256 of files, read in chunks (weights, bundled models, datasets, photos)."""

from __future__ import annotations

import hashlib
from pathlib import Path

#: Bytes read per chunk.
CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of the file ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
