import json

import pytest
import torch
from safetensors.torch import load_file

from gen.train_tokenizer import main as train_tokenizer
from hivae import HiVAE
from hivae.config import ConfigError
from hivae.data import MovingShapes, write_video
from hivae.losses import LossConfig, ReconstructionLoss, foreground_mask

from .conftest import TINY_TOKENIZER_OVERRIDES as TINY  # noqa: E402


def _train(tmp_path, *extra):
    return train_tokenizer(
        ["--config", "configs/tokenizer/shapes-32.yaml", f"train.output_dir={tmp_path}", *TINY, *extra]
    )


def test_loss_weights_foreground():
    target = torch.full((1, 3, 2, 8, 8), -1.0)
    target[..., 2:4, 2:4] = 1.0
    mask = foreground_mask(target, 0.15)
    assert mask.sum() == 2 * 4
    loss = ReconstructionLoss(LossConfig(ssim_weight=0.0))
    miss_object = target.clone()
    miss_object[..., 2:4, 2:4] = -1.0
    miss_background = target.clone()
    miss_background[..., 5:7, 5:7] = 1.0
    kl = torch.zeros(1)
    assert loss(miss_object, target, kl)[0] > 2 * loss(miss_background, target, kl)[0]


def test_few_steps_lower_the_loss():
    torch.manual_seed(0)
    from .conftest import TINY_HIVAE

    model = HiVAE(**TINY_HIVAE)
    from hivae.data import MovingShapes

    batch = torch.stack([MovingShapes(4, 8, 16)[i]["video"] for i in range(4)])
    loss_fn = ReconstructionLoss(LossConfig())
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(40):
        out = model(batch, sample_posterior=True)
        loss, _ = loss_fn(out.sample, batch, out.kl)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5


def test_train_script_exports_and_resumes_exactly(tmp_path):
    final = _train(tmp_path / "a", "train.max_steps=4", "train.checkpoint_every=2")
    assert (final / "diffusion_pytorch_model.safetensors").is_file()
    metrics = json.loads((final / "eval.json").read_text())
    assert metrics["compression_ratio"] > 0 and "psnr_background" in metrics
    assert HiVAE.from_pretrained(final).config.structure_scale != 1.0  # latent statistics stored
    assert (tmp_path / "a" / "logs").is_dir()

    # interrupted run: 2 steps, then resume to 4 -> same weights as the uninterrupted run
    _train(tmp_path / "b", "train.max_steps=4", "train.checkpoint_every=3", "train.stop_at_step=2")
    assert [p.name for p in (tmp_path / "b" / "checkpoints").iterdir()] == ["step-0000002"]
    _train(tmp_path / "b", "train.max_steps=4", "train.checkpoint_every=3")
    ckpt_a = load_file(tmp_path / "a" / "checkpoints" / "step-0000004" / "model.safetensors")
    ckpt_b = load_file(tmp_path / "b" / "checkpoints" / "step-0000004" / "model.safetensors")
    assert ckpt_a.keys() == ckpt_b.keys()
    for key in ckpt_a:
        assert torch.allclose(ckpt_a[key], ckpt_b[key], atol=1e-6), key
    assert not list((tmp_path / "b" / "checkpoints").glob(".tmp-*"))


