"""Loading and running in bfloat16 (and float16, with tiny models: float16 is slow on CPU)."""

import pytest
import torch

from gen.dit import HiVAEDiT
from hivae import HiVAE
from hivae.data import MovingShapes
from pipelines import HiVAEEditPipeline, HiVAEInterpolationPipeline, HiVAEVideoPipeline

from .conftest import TINY_HIVAE

DTYPES = [torch.bfloat16, torch.float16]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("decoder_type", ["deterministic", "diffusion"])
def test_tokenizer_loads_and_runs_in_low_precision(tmp_path, dtype, decoder_type):
    torch.manual_seed(0)
    model = HiVAE(**TINY_HIVAE, decoder_type=decoder_type, diffusion_channels=8).eval()
    model.save_pretrained(tmp_path)
    low = HiVAE.from_pretrained(tmp_path, torch_dtype=dtype).eval()
    video = torch.stack([MovingShapes(2, 8, 16, seed=1)[i]["video"] for i in range(2)])
    with torch.no_grad():
        reference = model.decode(model.encode(video).latent_dist.mode(), num_inference_steps=2).sample
        latent = low.encode(video.to(dtype)).latent_dist.mode()
        out = low.decode(latent, num_inference_steps=2).sample
    assert latent.structure.dtype == dtype and out.dtype == dtype
    assert (out.float() - reference).abs().mean() < 0.05  # the same model, in lower precision


@pytest.mark.parametrize("dtype", DTYPES)
def test_dit_runs_in_low_precision(tiny_hivae, tmp_path, dtype):
    torch.manual_seed(0)
    dit = HiVAEDiT.from_tokenizer(tiny_hivae, hidden_size=32, depth=1, heads=2, num_classes=4, text_dim=16).eval()
    dit.save_pretrained(tmp_path)
    low = HiVAEDiT.from_pretrained(tmp_path, torch_dtype=dtype).eval()
    latent = tiny_hivae.encode(torch.zeros(1, 3, 8, 16, 16)).latent_dist.mode().map(torch.randn_like)
    with torch.no_grad():
        out = low(latent.to(dtype=dtype), torch.tensor([500.0]), torch.tensor([1]), torch.randn(1, 3, 16, dtype=dtype))
    assert out.sample.structure.dtype == dtype and torch.isfinite(out.sample.structure.float()).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_pipelines_load_and_run_in_low_precision(tiny_pipeline, tmp_path, dtype):
    tiny_pipeline.save_pretrained(tmp_path)
    pipe = HiVAEVideoPipeline.from_pretrained(tmp_path, torch_dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.vae.dtype == pipe.transformer.dtype == pipe.text_encoder.dtype == dtype
    frames = pipe("a red circle moving left", num_inference_steps=2, output_type="pt").frames
    assert frames.shape == (1, 8, 3, 16, 16) and torch.isfinite(frames).all()
    video = MovingShapes(1, 8, 16, seed=6)[0]["video"][None]
    edit = HiVAEEditPipeline.from_pipe(pipe)
    assert edit(video, prompt="a blue square moving up", num_inference_steps=2, output_type="np").frames.shape[0] == 1
    assert edit.motion_transfer(video, video.flip(2), output_type="pil").frames[0][0].size == (16, 16)
    interp = HiVAEInterpolationPipeline.from_pipe(pipe)
    assert len(interp(video_a=video, video_b=video.flip(2), num_steps=2).frames) == 2
