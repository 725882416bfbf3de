import pytest
import torch

from hivae import HiVAE
from hivae.data import MovingShapes

from .conftest import TINY_HIVAE

DIFFUSION = TINY_HIVAE | {"decoder_type": "diffusion", "diffusion_channels": 8, "diffusion_steps": 2}


@pytest.fixture
def model():
    """A diffusion-decoder HiVAE whose (normally zero-initialised) output layer is random, so noise matters."""
    torch.manual_seed(0)
    model = HiVAE(**DIFFUSION).eval()
    torch.nn.init.normal_(model.diffusion_decoder.conv_out[-1].weight, std=0.05)
    return model


def _video(b=2):
    return torch.stack([MovingShapes(b, 8, 16, seed=9)[i]["video"] for i in range(b)])


@pytest.mark.parametrize("steps", [0, 1, 2, 4, 50])
def test_decode_shapes_for_any_step_count(model, steps):
    latent = model.encode(_video()).latent_dist.mode()
    with torch.no_grad():
        assert model.decode(latent, num_inference_steps=steps).sample.shape == (2, 3, 8, 16, 16)


def test_determinism_with_generator_and_deterministic_path(model):
    latent = model.encode(_video()).latent_dist.mode()
    with torch.no_grad():
        a = model.decode(latent, generator=torch.Generator().manual_seed(0)).sample
        b = model.decode(latent, generator=torch.Generator().manual_seed(0)).sample
        c = model.decode(latent, generator=torch.Generator().manual_seed(1)).sample
        plain = model.decode(latent, num_inference_steps=0).sample
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.allclose(plain, model.decoder(model.fusion(latent)))
    with pytest.raises(ValueError, match="positive int"):
        model.diffusion_decoder.sample(plain, model.fusion(latent), num_steps=0)


@pytest.mark.parametrize("steps", [1, 3, 4])
def test_untrained_diffusion_decoder_returns_the_deterministic_decode(steps):
    """x-prediction with a zero output layer: a fresh decoder predicts residual 0 and lands on x_det."""
    torch.manual_seed(0)
    fresh = HiVAE(**DIFFUSION).eval()
    latent = fresh.encode(_video()).latent_dist.mode()
    with torch.no_grad():
        refined = fresh.decode(latent, num_inference_steps=steps, generator=torch.Generator().manual_seed(3)).sample
        plain = fresh.decode(latent, num_inference_steps=0).sample
    torch.testing.assert_close(refined, plain, atol=1e-6, rtol=0)


def test_save_load_roundtrip(model, tmp_path):
    model.save_pretrained(tmp_path)
    loaded = HiVAE.from_pretrained(tmp_path).eval()
    assert loaded.config.decoder_type == "diffusion"
    x = _video()
    with torch.no_grad():
        a = model(x, generator=torch.Generator().manual_seed(0)).sample
        b = loaded(x, generator=torch.Generator().manual_seed(0)).sample
    assert torch.equal(a, b)


def test_tiny_stage2_training_lowers_the_diffusion_loss(model):
    model.train()
    model.requires_grad_(False)
    model.diffusion_decoder.requires_grad_(True)
    optimizer = torch.optim.AdamW(model.diffusion_decoder.parameters(), lr=3e-3)
    x = _video(4)
    losses = []
    for step in range(40):
        torch.manual_seed(step % 4)
        out = model(x)
        optimizer.zero_grad()
        out.diffusion_loss.backward()
        optimizer.step()
        losses.append(out.diffusion_loss.item())
    assert sum(losses[-8:]) / 8 < 0.8 * sum(losses[:8]) / 8
    assert all(p.grad is None for p in model.encoder.parameters())


