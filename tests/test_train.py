"""The shared GAN loop on real (bundled) faces: artifacts, exact resume, falling loss."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from facegan.checkpoints.checkpoint import Checkpoint
from facegan.core.errors import FaceganError
from facegan.training.train import train

from helpers import tiny_recipe, train_state


def _records(run, kind="step"):
    return [r for r in map(json.loads, (run / "log.jsonl").read_text().splitlines()) if r["kind"] == kind]


def test_run_folder_has_every_artifact(tiny_run):
    steps = _records(tiny_run)
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5, 6]  # every step's losses are logged
    for key in ("d", "g", "g_adv", "g_rec", "g_id", "d_real", "d_fake"):
        assert all(isinstance(r[key], float) for r in steps), key
    assert all(r["g_id"] > 0 for r in steps)  # identity loss is on
    assert [r["step"] for r in _records(tiny_run, "val")] == [3, 6]
    for name in ("recipe.yaml", "loss_curves.png", "val_curves.png", "samples/step_0000003.png",
                 "samples/step_0000006.png", "checkpoints/step_0000003.pt", "checkpoints/step_0000006.pt",
                 "checkpoints/last.pt"):
        assert (tiny_run / name).is_file(), name
    assert not list(tiny_run.rglob("*.tmp"))


def test_checkpoint_is_self_sufficient(tiny_run):
    ckpt = train_state(tiny_run)
    for key in ("generator", "discriminator", "ema", "opt_g", "opt_d", "sched_g", "sched_d", "recipe",
                "step", "task", "template", "facegan_version", "rng", "size"):
        assert key in ckpt, key
    assert ckpt["step"] == 6 and ckpt["task"] == "inpaint" and ckpt["size"] == 64
    assert ckpt["recipe"]["loss"]["identity"] == 0.1
    assert not any(k.startswith("id_net") for k in ckpt["generator"])  # frozen network not saved


def _states_equal(a, b):
    return all(torch.equal(a[k], b[k]) for k in a) and a.keys() == b.keys()


def test_resume_continues_exactly(sample_data, tiny_run, tmp_path):
    straight = tiny_run  # the same recipe in one go (its checkpoints and samples change no weight)
    split = tmp_path / "split"
    train(tiny_recipe(sample_data, "train.steps=3", "train.checkpoint_every=100"), split)
    train(tiny_recipe(sample_data, "train.checkpoint_every=100"), split, resume=True)
    a, b = train_state(straight), train_state(split)
    assert a["step"] == b["step"] == 6
    for key in ("generator", "discriminator", "ema"):
        assert _states_equal(a[key], b[key]), key
    la = [r["g"] for r in _records(straight)]
    lb = [r["g"] for r in _records(split)]
    assert la == lb  # the log is continued, not duplicated


def test_refuses_to_overwrite_or_resume_wrongly(sample_data, tiny_run, tmp_path):
    with pytest.raises(FaceganError, match="already holds a run"):
        train(tiny_recipe(sample_data), tiny_run)
    with pytest.raises(FaceganError, match="last.pt not found"):
        train(tiny_recipe(sample_data), tmp_path / "nothing", resume=True)
    with pytest.raises(FaceganError, match="differs from the checkpoint's in loss.identity"):
        train(tiny_recipe(sample_data, "loss.identity=0", "train.steps=8"), tiny_run, resume=True)
    with pytest.raises(FaceganError, match="already at step 6"):
        train(tiny_recipe(sample_data), tiny_run, resume=True)


def test_data_errors(sample_data, tmp_path):
    with pytest.raises(FaceganError, match="not a facegan dataset"):
        train(tiny_recipe(tmp_path), tmp_path / "r1")
    with pytest.raises(FaceganError, match="data.size is 128 but"):
        train(tiny_recipe(sample_data, "data.size=128"), tmp_path / "r2")
    with pytest.raises(FaceganError, match="larger than the train split"):
        train(tiny_recipe(sample_data, "train.batch=64"), tmp_path / "r3")
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


@pytest.mark.slow
def test_loss_falls_on_real_faces(sample_data, tmp_path):
    run = tmp_path / "falls"
    train(tiny_recipe(sample_data, "model.width=16", "train.batch=8", "train.steps=60", "train.sample_every=60",
                      "train.checkpoint_every=60", "train.log_every=10"), run)
    rec = [r["g_rec"] for r in _records(run)]
    ident = [r["g_id"] for r in _records(run)]
    first, last = sum(rec[:10]) / 10, sum(rec[-10:]) / 10
    assert last < 0.8 * first, (first, last)
    assert sum(ident[-10:]) < sum(ident[:10])


@pytest.mark.slow
def test_identity_blur_reaches_the_loss_and_its_cached_targets(sample_data, tmp_path):
    """loss.identity_blur blurs output and target alike: the cached target embeddings (a run that
    sees every face twice) give the same training as embedding the blurred targets per step."""
    extra = ("train.steps=12", "train.checkpoint_every=100", "train.sample_every=100", "loss.identity_blur=1.0")
    cached, direct, sharp = tmp_path / "cached", tmp_path / "direct", tmp_path / "sharp"
    train(tiny_recipe(sample_data, *extra), cached)
    train(tiny_recipe(sample_data, *extra, "train.identity_cache=false"), direct)
    train(tiny_recipe(sample_data, *extra[:-1]), sharp)
    assert train_state(cached)["recipe"]["loss"]["identity_blur"] == 1.0
    assert _records(cached, "start")[0]["identity_targets_cached"]
    assert not _records(direct, "start")[0]["identity_targets_cached"]
    a, b = train_state(cached), train_state(direct)
    assert _states_equal(a["generator"], b["generator"])
    ids = [r["g_id"] for r in _records(cached)]
    assert ids == [r["g_id"] for r in _records(direct)]
    assert ids != [r["g_id"] for r in _records(sharp)]


def test_init_from_starts_from_another_runs_weights(tiny_run, sample_data, tmp_path):
    src = train_state(tiny_run)
    run = tmp_path / "finetune"
    # a learning rate too small to move fp32 weights: after one step they are still the source's
    train(tiny_recipe(sample_data, f"train.init_from={tiny_run}", "train.steps=1", "train.lr_g=1e-30",
                      "train.lr_d=1e-30", "train.checkpoint_every=100"), run)
    ckpt = train_state(run)
    assert ckpt["step"] == 1 and ckpt["recipe"]["train"]["init_from"] == str(tiny_run)
    for key, weights in (("generator", src["ema"]), ("ema", src["ema"]), ("discriminator", src["discriminator"])):
        params = [k for k in weights if "running_" not in k and "num_batches" not in k]  # BatchNorm statistics move
        assert params and [k for k in params if not torch.allclose(ckpt[key][k], weights[k])] == [], key
    fresh = tmp_path / "fresh"
    train(tiny_recipe(sample_data, "train.steps=1", "train.lr_g=1e-30", "train.lr_d=1e-30",
                      "train.checkpoint_every=100"), fresh)
    first = next(iter(src["ema"]))
    assert not torch.allclose(train_state(fresh)["ema"][first], src["ema"][first])  # the check can fail


def test_init_from_chains_record_every_earlier_stage_down_to_the_bundled_card(tiny_run, sample_data, tmp_path):
    from facegan.checkpoints.bundle_writer import write_bundle

    src = train_state(tiny_run)
    assert src["earlier_stages"] == []  # trained from scratch
    stage2, stage3 = tmp_path / "stage2", tmp_path / "stage3"
    train(tiny_recipe(sample_data, f"train.init_from={tiny_run}", "train.steps=2", "loss.adversarial=0"), stage2)
    train(tiny_recipe(sample_data, f"train.init_from={stage2}", "train.steps=1"), stage3)
    ckpt = train_state(stage3)
    stages = ckpt["earlier_stages"]
    assert [(s["source"], s["steps"]) for s in stages] == [(str(tiny_run), src["step"]), (str(stage2), 2)]
    assert stages[0]["recipe"]["loss"]["adversarial"] == src["recipe"]["loss"]["adversarial"] != 0
    assert stages[1]["recipe"]["loss"]["adversarial"] == 0 and stages[1]["recipe"]["train"]["init_from"] == str(tiny_run)
    # a resumed run keeps them
    train(tiny_recipe(sample_data, f"train.init_from={stage2}", "train.steps=2"), stage3, resume=True)
    assert train_state(stage3)["earlier_stages"] == stages
    # and the bundled model's card names them, as does the checkpoint it loads as
    model = write_bundle(Checkpoint.load(stage3), "chain-test", tmp_path / "models", "test faces", "test licence")
    assert model.card["earlier_stages"] == stages and model.card["steps"] == 2
    assert Checkpoint.from_bundled(model).earlier_stages == stages
    # both files come from the one atomic writer: the weights are as readable as the card
    assert model.weights.stat().st_mode & 0o777 == model.weights.with_suffix(".json").stat().st_mode & 0o777


def test_init_from_refuses_another_model_or_task(tiny_run, sample_data, tmp_path):
    with pytest.raises(FaceganError, match=r"model differs from this recipe's in model.width \(8 there, 16 here\)"):
        train(tiny_recipe(sample_data, f"train.init_from={tiny_run}", "model.width=16"), tmp_path / "a")
    with pytest.raises(FaceganError, match="not found"):
        train(tiny_recipe(sample_data, f"train.init_from={tmp_path / 'nowhere'}"), tmp_path / "b")
    with pytest.raises(FaceganError, match="not 'inpaint'"):
        train(tiny_recipe(sample_data, "train.init_from=sr4-128"), tmp_path / "c")
    assert not (tmp_path / "a" / "checkpoints").exists()



def test_a_generator_that_blows_up_is_reported_once(tmp_path):
    """A GAN fine-tune of SPAN jumped from L1 0.05 to 0.8 between two steps (finite, so the run
    does not stop): the log flags the first step of the jump and the progress gets one note."""
    from facegan.training.run_log import SPIKE_WINDOW, RunLog

    log = RunLog(tmp_path / "log.jsonl", ["rec", "tv"], warmup_steps=0)
    rng = np.random.default_rng(0)
    steady = [0.05 + 0.01 * rng.standard_normal() for _ in range(SPIKE_WINDOW + 30)]
    values = steady + [0.16, 0.83, 0.90, 0.95]

    def record(step, rec):
        return {"kind": "step", "step": step, "d": 0.6, "g": rec, "g_adv": 1.0, "g_id": 0.2, "d_real": 0.6,
                "d_fake": 0.5, "g_rec": rec, "g_tv": 0.02}

    notes, flagged = [], []
    for start in range(0, len(values), 25):  # flushed 25 steps at a time, as train.log_every does
        records = [record(start + i + 1, v) for i, v in enumerate(values[start:start + 25])]
        notes += log.health(records)[1]
        flagged += [r["step"] for r in records if r.get("g_spike")]
    spike_step = len(steady) + 2  # 0.16 is about 3x the median, 0.83 far past 4x
    assert flagged == [spike_step]
    assert len(notes) == 1 and f"step {spike_step}: the generator's rec loss jumped to 0.830" in notes[0]
    assert "blown up" in notes[0] and "train.betas" in notes[0]
