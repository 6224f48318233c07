"""eval's reference rows, kept on disk: reused exactly, keyed by batch and scorer, never trusted
when unreadable, and never in the way when the folder cannot be written."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from facegan.cli import app
from facegan.scoring import reference_cache
from facegan.scoring.evaluate import evaluate
from facegan.tasks.inpaint import InpaintTask

runner = CliRunner()


def _no_reference_outputs(monkeypatch):
    """Make computing a reference row fail, so a passing eval proves the rows were reused."""

    def refuse(self, batch, keys, peers=None):
        raise AssertionError("reference rows computed instead of reused")

    monkeypatch.setattr(InpaintTask, "reference_outputs", refuse)


def _files(root):
    return sorted((root / reference_cache.SUBDIR).rglob("*.npz"))


def test_second_eval_reuses_the_reference_rows_exactly(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("FACEGAN_CACHE_DIR", str(tmp_path / "cache"))
    first = evaluate(tiny_run, mask="eyes", device="cpu", out_dir=tmp_path / "a")
    assert first.summary["reference_cache"]["batches_reused"] == 0
    assert first.summary["reference_cache"]["batches_scored"] >= 1
    assert len(_files(tmp_path / "cache")) == first.summary["reference_cache"]["batches_scored"]

    with monkeypatch.context() as m:
        _no_reference_outputs(m)
        again = evaluate(tiny_run, mask="eyes", device="cpu", out_dir=tmp_path / "b")
        assert again.summary["reference_cache"]["batches_scored"] == 0
        for ref, values in first.references.items():
            assert list(again.references[ref]) == list(values)  # same metrics, same order
            for key, v in values.items():
                np.testing.assert_array_equal(again.references[ref][key], v)
        assert again.summary["paired"] == first.summary["paired"]
        assert (tmp_path / "a" / "test_eyes.csv").read_bytes() == (tmp_path / "b" / "test_eyes.csv").read_bytes()
        # reference_cache=False (eval --rescore-references) neither reads it (the refusal fires) ...
        with pytest.raises(AssertionError, match="computed instead of reused"):
            evaluate(tiny_run, mask="eyes", device="cpu", out_dir=tmp_path / "c", reference_cache=False)
        m.setenv("FACEGAN_DEBUG", "1")  # the refusal surfaces as itself, not as the CLI's "internal error" exit 70
        res = runner.invoke(app, ["eval", str(tiny_run), "--mask", "eyes", "--device", "cpu", "--rescore-references",
                                  "--out", str(tmp_path / "c")])
        assert isinstance(res.exception, AssertionError), res.output
        res = runner.invoke(app, ["eval", str(tiny_run), "--mask", "eyes", "--device", "cpu", "--out", str(tmp_path / "c")])
        assert res.exit_code == 0 and "reference rows: 1 of 1 batches reused" in res.output, res.output

    # ... nor writes it; and it scores what the cache held
    before = _files(tmp_path / "cache")
    fresh = evaluate(tiny_run, mask="center", device="cpu", out_dir=tmp_path / "d", reference_cache=False)
    assert "reference_cache" not in fresh.summary and _files(tmp_path / "cache") == before
    rescored = evaluate(tiny_run, mask="eyes", device="cpu", out_dir=tmp_path / "e", reference_cache=False)
    for ref, values in first.references.items():
        for key, v in values.items():
            np.testing.assert_array_equal(rescored.references[ref][key], v)


def test_the_cache_is_keyed_by_the_batch_and_by_the_code(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("FACEGAN_CACHE_DIR", str(tmp_path / "cache"))
    evaluate(tiny_run, mask="eyes", device="cpu", out_dir=tmp_path / "a")
    n = len(_files(tmp_path / "cache"))
    # another mask: other batches, scored and stored beside the first
    other = evaluate(tiny_run, mask="mouth", device="cpu", out_dir=tmp_path / "b")
    assert other.summary["reference_cache"]["batches_reused"] == 0
    assert len(_files(tmp_path / "cache")) == 2 * n
    # the same batches under changed facegan code: another scorer folder, nothing reused
    monkeypatch.setattr(reference_cache, "source_digest", lambda: "edited")
    edited = evaluate(tiny_run, mask="eyes", device="cpu", out_dir=tmp_path / "c")
    assert edited.summary["reference_cache"]["batches_reused"] == 0
    assert len({p.parent for p in _files(tmp_path / "cache")}) == 2


def test_batch_digest_sees_every_tensor():
    from facegan.tasks.inpaint import InpaintBatch

    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, 8, 8, generator=g) * 2 - 1
    mask = torch.zeros(2, 1, 8, 8)
    mask[..., 2:5, 2:5] = 1
    batch = InpaintBatch(target=target, inputs=(target * (1 - mask), mask), mask=mask)
    same = InpaintBatch(target=target.clone(), inputs=(target * (1 - mask), mask.clone()), mask=mask.clone())
    assert reference_cache.batch_digest(batch) == reference_cache.batch_digest(same)
    moved = mask.clone()
    moved[0, 0, 5, 5] = 1  # one more hole pixel, in the generator's input or in the scored hole
    for changed in (dataclasses.replace(batch, inputs=(batch.inputs[0], moved)), dataclasses.replace(batch, mask=moved)):
        assert reference_cache.batch_digest(changed) != reference_cache.batch_digest(batch)
    target2 = target.clone()
    target2[1, 2, 7, 7] += 1e-3
    assert reference_cache.batch_digest(dataclasses.replace(batch, target=target2)) != reference_cache.batch_digest(batch)
    with pytest.raises(ValueError, match="holds no tensors"):
        reference_cache.batch_digest(object())


def test_an_unreadable_cache_file_is_scored_again_and_replaced(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("FACEGAN_CACHE_DIR", str(tmp_path / "cache"))
    first = evaluate(tiny_run, mask="eyes", device="cpu", out_dir=tmp_path / "a")
    files = _files(tmp_path / "cache")
    files[0].write_bytes(b"not a zip file")
    again = evaluate(tiny_run, mask="eyes", device="cpu", out_dir=tmp_path / "b")
    assert again.summary["reference_cache"]["batches_scored"] == 1
    for ref, values in first.references.items():
        for key, v in values.items():
            np.testing.assert_array_equal(again.references[ref][key], v)
    with np.load(files[0], allow_pickle=False) as stored:  # replaced by a whole file
        assert "biharmonic/psnr" in stored.files and "grey/id_cos" in stored.files


def test_a_cache_folder_that_cannot_be_written_costs_only_time(tiny_run, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("FACEGAN_CACHE_DIR", str(blocker))
    res = runner.invoke(app, ["eval", str(tiny_run), "--mask", "eyes", "--device", "cpu", "--out", str(tmp_path / "e")])
    assert res.exit_code == 0, res.output
    assert "reference cache not written" in res.output
    assert "reference rows: 0 of 1 batches reused" in res.output
    assert blocker.read_text() == "not a folder"


def test_identity_and_judge_networks_key_the_scorer(tmp_path):
    from facegan.models.identity import load_identity_net
    from facegan.scoring.judge import NetworkJudge

    net = load_identity_net("mobilefacenet")
    base = reference_cache.scorer_digest("inpaint", ("grey", "biharmonic"), "cpu", net)
    assert base == reference_cache.scorer_digest("inpaint", ("grey", "biharmonic"), "cpu", net)
    assert base != reference_cache.scorer_digest("inpaint", ("grey", "biharmonic"), "cpu", net, NetworkJudge(net))
    assert base != reference_cache.scorer_digest("inpaint", ("grey", "biharmonic"), "cuda", net)
    # a BatchNorm running statistic (a buffer, not a parameter) changes the network's outputs
    bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    with torch.no_grad():
        bn.running_mean[0] += 0.5
    assert base != reference_cache.scorer_digest("inpaint", ("grey", "biharmonic"), "cpu", net)


def test_judged_reference_rows_are_reused_with_the_judge(tiny_run, tmp_path, monkeypatch):
    import importlib.util

    if not all(importlib.util.find_spec(m) for m in ("dlib", "face_recognition_models")):
        pytest.skip("the dlib judge needs pip install 'facegan[judge]'")
    from facegan.scoring.judge import load_judge

    judge = load_judge("dlib")
    digests = judge.fingerprint().split(",")
    assert len(digests) == 3 and all(len(d) == 64 for d in digests)  # the three model files' SHA-256
    monkeypatch.setenv("FACEGAN_CACHE_DIR", str(tmp_path / "cache"))
    plain = evaluate(tiny_run, mask="eyes", device="cpu", out_dir=tmp_path / "a")
    first = evaluate(tiny_run, mask="eyes", device="cpu", out_dir=tmp_path / "b", judge="dlib")
    assert first.summary["reference_cache"]["batches_reused"] == 0  # judged rows: another scorer
    assert "judge_cos" not in plain.references["grey"] and "judge_cos" in first.references["grey"]
    with monkeypatch.context() as m:
        _no_reference_outputs(m)
        again = evaluate(tiny_run, mask="eyes", device="cpu", out_dir=tmp_path / "c", judge="dlib")
    for ref, values in first.references.items():
        for key, v in values.items():
            np.testing.assert_array_equal(again.references[ref][key], v)
