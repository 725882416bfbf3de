import numpy as np
import PIL.Image
import pytest
import torch

from hivae import HierarchicalLatent
from hivae.data import MovingShapes
from pipelines import HiVAEEditPipeline, HiVAEInterpolationPipeline, HiVAEVideoPipeline, interpolate_latents, slerp

PROMPT = "a red circle moving left"


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("output_type", ["np", "pt", "pil", "latent"])
def test_output_types(tiny_pipeline, output_type):
    frames = tiny_pipeline(
        [PROMPT, "a blue square moving up"], num_inference_steps=2, output_type=output_type, generator=_g()
    ).frames
    if output_type == "np":
        assert (
            frames.shape == (2, 8, 16, 16, 3) and frames.dtype == np.float32 and 0 <= frames.min() <= frames.max() <= 1
        )
    elif output_type == "pt":
        assert frames.shape == (2, 8, 3, 16, 16)
    elif output_type == "pil":
        assert len(frames) == 2 and len(frames[0]) == 8 and isinstance(frames[0][0], PIL.Image.Image)
    else:
        assert isinstance(frames, HierarchicalLatent) and frames.structure.shape == (2, 4, 2, 4, 4)


def test_class_labels_negative_prompt_and_num_videos(tiny_pipeline):
    out = tiny_pipeline(class_labels=[3, 4], num_inference_steps=2, num_videos_per_prompt=2, output_type="pt")
    assert out.frames.shape == (4, 8, 3, 16, 16)
    out = tiny_pipeline(PROMPT, class_labels=5, negative_prompt="blurry", num_inference_steps=2, output_type="pt")
    assert out.frames.shape == (1, 8, 3, 16, 16)
    (frames,) = tiny_pipeline(PROMPT, num_inference_steps=2, return_dict=False, guidance_scale=1.0)
    assert frames.shape[0] == 1


def test_determinism_with_generator(tiny_pipeline):
    a = tiny_pipeline(PROMPT, num_inference_steps=2, generator=_g(1)).frames
    b = tiny_pipeline(PROMPT, num_inference_steps=2, generator=_g(1)).frames
    c = tiny_pipeline(PROMPT, num_inference_steps=2, generator=_g(2)).frames
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_latents_argument_and_callback(tiny_pipeline):
    start = tiny_pipeline.prepare_latents(1, _g(3), torch.device("cpu"))
    seen = []

    def callback(pipe, step, t, tensors):
        seen.append(step)
        return {}

    a = tiny_pipeline(PROMPT, num_inference_steps=3, latents=start, callback_on_step_end=callback).frames
    b = tiny_pipeline(PROMPT, num_inference_steps=3, generator=_g(3)).frames
    assert np.array_equal(a, b) and seen == [0, 1, 2]
    with pytest.raises(ValueError, match="`latents` must have shapes"):
        tiny_pipeline(PROMPT, num_inference_steps=2, latents=start.map(lambda x: x[:, :1]))


def test_save_load_roundtrip(tiny_pipeline, tmp_path):
    tiny_pipeline.save_pretrained(tmp_path)
    assert not list(tmp_path.rglob("*.bin")) and list(tmp_path.rglob("*.safetensors"))
    loaded = HiVAEVideoPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    a = tiny_pipeline(PROMPT, num_inference_steps=2, generator=_g()).frames
    b = loaded(PROMPT, num_inference_steps=2, generator=_g()).frames
    assert np.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({}, ValueError, "give `prompt`"),
        ({"prompt": 3}, TypeError, "`prompt` must be a str"),
        ({"prompt": ""}, ValueError, "empty string"),
        ({"prompt": ["a", "b"], "class_labels": [1]}, ValueError, "equal numbers"),
        ({"class_labels": "red"}, TypeError, "`class_labels` must be an int"),
        ({"class_labels": 90}, ValueError, r"must be in \[0, 90\)"),
        ({"prompt": PROMPT, "num_inference_steps": 0}, ValueError, "positive int"),
        ({"prompt": PROMPT, "guidance_scale": -1.0}, ValueError, "guidance_scale"),
        ({"prompt": PROMPT, "output_type": "gif"}, ValueError, "output_type"),
        ({"prompt": PROMPT, "num_videos_per_prompt": 10**6}, ValueError, "exceed the limit"),
        ({"prompt": PROMPT, "latents": torch.zeros(1)}, TypeError, "HierarchicalLatent"),
    ],
)
def test_bad_inputs_raise(tiny_pipeline, kwargs, error, match):
    with pytest.raises(error, match=match):
        tiny_pipeline(**kwargs)


