import json

import pytest
import torch
from safetensors.torch import load_file

from gen.train_tokenizer import main as train_tokenizer
from hivae import HiVAE
from hivae.config import ConfigError
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
