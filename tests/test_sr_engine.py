"""The SR engine on real (bundled) faces: training x2/x4/x8, warm-up, D-collapse warning,
eval against scikit-image, scale refusals, and restore of an aligned low-resolution face."""

from __future__ import annotations

import csv
import io
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

from facegan.checkpoints.checkpoint import Checkpoint
from facegan.checkpoints.format import atomic_torch_save
from facegan.cli import app
from facegan.core.errors import FaceganError
from facegan.data import degrade
from facegan.data.loader import to_model_range
from facegan.data.packed import PackedDataset
from facegan.metrics.quality import to_uint8
from facegan.models import pretrained as weights
from facegan.restoring.torch_restorer import TorchRestorer
from facegan.scoring.evaluate import evaluate
from facegan.tasks.base import TaskOptions
from facegan.tasks.recipes import load_recipe
from facegan.training import run_log as runlog
from facegan.training.train import train

from helpers import REPO, train_state

runner = CliRunner()

TINY_SR = [
    "data.size=64",
    "model.width=8",
    "model.num_blocks=1",
    "model.d_width=8",
    "model.d_head=16",
    "train.batch=4",
    "train.steps=16",
    "train.warmup_steps=4",
    "train.log_every=4",
    "train.sample_every=100",
    "train.checkpoint_every=100",
    "train.lr_g=2e-3",
    "loss.identity=0",
    "loss.content=0",
]


def sr_recipe(data, *extra):
    return load_recipe(REPO / "recipes" / "quickstart_sr.yaml", [*TINY_SR, f"data.path={data}", *extra])


def _records(run, kind="step"):
    return [r for r in map(json.loads, (run / "log.jsonl").read_text().splitlines()) if r["kind"] == kind]


@pytest.fixture(scope="module")
def sr_runs(sample_data, tmp_path_factory):
    """16-step runs at x2, x4 and x8 on the 64 px sample faces (4 warm-up steps each)."""
    root = tmp_path_factory.mktemp("sr_runs")
    runs = {}
    for scale in (2, 4, 8):
        runs[scale] = root / f"x{scale}"
        train(sr_recipe(sample_data, f"model.scale={scale}"), runs[scale])
    return runs