def test_stage2_script_freezes_the_autoencoder(tmp_path, tiny_hivae):
    from safetensors.torch import load_file

    from gen.train_tokenizer import main as train_tokenizer

    stats = {"structure_shift": 0.25, "structure_scale": 1.5, "dynamics_shift": -0.125, "dynamics_scale": 0.75}
    tiny_hivae.register_to_config(**stats)
    tiny_hivae.save_pretrained(tmp_path / "stage1")
    overrides = [f"model.{k}={list(v) if isinstance(v, tuple) else v}" for k, v in DIFFUSION.items()]
    final = train_tokenizer(
        [
            "--config",
            "configs/tokenizer/shapes-64-diffusion.yaml",
            f"init_from={tmp_path / 'stage1'}",
            f"train.output_dir={tmp_path / 'run'}",
            *overrides,
            "data.size=16",
            "data.num_frames=8",
            "data.num_samples=16",
            "train.batch_size=4",
            "train.max_steps=2",
            "train.mixed_precision=no",  # one accelerate state per process: keep the suite on fp32
            "train.sample_every=0",
            "eval_clips=4",
        ]
    )
    before = load_file(tmp_path / "stage1" / "diffusion_pytorch_model.safetensors")
    after = load_file(final / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before)  # encoder and deterministic decoder frozen
    assert any(k.startswith("diffusion_decoder.") for k in after)
    saved = HiVAE.load_config(final)
    assert {k: saved[k] for k in stats} == stats  # DiTs trained on the stage-1 latents stay valid


def test_pipeline_accepts_a_diffusion_decoder(tiny_pipeline, model):
    from pipelines import HiVAEVideoPipeline

    pipe = HiVAEVideoPipeline.from_pipe(tiny_pipeline, vae=model)
    pipe.set_progress_bar_config(disable=True)
    a = pipe("a red circle moving left", num_inference_steps=2, generator=torch.Generator().manual_seed(0)).frames
    b = pipe("a red circle moving left", num_inference_steps=2, generator=torch.Generator().manual_seed(0)).frames
    c = pipe(
        "a red circle moving left", num_inference_steps=2, generator=torch.Generator().manual_seed(0), decoder_steps=0
    ).frames
    assert a.shape == (1, 8, 16, 16, 3) and (a == b).all() and not (a == c).all()


def test_shortcut_recursion_bottoms_out_at_the_flow_head():
    """Step sizes the shortcut objective trains are passed on; finer ones become 0 (the flow-matching head)."""
    from hivae.diffusion_decoder import SHORTCUT_LEVELS, step_input

    sizes = torch.tensor([1.0, 0.5, 2.0**-SHORTCUT_LEVELS, 2.0 ** -(SHORTCUT_LEVELS + 1), 0.0])
    assert step_input(sizes).tolist() == [1.0, 0.5, 2.0**-SHORTCUT_LEVELS, 0.0, 0.0]


def test_joint_training_updates_encoder_and_diffusion_decoder(tmp_path):
    """Without freeze_autoencoder the same script trains everything: reconstruction + diffusion losses."""
    from safetensors.torch import load_file

    from gen.train_tokenizer import main as train_tokenizer

    overrides = [f"model.{k}={list(v) if isinstance(v, tuple) else v}" for k, v in DIFFUSION.items()]
    common = [
        "--config",
        "configs/tokenizer/shapes-32.yaml",
        *overrides,
        "data.size=16",
        "data.num_frames=8",
        "data.num_samples=16",
        "train.batch_size=4",
        "train.sample_every=0",
        "train.ema_decay=0",
        "eval_clips=4",
    ]
    before = load_file(
        train_tokenizer([*common, f"train.output_dir={tmp_path / 'a'}", "train.max_steps=1"])
        / "diffusion_pytorch_model.safetensors"
    )
    after = load_file(
        train_tokenizer([*common, f"train.output_dir={tmp_path / 'b'}", "train.max_steps=3"])
        / "diffusion_pytorch_model.safetensors"
    )
    for prefix in ("encoder.", "diffusion_decoder."):
        keys = [k for k in after if k.startswith(prefix)]
        assert keys and any(not torch.equal(before[k], after[k]) for k in keys), prefix
