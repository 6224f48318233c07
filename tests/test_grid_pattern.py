"""scripts/grid_pattern.py: the periodic-grid figures of docs/models.md, on a tiny real run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from facegan.data.packed import PackedDataset
from facegan.metrics import quality as metrics

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "grid_pattern.py"


def _script():
    spec = importlib.util.spec_from_file_location("grid_pattern", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_grid_pattern_measures_model_references_and_ground_truth(tiny_run, sample_data):
    table = _script().measure(str(tiny_run), str(sample_data), 6, [2, 4], mask="eyes")
    peers = ["fsr_fast", "telea"] if importlib.util.find_spec("cv2") else []
    assert list(table) == ["model (raw output)", "model (result)", "grey", "biharmonic", *peers, "ground truth"]
    faces = PackedDataset(sample_data).split("test")
    n = min(6, len(faces))
    assert table["ground truth"][4] == pytest.approx(metrics.periodic_peak(np.array(faces.images[:n]), 4))
    assert all(np.isfinite(v) and v > 0 for peaks in table.values() for v in peaks.values())


def test_grid_pattern_refuses_an_unknown_model(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.argv", ["grid_pattern.py", str(tmp_path / "nothing")])
    with pytest.raises(SystemExit) as exc:
        _script().main()
    assert str(exc.value).startswith("error: ")