# --------------------------------------------------------------------------- training


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_training_loss_falls_at_every_scale(sr_runs, scale):
    run = sr_runs[scale]
    steps = _records(run)
    assert [r["step"] for r in steps] == list(range(1, 17))
    warm, adv = steps[:4], steps[4:]
    assert all(r.get("warmup") and "d" not in r and "d_real" not in r for r in warm)
    assert all(isinstance(r[k], float) for r in adv for k in ("d", "g_adv", "d_real", "d_fake", "g_rec", "g_tv"))
    rec = [r["g_rec"] for r in steps]
    first, last = np.mean(rec[:4]), np.mean(rec[-4:])
    assert last < 0.85 * first, (first, last)
    ckpt = Checkpoint.load(run)
    assert ckpt.task_name == "sr" and ckpt.scale == scale and ckpt.stored_recipe["model"]["scale"] == scale
    gen = ckpt.build_generator()
    assert gen(torch.zeros(1, 3, 64 // scale, 64 // scale)).shape == (1, 3, 64, 64)
    assert (run / "samples" / "step_0000016.png").is_file() and (run / "loss_curves.png").is_file()


def test_warmup_only_never_trains_the_discriminator(sample_data, tmp_path):
    run = tmp_path / "warm"
    train(sr_recipe(sample_data, "train.steps=4", "train.warmup_steps=4", "model.scale=2"), run)
    ckpt = train_state(run)
    assert ckpt["opt_d"]["state"] == {}  # Adam never stepped
    assert ckpt["opt_g"]["state"]
    assert all(r.get("warmup") and "d" not in r for r in _records(run))


def test_no_adversarial_term_never_runs_the_discriminator(sample_data, tmp_path):
    # loss.adversarial = 0 after the warm-up: a plain regression run, D never stepped (nor logged)
    run = tmp_path / "plain"
    out = io.StringIO()
    train(sr_recipe(sample_data, "train.steps=8", "loss.adversarial=0", "model.scale=2"), run,
          console=Console(file=out, width=400))
    ckpt = train_state(run)
    assert ckpt["opt_d"]["state"] == {} and ckpt["opt_g"]["state"]
    records = _records(run)
    assert [r["step"] for r in records] == list(range(1, 9))
    assert all("d" not in r and "g_adv" not in r and "d_real" not in r for r in records)
    assert [bool(r.get("warmup")) for r in records] == [True] * 4 + [False] * 4  # not labelled warm-up
    assert all(r["g"] == pytest.approx(r["g_rec"] + 2e-8 * r["g_tv"], rel=1e-4) for r in records[4:])  # no adversarial term
    assert "no adversarial term (D off)" in " ".join(out.getvalue().split())


def test_collapsed_discriminator_is_reported(sample_data, tmp_path, monkeypatch):
    # A discriminator that cannot learn (lr_d ~ 0) gives D(x) = D(G(z)): the source's failure.
    monkeypatch.setattr(runlog, "COLLAPSE_GRACE", 2)
    out = io.StringIO()
    run = tmp_path / "collapse"
    train(sr_recipe(sample_data, "train.steps=12", "train.lr_d=1e-12", "model.scale=2"), run,
              console=Console(file=out, width=400))
    text = " ".join(out.getvalue().split())
    assert "the discriminator has collapsed and the adversarial term gives no signal" in text
    flushed = [r for r in _records(run) if "d_collapsed" in r]
    assert [r["step"] for r in flushed] == [8, 12]  # the first interval (steps 1-4) is warm-up
    assert all(r["d_collapsed"] and r["d_gap"] < runlog.COLLAPSE_GAP for r in flushed)


def test_resume_across_the_warmup_continues_exactly(sample_data, tmp_path):
    extra = ("train.steps=6", "train.warmup_steps=3", "train.log_every=1", "model.scale=2")
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(sr_recipe(sample_data, *extra), straight)
    train(sr_recipe(sample_data, *extra, "train.steps=2"), split)
    train(sr_recipe(sample_data, *extra), split, resume=True)
    a, b = train_state(straight), train_state(split)
    for key in ("generator", "discriminator", "ema"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
    assert [r["g"] for r in _records(straight)] == [r["g"] for r in _records(split)]


def test_content_loss_trains_with_local_vgg_weights(sample_data, tmp_path, monkeypatch):
    from facegan.models.vgg import vgg19_features

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    monkeypatch.delenv("FACEGAN_WEIGHTS_VGG19", raising=False)
    monkeypatch.setattr(weights, "_download", lambda url, dest: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(FaceganError, match="loss.vgg_weights=PATH"):
        train(sr_recipe(sample_data, "loss.content=1", "model.scale=2"), tmp_path / "no_vgg")
    assert not (tmp_path / "no_vgg").exists()
    vgg = tmp_path / "vgg.pth"
    torch.save({f"features.{k}": v for k, v in vgg19_features(3).state_dict().items()}, vgg)
    run = tmp_path / "content"
    train(sr_recipe(sample_data, "loss.content=1", "loss.content_layer=conv1_2", f"loss.vgg_weights={vgg}",
                        "train.steps=2", "train.warmup_steps=0", "model.scale=2"), run)
    assert all(r["g_content"] > 0 for r in _records(run))


# --------------------------------------------------------------------------- eval


def test_eval_reports_model_and_bicubic(sr_runs, tmp_path):
    out = tmp_path / "x4.json"
    res = runner.invoke(app, ["eval", str(sr_runs[4]), "--json", str(out), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "PSNR-Y" in res.output and "SSIM-Y" in res.output and "bicubic" in res.output
    data = json.loads(out.read_text())
    keys = {"psnr", "ssim", "psnr_y", "ssim_y", "detail", "id_cos"}
    assert set(data["metrics"]) == keys and set(data["references"]["bicubic"]["metrics"]) == keys
    assert data["references"]["bicubic"]["name"].startswith("bicubic") and set(data["paired"]) == {"bicubic", "span"}
    assert "reference" not in data and "bicubic" not in data  # each reference once, under "references"
    assert data["scale"] == 4 and data["task"] == "sr" and data["n_images"] == 6 and data.get("mask") is None
    with open(data["per_image_csv"]) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and abs(np.mean([float(r["psnr_y"]) for r in rows]) - data["metrics"]["psnr_y"]) < 1e-5
    assert (sr_runs[4] / "eval" / "test_x4.png").is_file()


def _skimage_scores(out_u8: np.ndarray, gt_u8: np.ndarray, crop: int) -> dict[str, float]:
    """PSNR/SSIM on RGB and Y computed with scikit-image only (docs/design.md conventions)."""
    from skimage.color import rgb2ycbcr
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    per: dict[str, list[float]] = {"psnr": [], "ssim": [], "psnr_y": [], "ssim_y": []}
    for o, g in zip(out_u8, gt_u8):
        o, g = o[crop:-crop, crop:-crop], g[crop:-crop, crop:-crop]
        oy, gy = rgb2ycbcr(o)[..., 0], rgb2ycbcr(g)[..., 0]  # MATLAB Y in [16, 235], float
        per["psnr"].append(peak_signal_noise_ratio(g, o, data_range=255))
        per["ssim"].append(structural_similarity(g, o, channel_axis=-1, **kw))
        per["psnr_y"].append(peak_signal_noise_ratio(gy, oy, data_range=255))
        per["ssim_y"].append(structural_similarity(gy, oy, **kw))
    return {k: float(np.mean(v)) for k, v in per.items()}


@pytest.mark.parametrize("scale", [2, 8])
def test_eval_metrics_equal_scikit_image(sr_runs, sample_data, tmp_path, scale):
    summary = evaluate(sr_runs[scale], device="cpu", out_dir=tmp_path).summary
    gt = np.array(PackedDataset(sample_data).split("test").images)
    hr = to_model_range(torch.from_numpy(gt))
    lr = degrade.bicubic_lr(hr, scale)
    with torch.no_grad():
        out = to_uint8(Checkpoint.load(sr_runs[scale]).build_generator()(lr))
    bicubic = to_uint8(torch.nn.functional.interpolate(lr, scale_factor=scale, mode="bicubic").clamp(-1, 1))
    bicubic_means = summary["references"]["bicubic"]["metrics"]
    for name, images, got in (("model", out, summary["metrics"]), ("bicubic", bicubic, bicubic_means)):
        want = _skimage_scores(images, gt, crop=scale)
        for key, value in want.items():
            assert abs(got[key] - value) < 1e-4, (name, key, got[key], value)
    assert bicubic_means["psnr_y"] > bicubic_means["psnr"]  # Y is smoother than RGB


# --------------------------------------------------------------------------- scale refusals


def test_a_checkpoint_of_one_scale_refuses_another(sr_runs, sample_data, tmp_path):
    run = sr_runs[4]
    msg = r"is a ×4 checkpoint; it cannot upscale ×8"
    with pytest.raises(FaceganError, match=msg):
        evaluate(run, scale=8, device="cpu", out_dir=tmp_path / "e")
    res = runner.invoke(app, ["eval", str(run), "--scale", "8"])
    assert res.exit_code == 2 and "is a ×4 checkpoint; it cannot upscale ×8" in res.output and "Traceback" not in res.output
    lr = tmp_path / "small.png"
    Image.new("RGB", (8, 8), "gray").save(lr)
    # restore's --scale is the photo's: a x4 face model (16 px in, 64 px out) serves a 16 px face at
    # x4; at x8 its output would have to be enlarged, so the face is upscaled with the background
    Image.new("RGB", (16, 16), "gray").save(lr)
    for scale, said in ((4, "16 px face: x4 (16 -> 64 px)"), (8, "16 px face: upscaled with the background")):
        res = runner.invoke(app, ["restore", str(lr), "--aligned", "--task", "sr", "--scale", str(scale), "-c", str(run),
                                  "--out", str(tmp_path / f"o{scale}"), "--device", "cpu"])
        assert res.exit_code == 0 and said in " ".join(res.output.split()), res.output
        assert np.asarray(Image.open(tmp_path / f"o{scale}" / "small_restored.png")).shape == (16 * scale, 16 * scale, 3)
    with pytest.raises(FaceganError, match=r"is a ×4 checkpoint; it cannot be resumed as ×8"):
        train(sr_recipe(sample_data, "model.scale=8", "train.steps=20"), run, resume=True)
    # weights of one scale loaded into a model of another (e.g. an edited stored recipe)
    ckpt = Checkpoint.load(run)
    ckpt.stored_recipe["model"]["scale"] = 8
    with pytest.raises(FaceganError, match=r"weights are for a ×4 SRResNet; they cannot upscale ×8"):
        ckpt.build_generator()
    res = runner.invoke(app, ["eval", str(run), "--mask", "eyes"])
    assert res.exit_code == 2 and "--mask is for inpainting runs" in res.output


def test_scale_is_checked_on_inpaint_checkpoints_too(sr_runs, tmp_path):
    ckpt = train_state(sr_runs[2])
    ckpt.update(task="inpaint", scale=None)
    fake = tmp_path / "inpaint.pt"
    atomic_torch_save(ckpt, fake)
    with pytest.raises(FaceganError, match="a scale .* is only for 'sr' checkpoints"):
        Checkpoint.load(fake, options=TaskOptions(scale=2))
    Image.new("RGB", (32, 32)).save(tmp_path / "x.png")
    res = runner.invoke(app, ["restore", str(tmp_path / "x.png"), "--aligned", "--task", "sr", "-c", str(fake),
                              "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "is a 'inpaint' checkpoint, not 'sr'" in " ".join(res.output.split())


# --------------------------------------------------------------------------- restore


def _lr_face(sample_data, tmp_path, side: int) -> tuple:
    hr = Image.open(sample_data / "examples" / "test_001.png").convert("RGB")
    path = tmp_path / f"face{side}.png"
    hr.resize((side, side), Image.BICUBIC).save(path)
    return path, np.asarray(hr)


def _restore_sr(*args):
    return runner.invoke(app, ["restore", *map(str, args), "--aligned", "--task", "sr", "--device", "cpu"])


def test_restore_upsamples_an_aligned_face(sr_runs, sample_data, tmp_path):
    lr_path, hr = _lr_face(sample_data, tmp_path, 16)
    res = _restore_sr(lr_path, "--scale", 4, "-c", sr_runs[4], "--out", tmp_path / "out", "--compare")
    assert res.exit_code == 0, res.output
    out = np.asarray(Image.open(tmp_path / "out" / "face16_restored.png"))
    assert out.shape == (64, 64, 3)
    assert Image.open(tmp_path / "out" / "face16_compare.png").size[0] > 3 * 64  # nearest | bicubic | facegan
    restorer = TorchRestorer.find("sr", sr_runs[4], device="cpu")
    assert restorer.input_size == 16
    lr = np.asarray(Image.open(lr_path))
    up = restorer.restore(lr[None])[1]
    # the aligned face is the whole photo: its centre is the model's output (the border is feathered)
    assert np.abs(up[0, 8:56, 8:56].astype(int) - out[8:56, 8:56]).max() <= 1
    assert restorer.restore(np.repeat(lr[None], 3, 0), batch_size=2)[1].shape == (3, 64, 64, 3)
    with pytest.raises(ValueError, match=r"\(N,16,16,3\)"):
        restorer.restore(hr[None])


def test_restore_other_sizes_give_scale_times_the_input(sr_runs, sample_data, tmp_path):
    lr_path, _ = _lr_face(sample_data, tmp_path, 40)
    res = _restore_sr(lr_path, "-c", sr_runs[4], "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    assert np.asarray(Image.open(tmp_path / "o" / "face40_restored.png")).shape == (160, 160, 3)


@pytest.mark.parametrize("side, scale, model", [(32, 2, "sr4-128"), (16, 4, "sr8-128"), (64, 2, "sr2-128"),
                                                (30, 4, None), (24, 4, None), (48, 4, None)])
def test_restore_gives_each_face_the_bundled_model_that_fits_it(sr_runs, sample_data, tmp_path, monkeypatch,
                                                               side, scale, model):
    """No face is shrunk before its model, nor enlarged after it; a run in ./runs is not used."""
    lr_path, _ = _lr_face(sample_data, tmp_path, side)
    monkeypatch.chdir(tmp_path)
    shutil.copytree(sr_runs[2], tmp_path / "runs" / "two")
    res = _restore_sr(lr_path, "--scale", scale, "--out", "o")
    said = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    assert "runs/two" not in said
    if model is None:
        assert f"{side} px face: upscaled with the background" in said
    else:
        assert f"{side} px face: {model}" in said
    assert np.asarray(Image.open(tmp_path / "o" / f"face{side}_restored.png")).shape == (side * scale, side * scale, 3)