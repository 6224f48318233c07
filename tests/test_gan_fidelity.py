"""GAN fine-tunes and the fidelity knob: the adversarial losses, the spectrally normalised
PatchGAN, a GAN run fine-tuned from a PSNR run (another discriminator allowed), network
interpolation between the two (``--fidelity``), and the SPAN cascade generator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from facegan.checkpoints.checkpoint import Checkpoint
from facegan.checkpoints.fidelity import at_fidelity, blend
from facegan.cli import app
from facegan.core.errors import FaceganError
from facegan.training.adversarial import discriminator_loss, generator_loss
from facegan.training.train import train

from helpers import REPO, tiny_recipe, train_state

runner = CliRunner()


def test_adversarial_losses_match_their_formulas():
    real, fake = torch.tensor([2.0, -0.5, 0.3]), torch.tensor([-1.5, 0.8, 0.0])
    sp = torch.nn.functional.softplus  # -log(sigmoid(x)) = softplus(-x)
    assert torch.allclose(discriminator_loss(real, fake, "hinge"),
                          torch.relu(1 - real).mean() + torch.relu(1 + fake).mean())
    assert torch.allclose(generator_loss(fake, kind="hinge"), -fake.mean())
    rel_real, rel_fake = real - fake.mean(), fake - real.mean()
    assert torch.allclose(discriminator_loss(real, fake, "relativistic"),
                          0.5 * (sp(-rel_real).mean() + sp(rel_fake).mean()))
    assert torch.allclose(generator_loss(fake, real, "relativistic"), 0.5 * (sp(rel_real).mean() + sp(-rel_fake).mean()))
    assert torch.allclose(discriminator_loss(real, fake), 0.5 * (sp(-real).mean() + sp(fake).mean()))
    with pytest.raises(ValueError, match="real faces' logits"):
        generator_loss(fake, kind="relativistic")
    # the generator's relativistic loss falls as its outputs look more real than the real ones
    assert generator_loss(fake + 3, real, "relativistic") < generator_loss(fake, real, "relativistic")


def test_spectral_norm_patchgan_has_no_batch_norm_and_unit_spectral_norm():
    from facegan.models.patchgan import PatchGAN

    d = PatchGAN(3, 8, 3, spectral_norm=True).train()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    x = torch.randn(2, 3, 64, 64)
    for _ in range(20):  # power iterations converge while training
        d(x)
    d.eval()
    assert d(x).shape == PatchGAN(3, 8, 3)(x).shape
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    sigma = float(torch.linalg.matrix_norm(convs[1].weight.detach().flatten(1), ord=2))
    assert sigma == pytest.approx(1.0, abs=0.05)


@pytest.fixture(scope="module")
def psnr_and_gan(sample_data, tmp_path_factory):
    """A 2-step PSNR run (no adversarial term), then a 2-step GAN fine-tune of it with another
    discriminator (spectral norm) and the relativistic loss."""
    root = tmp_path_factory.mktemp("gan")
    psnr, gan = root / "psnr", root / "gan"
    train(tiny_recipe(sample_data, "train.steps=2", "loss.adversarial=0", "train.checkpoint_every=2"), psnr)
    train(tiny_recipe(sample_data, f"train.init_from={psnr}", "train.steps=2", "train.checkpoint_every=2",
                      "loss.adversarial=0.5", "loss.adversarial_loss=relativistic", "model.d_spectral_norm=true",
                      "train.lr_g=1e-2"), gan)
    return psnr, gan


def test_gan_fine_tune_trains_d_with_its_own_discriminator(psnr_and_gan):
    psnr, gan = psnr_and_gan
    state = train_state(gan)
    assert state["earlier_stages"][-1]["source"] == str(psnr)
    assert any("parametrizations" in k for k in state["discriminator"])  # spectral norm
    g0, g1 = train_state(psnr)["ema"], state["ema"]
    assert any(not torch.equal(g0[k], g1[k]) for k in g0)  # the fine-tune moved the generator


def test_fidelity_blends_the_gan_model_with_its_psnr_model(psnr_and_gan):
    psnr, gan = psnr_and_gan
    p, g = Checkpoint.load(psnr).weights, Checkpoint.load(gan).weights
    for f, want in ((1.0, p), (0.0, g), (0.25, {k: 0.25 * p[k] + 0.75 * g[k] for k in g})):
        got = at_fidelity(Checkpoint.load(gan), f)
        assert got.fidelity == f and got.name == f"gan-fidelity{f:g}"
        assert all(torch.allclose(got.weights[k].float(), want[k].float(), atol=1e-6) for k in g if g[k].is_floating_point())
    plain = Checkpoint.load(gan)
    assert at_fidelity(plain, None) is plain  # a run has no default: as it is
    with pytest.raises(FaceganError, match="within 0..1"):
        at_fidelity(plain, 1.5)
    with pytest.raises(FaceganError, match="no GAN model made from it"):
        at_fidelity(Checkpoint.load(psnr), 0.5)
    with pytest.raises(FaceganError, match="different generators"):
        blend({"w": torch.zeros(2)}, {"w": torch.zeros(3)}, 0.5)


def test_eval_and_restore_take_fidelity(psnr_and_gan, tmp_path):
    _, gan = psnr_and_gan
    res = runner.invoke(app, ["eval", str(gan), "--mask", "eyes", "--max-images", "4", "--fidelity", "0.5",
                              "--out", str(tmp_path / "ev")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "ev" / "test_eyes_fidelity0.5.json").is_file()
    photo = REPO / "facegan" / "assets" / "sample_faces" / "deepface" / "img1.jpg"
    bad = runner.invoke(app, ["restore", str(photo), "--checkpoint", str(gan), "--fidelity", "2",
                              "--out", str(tmp_path / "r")])
    assert bad.exit_code == 2 and "error:" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "r").exists()


def test_span_cascade_starts_where_the_generic_cascade_peer_is():
    from facegan.models.span import SPANCascade, load_pretrained_cascade, span_upscale

    from PIL import Image

    face = Image.open(REPO / "facegan" / "assets" / "sample_faces" / "facenet_pytorch" / "angelina_jolie.png").convert("RGB")
    lr = torch.from_numpy(np.asarray(face.resize((16, 16), Image.Resampling.BICUBIC)).copy())
    lr = (lr.permute(2, 0, 1)[None].float() / 127.5 - 1).repeat(2, 1, 1, 1)
    cascade = load_pretrained_cascade(SPANCascade(8, 52)).eval()
    with torch.no_grad():
        out = cascade(lr)
    assert out.shape == (2, 3, 128, 128)
    # the peer rounds to 8 bits between its passes; the trainable cascade does not
    assert (out - span_upscale(lr, 8)).abs().mean() < 2 / 255
    with pytest.raises(ValueError, match="x2, x4 or x8"):
        SPANCascade(3)


def test_a_bundled_gan_model_names_its_partner_and_default(psnr_and_gan, sample_data, tmp_path, monkeypatch):
    import json

    import facegan.checkpoints.bundled as bundled
    from facegan.checkpoints.bundle_writer import write_bundle
    from facegan.checkpoints.fidelity import realism_default

    psnr, _ = psnr_and_gan
    models = tmp_path / "models"
    monkeypatch.setattr(bundled, "MODELS_DIR", models)
    write_bundle(Checkpoint.load(psnr), "tiny-psnr", models, "test faces", "test licence")
    gan = tmp_path / "gan"
    train(tiny_recipe(sample_data, "train.init_from=tiny-psnr", "train.steps=1", "train.checkpoint_every=1",
                      "loss.adversarial=0.5", "loss.adversarial_loss=hinge", "train.lr_g=1e-2"), gan)
    card = write_bundle(Checkpoint.load(gan), "tiny-gan", models, "test faces", "test licence").card
    psnr_card = bundled.find_model("tiny-psnr").card
    assert card["fidelity"] == {"psnr_model": "tiny-psnr", "psnr_sha256": psnr_card["sha256"], "default": None}
    assert at_fidelity(Checkpoint.from_bundled("tiny-gan"), None).fidelity is None  # no default yet: as it is
    card["fidelity"]["default"] = 0.4
    (models / "tiny-gan.json").write_text(json.dumps(card))
    blended = at_fidelity(Checkpoint.from_bundled("tiny-gan"), None)
    p, g = Checkpoint.from_bundled("tiny-psnr").weights, Checkpoint.from_bundled("tiny-gan").weights
    assert blended.fidelity == 0.4 and blended.name == "tiny-gan-fidelity0.4"
    assert all(torch.allclose(blended.weights[k], 0.4 * p[k] + 0.6 * g[k], atol=1e-6) for k in g if g[k].is_floating_point())
    # restore's default for the PSNR model is its GAN partner's; eval of the PSNR model is the PSNR model
    assert realism_default(Checkpoint.from_bundled("tiny-psnr")) == 0.4
    assert at_fidelity(Checkpoint.from_bundled("tiny-psnr"), None).fidelity is None
    # a PSNR model retrained under the same name is never blended with the old GAN weights
    write_bundle(Checkpoint.load(gan), "tiny-psnr", models, "test faces", "test licence")
    with pytest.raises(FaceganError, match="fine-tuned from other tiny-psnr weights"):
        at_fidelity(Checkpoint.from_bundled("tiny-gan"), 0.5)