def test_train_script_rejects_bad_config(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'model.widht'"):
        _train(tmp_path, "model.widht=3")
    with pytest.raises(ConfigError, match="train.max_steps: expected int"):
        _train(tmp_path, "train.max_steps=many")


def test_baseline_trains_with_the_same_script(tmp_path):
    final = train_tokenizer(
        [
            "--config",
            "configs/tokenizer/baseline-48x-32.yaml",
            f"train.output_dir={tmp_path}",
            "model.sample_size=16",
            "model.base_channels=8",
            "data.size=16",
            "data.num_samples=16",
            "train.batch_size=4",
            "train.max_steps=2",
            "train.sample_every=0",
            "eval_clips=4",
        ]
    )
    assert json.loads((final / "eval.json").read_text())["compression_ratio"] == pytest.approx(48.0)


def test_train_tokenizer_on_a_videofolder(tmp_path, video_folder):
    final = _train(
        tmp_path / "run",
        "data.source=folder",
        f"data.root={video_folder}",
        "train.max_steps=2",
        "train.batch_size=2",
        "eval_clips=2",
    )
    assert (final / "eval.json").is_file()


def test_lpips_from_user_supplied_weights(tmp_path):
    from safetensors.torch import save_file

    from hivae.lpips import LPIPS, TAP_CHANNELS, VGG16

    with pytest.raises(ValueError, match="needs loss.lpips_weights"):
        ReconstructionLoss(LossConfig(lpips_weight=0.1))
    with pytest.raises(FileNotFoundError, match="LPIPS weights not found"):
        LPIPS(tmp_path / "none.safetensors")
    torch.manual_seed(0)
    features = {}
    channels = 3
    index = 0
    for item in VGG16:  # random VGG16 weights under torchvision's names, positive LPIPS heads
        if item == "M":
            index += 1
            continue
        features[f"features.{index}.weight"] = torch.randn(item, channels, 3, 3) * 0.05
        features[f"features.{index}.bias"] = torch.zeros(item)
        channels, index = item, index + 2
    heads = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate(TAP_CHANNELS)}
    save_file({**features, **heads}, tmp_path / "lpips.safetensors")
    metric = LPIPS(tmp_path / "lpips.safetensors")
    x = torch.rand(2, 3, 2, 32, 32) * 2 - 1
    assert torch.allclose(metric(x, x), torch.zeros(2), atol=1e-6)
    assert (metric(x, x.flip(-1)) > 0).all()
    loss = ReconstructionLoss(LossConfig(lpips_weight=0.5, lpips_weights=str(tmp_path / "lpips.safetensors")))
    _, logs = loss(x.flip(-1), x, torch.zeros(2))
    assert logs["lpips"] > 0


def test_patch_gan_after_warmup_trains(tmp_path):
    final = _train(
        tmp_path, "loss.gan_weight=0.1", "loss.gan_start_step=1", "loss.discriminator_channels=8", "train.max_steps=3"
    )
    assert (final / "eval.json").is_file()


def test_generator_loss_leaves_no_gradient_in_the_discriminator():
    loss_fn = ReconstructionLoss(LossConfig(gan_weight=0.5, gan_start_step=0, discriminator_channels=8))
    target = torch.rand(2, 3, 4, 16, 16) * 2 - 1
    recon = (target + 0.1 * torch.randn_like(target)).requires_grad_(True)
    loss, logs = loss_fn(recon, target, torch.zeros(2))
    loss.backward()
    assert "g_adv" in logs and recon.grad is not None
    assert all(p.grad is None for p in loss_fn.discriminator.parameters())
    assert all(p.requires_grad for p in loss_fn.discriminator.parameters())  # switched back on for its own update


def test_discriminator_accumulates_its_own_gradients():
    """Two micro-batches with accumulation 2 = one update on both (the hinge loss is a mean over equal halves). Plain
    SGD at lr 1, so the update is the accumulated gradient itself (Adam's first step divides near-zero gradients by
    their own size, which turns float rounding into 1e-5 differences)."""
    import copy

    from accelerate import Accelerator

    from gen.train_tokenizer import discriminator_update

    torch.manual_seed(0)
    loss_fn = ReconstructionLoss(LossConfig(gan_weight=0.5, gan_start_step=0, discriminator_channels=8))
    reference = copy.deepcopy(loss_fn.discriminator)
    target = torch.rand(4, 3, 4, 16, 16) * 2 - 1
    recon = target.flip(-1)
    ref_optimizer = torch.optim.SGD(reference.parameters(), lr=1.0)
    ReconstructionLoss.discriminator_loss(loss_fn, recon, target, reference).backward()
    ref_optimizer.step()

    accelerator = Accelerator(gradient_accumulation_steps=2, cpu=True)
    optimizer = torch.optim.SGD(loss_fn.discriminator.parameters(), lr=1.0)
    model = torch.nn.Linear(1, 1)  # accumulate() needs a model; the discriminator follows its micro-batch count
    model, discriminator, optimizer = accelerator.prepare(model, loss_fn.discriminator, optimizer)
    before = [p.detach().clone() for p in discriminator.parameters()]
    for half in (slice(0, 2), slice(2, 4)):
        with accelerator.accumulate(model):
            discriminator_update(accelerator, discriminator, loss_fn, optimizer, recon[half], target[half])
        if half.start == 0:  # first micro-batch: gradients kept, no step yet
            assert all(torch.equal(a, b) for a, b in zip(before, discriminator.parameters()))
    moved = [(theirs - start).abs().max() for theirs, start in zip(reference.parameters(), before)]
    assert max(moved) > 1e-3  # the reference update is far above the tolerance
    for ours, theirs in zip(discriminator.parameters(), reference.parameters()):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