def test_interpolation_endpoints_equal_reconstructions(tiny_pipeline):
    interp = HiVAEInterpolationPipeline.from_pipe(tiny_pipeline)
    data = MovingShapes(2, 8, 16, seed=4)
    a, b = data[0]["video"][None], data[1]["video"][None]
    out = interp(video_a=a, video_b=b, num_steps=4, part="both", method="slerp", output_type="pt")
    with torch.no_grad():
        rec_a, rec_b = (((tiny_pipeline.vae(v).sample.clamp(-1, 1) + 1) / 2).permute(0, 2, 1, 3, 4) for v in (a, b))
    assert len(out.frames) == 4 and out.grid.shape == (1, 3, 8, 16, 4 * 16)
    assert torch.allclose(out.frames[0], rec_a, atol=1e-4) and torch.allclose(out.frames[-1], rec_b, atol=1e-4)
    part = interp(video_a=a, video_b=b, num_steps=3, part="structure", output_type="pt")
    assert torch.equal(part.latents[-1].dynamics, part.latents[0].dynamics)  # dynamics stays A's
    prompts = interp(
        prompt_a=PROMPT,
        prompt_b="a blue square moving up",
        num_steps=3,
        num_inference_steps=2,
        generator=_g(),
        output_type="np",
    )
    assert prompts.frames[0].shape == (1, 8, 16, 16, 3)
    with pytest.raises(ValueError, match="exactly one complete pair"):
        interp(video_a=a, prompt_b=PROMPT)


def test_slerp_and_lerp_helpers():
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    mid = slerp(a, b, 0.5)
    assert torch.allclose(mid.norm(), torch.tensor(1.0)) and torch.allclose(mid[0, 0], mid[0, 1])
    z = HierarchicalLatent(torch.zeros(1, 1, 1, 1, 1), torch.zeros(1, 1, 2, 1, 1))
    with pytest.raises(ValueError, match="part must be"):
        interpolate_latents(z, z, part="all")
    with pytest.raises(ValueError, match="num_steps"):
        interpolate_latents(z, z, num_steps=1)


def test_motion_transfer_keeps_structure_of_a_and_dynamics_of_b(tiny_pipeline):
    edit = HiVAEEditPipeline.from_pipe(tiny_pipeline)
    data = MovingShapes(2, 8, 16, seed=5)
    a, b = data[0]["video"][None], data[1]["video"][None]
    out = edit.motion_transfer(a, b, output_type="pt")
    assert torch.equal(out.latents.structure, edit.encode_video(a).structure)
    assert torch.equal(out.latents.dynamics, edit.encode_video(b).dynamics)
    assert out.frames.shape == (1, 8, 3, 16, 16)


def test_prompt_edit_validates_strength(tiny_pipeline):
    edit = HiVAEEditPipeline.from_pipe(tiny_pipeline)
    video = MovingShapes(1, 8, 16, seed=6)[0]["video"][None]
    with pytest.raises(ValueError, match="strength must be in"):
        edit(video, prompt=PROMPT, strength=0.0)
    with pytest.raises(ValueError, match="2 prompts / class labels for 1 videos"):
        edit(video, prompt=[PROMPT, PROMPT])
