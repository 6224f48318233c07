"""model.mirror_ensemble: evaluation, restore and export average the generator over a mirror."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from facegan.checkpoints.checkpoint import Checkpoint
from facegan.models.mirror import MirrorEnsemble
from facegan.models.unet import FaceUNet


def test_the_ensemble_is_the_mean_of_the_face_and_its_mirror_image():
    torch.manual_seed(0)
    gen = FaceUNet(size=32, width=4).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    m = (torch.rand(2, 1, 32, 32) > 0.7).float()
    with torch.no_grad():
        single, mirrored = gen(x, m), gen(x.flip(-1), m.flip(-1)).flip(-1)
        out = MirrorEnsemble(gen)(x, m)
        out_of_mirror = MirrorEnsemble(gen)(x.flip(-1), m.flip(-1))
    assert not torch.allclose(single, mirrored)  # the generator alone is not mirror-symmetric
    torch.testing.assert_close(out, (single + mirrored) / 2)
    torch.testing.assert_close(out_of_mirror, out.flip(-1))  # the ensemble is


def test_the_recipe_key_wraps_the_eval_generator_with_the_same_weights(tiny_run):
    ckpt = Checkpoint.load(tiny_run)
    plain = ckpt.build_generator()
    assert not isinstance(plain, MirrorEnsemble)
    recipe = copy.deepcopy(ckpt.stored_recipe)
    recipe["model"]["mirror_ensemble"] = True
    wrapped = dataclasses.replace(ckpt, stored_recipe=recipe).build_generator()
    assert isinstance(wrapped, MirrorEnsemble) and not wrapped.training
    for (k, a), (_, b) in zip(plain.state_dict().items(), wrapped.generator.state_dict().items()):
        assert torch.equal(a, b), k


def test_the_bundled_models_restore_in_one_pass_unless_asked():
    """No card turns it on (docs/models.md: it cost judge cosine on inpainting, and raised the
    SR outputs' period-2 peak); mirror=True does."""
    from facegan.checkpoints import bundled
    from facegan.restoring.torch_restorer import TorchRestorer

    for model in bundled.list_models():
        assert not isinstance(TorchRestorer(Checkpoint.from_bundled(model), "cpu").gen, MirrorEnsemble), model.name
        assert isinstance(TorchRestorer(Checkpoint.from_bundled(model), "cpu", mirror=True).gen, MirrorEnsemble), model.name


def test_the_bundled_inpainter_restores_a_mirrored_face_as_the_mirror_of_its_restoration():
    """End to end through Restorer with --mirror: restoring the mirror image of a face (and of
    its hole) gives the mirror image of the face's restoration, to uint8 rounding."""
    from test_bundled import _sample_faces

    from facegan.checkpoints import bundled
    from facegan.data import masks
    from facegan.faces.geometry import template_points
    from facegan.restoring.torch_restorer import TorchRestorer

    model = bundled.find_model("inpaint-128")
    if model is None:
        pytest.skip("inpaint-128 is not bundled in this checkout")
    restorer = TorchRestorer(Checkpoint.from_bundled(model), "cpu", mirror=True)
    assert isinstance(restorer.gen, MirrorEnsemble)
    faces = _sample_faces(restorer.task, 2)
    lms = torch.tensor(np.stack([template_points(128)] * 2), dtype=torch.float32)
    holes = masks.eval_masks("freeform", [0, 1], 128, landmarks=lms)[:, 0].numpy()  # not symmetric
    _, out = restorer.restore(faces, holes)
    _, out_mirror = restorer.restore(faces[:, :, ::-1].copy(), holes[:, :, ::-1].copy())
    diff = np.abs(out_mirror[:, :, ::-1].astype(int) - out.astype(int))
    assert diff.max() <= 1 and holes.sum() > 0


def test_eval_mirror_flags_override_the_recipe_and_say_so(tiny_run, tmp_path):
    import json

    from typer.testing import CliRunner

    from facegan.cli import app

    runner = CliRunner()
    got = {}
    for flag in ([], ["--mirror"], ["--no-mirror"]):
        out = tmp_path / f"e{len(got)}.json"
        res = runner.invoke(app, ["eval", str(tiny_run), "--mask", "eyes", "--device", "cpu", "--max-images", "4",
                                  "--json", str(out), "--out", str(tmp_path / f"o{len(got)}"), *flag])
        assert res.exit_code == 0, res.output
        summary = json.loads(out.read_text())
        got[tuple(flag)] = summary
        assert ("+ mirror" in res.output) == (flag == ["--mirror"])
    assert [s["mirror_ensemble"] for s in got.values()] == [False, True, False]  # the tiny recipe: off
    assert got[()]["metrics"] == got[("--no-mirror",)]["metrics"]
    assert got[()]["metrics"]["psnr"] != got[("--mirror",)]["metrics"]["psnr"]


def test_restore_refuses_mirror_flags_for_an_exported_model(tmp_path):
    from typer.testing import CliRunner

    from facegan.cli import app

    photo = tmp_path / "photo.png"
    photo.write_bytes(b"not read")
    res = CliRunner().invoke(app, ["restore", str(photo), "--checkpoint", str(tmp_path / "m.onnx"), "--no-mirror"])
    assert res.exit_code == 2 and "runs as it was exported" in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1


def test_the_key_changes_no_weights_so_init_from_and_resume_accept_it(tiny_run, sample_data, tmp_path):
    from facegan.training.run_state import check_resume_compatible
    from facegan.training.train import train

    from helpers import tiny_recipe

    stored = Checkpoint.load(tiny_run).stored_recipe
    check_resume_compatible(stored, tiny_recipe(sample_data, "model.mirror_ensemble=true", "name=tiny"))
    run = tmp_path / "mirrored"
    train(tiny_recipe(sample_data, f"train.init_from={tiny_run}", "model.mirror_ensemble=true", "train.steps=1",
                      "train.checkpoint_every=100"), run)
    assert isinstance(Checkpoint.load(run).build_generator(), MirrorEnsemble)