def test_checkpoint_limit_never_deletes_the_new_checkpoint(tmp_path):
    from accelerate import Accelerator

    from gen.training import TrainConfig, checkpoint_dirs, save_checkpoint

    accelerator = Accelerator(cpu=True)
    model = accelerator.prepare(torch.nn.Linear(2, 2))
    config = TrainConfig(output_dir=str(tmp_path), checkpoints_total_limit=2)
    for step in (10, 20, 30):
        save_checkpoint(accelerator, config, step)
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step-0000020", "step-0000030"]
    # a run restarted without resume writes an older step number: it is kept, the oldest other one goes
    save_checkpoint(accelerator, config, 5)
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step-0000005", "step-0000030"]
    save_checkpoint(accelerator, TrainConfig(output_dir=str(tmp_path), checkpoints_total_limit=1), 6)
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step-0000006"]
    save_checkpoint(accelerator, TrainConfig(output_dir=str(tmp_path), checkpoints_total_limit=0), 7)  # 0: keep all
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step-0000006", "step-0000007"]
    del model


def test_non_finite_loss_stops_with_a_clear_error():
    from accelerate import Accelerator

    from gen.training import check_finite_loss

    accelerator = Accelerator(cpu=True)
    check_finite_loss(accelerator, torch.tensor(1.0), 3)
    with pytest.raises(FloatingPointError, match="not finite at step 3"):
        check_finite_loss(accelerator, torch.tensor(float("nan")), 3)


def test_ema_checkpoint_uses_the_models_state_dict_names_and_samples_use_ema_weights(tmp_path):
    final = _train(tmp_path, "train.max_steps=2", "train.checkpoint_every=2", "train.ema_decay=0.5")
    ema = load_file(tmp_path / "checkpoints" / "step-0000002" / "ema.safetensors")
    model = HiVAE.from_pretrained(final)
    assert set(ema) == set(dict(model.named_parameters()))
    saved = load_file(final / "diffusion_pytorch_model.safetensors")
    for name in ema:  # the exported model is the EMA
        torch.testing.assert_close(saved[name], ema[name])


def test_ema_weights_context_swaps_and_restores():
    from diffusers.training_utils import EMAModel

    from gen.training import ema_weights

    layer = torch.nn.Linear(2, 2)
    ema = EMAModel(layer.parameters(), decay=0.9)
    trained = layer.weight.detach().clone()
    for shadow in ema.shadow_params:
        shadow.data.zero_()
    with ema_weights(ema, layer):
        assert torch.equal(layer.weight, torch.zeros(2, 2))
    assert torch.equal(layer.weight, trained)


def test_ssim_loss_term_runs_in_the_training_dtype(monkeypatch):
    import hivae.losses

    seen = []
    original = hivae.losses.ssim
    monkeypatch.setattr(hivae.losses, "ssim", lambda *a, **k: seen.append(k.get("compute_dtype")) or original(*a, **k))
    x = torch.rand(1, 3, 2, 16, 16) * 2 - 1
    ReconstructionLoss(LossConfig())(x, x.flip(-1), torch.zeros(1))
    assert seen == [torch.float32]


def test_folder_eval_clips_never_come_from_training_videos(tmp_path):
    from hivae.data import DataConfig, build_dataset

    data = MovingShapes(12, num_frames=8, size=16, seed=1)
    rows = []
    for index in range(12):
        write_video(tmp_path / f"clip{index:02d}.mp4", data[index]["video"])
        rows.append({"file_name": f"clip{index:02d}.mp4", "text": data[index]["text"]})
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = DataConfig(source="folder", root=str(tmp_path), num_frames=8, size=16, eval_fraction=0.25)
    train, held = build_dataset(config, split="train"), build_dataset(config, split="eval")
    train_files = {r["file_name"] for r in train.rows}
    eval_files = {r["file_name"] for r in held.rows}
    assert eval_files and not train_files & eval_files and len(train_files | eval_files) == 12
    run = _train(
        tmp_path / "run",
        "data.source=folder",
        f"data.root={tmp_path}",
        "data.eval_fraction=0.25",
        "train.max_steps=1",
        "train.batch_size=2",
        "eval_clips=8",
    )
    recorded = json.loads((tmp_path / "run" / "data_split.json").read_text())["eval_files"]
    assert set(recorded) == eval_files
    assert set(json.loads((run / "eval.json").read_text())["eval_files"]) == eval_files
