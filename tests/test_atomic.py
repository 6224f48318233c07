"""facegan.core.atomic: whole files or none, and the mode a plain open() would give."""

from __future__ import annotations

import os
import stat

import pytest

from facegan.checkpoints.format import atomic_torch_save
from facegan.core import atomic


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    saved, atomic._umask = atomic._umask, None
    yield
    os.umask(old)
    atomic._umask = saved


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_new_files_get_the_umask_mode_not_the_temp_files_0600(tmp_path, umask_027):
    atomic.atomic_write_bytes(tmp_path / "a.csv", b"x,y\n")
    atomic_torch_save({"step": 1}, tmp_path / "ckpt" / "last.pt")
    assert _mode(tmp_path / "a.csv") == 0o640  # 0666 & ~0027
    assert _mode(tmp_path / "ckpt" / "last.pt") == 0o640
    assert os.umask(0o027) == 0o027  # reading the umask left it as it was


def test_a_replaced_file_keeps_its_own_mode_and_a_failed_write_leaves_it(tmp_path, umask_027):
    path = tmp_path / "card.json"
    path.write_bytes(b"old")
    path.chmod(0o604)
    atomic.atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new" and _mode(path) == 0o604

    def fail(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic.atomic_write(path, fail)
    assert path.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["card.json"]
