"""diffusers conventions of the pipelines: schedulers, the flow direction, callbacks, generators, offload, embeddings."""

import numpy as np
import pytest
import torch
from diffusers import (
    DDPMScheduler,
    FlowMatchEulerDiscreteScheduler,
    FlowMatchHeunDiscreteScheduler,
    FlowMatchLCMScheduler,
)

from gen.dit import HiVAEDiT, HiVAEDiTOutput
from hivae import HiVAE
from hivae.data import MovingShapes
from pipelines import HiVAEEditPipeline, HiVAEInterpolationPipeline, HiVAEVideoPipeline

from .conftest import TINY_HIVAE

PROMPT = "a red circle moving left"

SCHEDULERS = {
    "euler": lambda: FlowMatchEulerDiscreteScheduler(),
    "euler-shift3": lambda: FlowMatchEulerDiscreteScheduler(shift=3.0),
    "euler-dynamic": lambda: FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True),
    "heun": lambda: FlowMatchHeunDiscreteScheduler(),
    "lcm": lambda: FlowMatchLCMScheduler(),
}


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


class ExactVelocityDiT(HiVAEDiT):
    """Returns the exact flow velocity towards a known clean latent x0: v = (x_sigma - x0) / sigma."""

    def set_target(self, target):
        self.target = target

    def forward(self, sample, timestep, *args, return_dict=True, **kwargs):
        sigma = torch.as_tensor(timestep, dtype=torch.float32).reshape(-1, 1, 1, 1, 1) / 1000
        repeat = lambda x0, x: x0.repeat(x.shape[0] // x0.shape[0], 1, 1, 1, 1)  # noqa: E731 (guidance doubles the batch)
        out = sample.zip_map(self.target, lambda x, x0: (x - repeat(x0, x)) / sigma.clamp_min(1e-6))
        return HiVAEDiTOutput(sample=out) if return_dict else (out,)


@pytest.fixture
def exact_pipeline(tiny_pipeline):
    torch.manual_seed(0)
    dit = ExactVelocityDiT(**tiny_pipeline.transformer.config).eval()
    x0 = tiny_pipeline.prepare_latents(2, _g(42), torch.device("cpu"))
    dit.set_target(x0)
    pipe = HiVAEVideoPipeline.from_pipe(tiny_pipeline, transformer=dit)
    pipe.set_progress_bar_config(disable=True)
    return pipe, x0


@pytest.mark.parametrize("name", list(SCHEDULERS))
@pytest.mark.parametrize("steps", [1, 5])
def test_exact_velocity_reaches_x0_with_every_scheduler(exact_pipeline, name, steps):
    """Pins the flow direction and time convention (sigma = t / 1000, x = (1 - sigma) x0 + sigma noise)."""
    pipe, x0 = exact_pipeline
    pipe.scheduler = SCHEDULERS[name]()
    out = pipe(class_labels=[1, 2], num_inference_steps=steps, generator=_g(), output_type="latent").frames
    normalised = pipe.vae.normalize_latent(out)
    torch.testing.assert_close(normalised.structure, x0.structure, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(normalised.dynamics, x0.dynamics, atol=1e-4, rtol=1e-4)
    assert pipe.num_timesteps == steps * pipe.scheduler.order - (pipe.scheduler.order - 1)


def test_custom_sigmas_and_timesteps_pass_through(exact_pipeline):
    pipe, x0 = exact_pipeline
    seen = []
    callback = lambda p, i, t, tensors: seen.append(float(t)) or {}  # noqa: E731
    pipe(class_labels=[1, 2], sigmas=[1.0, 0.6, 0.2], output_type="latent", callback_on_step_end=callback)
    assert seen == pytest.approx([1000.0, 600.0, 200.0])
    seen.clear()
    pipe(class_labels=[1, 2], timesteps=[900.0, 300.0], output_type="latent", callback_on_step_end=callback)
    assert seen == pytest.approx([900.0, 300.0])
    pipe.scheduler = FlowMatchHeunDiscreteScheduler()
    with pytest.raises(ValueError, match="`sigmas=` is not supported by FlowMatchHeunDiscreteScheduler"):
        pipe(class_labels=[1, 2], sigmas=[1.0, 0.5])


def _wake(transformer):
    """Give the zero-initialised (adaLN-Zero) layers weights, so the prediction depends on its inputs."""
    layers = [b.modulation[-1] for b in transformer.blocks]
    layers += [transformer.structure_out.linear, transformer.dynamics_out.linear]
    for layer in layers:
        torch.nn.init.normal_(layer.weight, std=0.1)


def test_dynamic_shifting_from_config_gets_mu(tiny_pipeline):
    _wake(tiny_pipeline.transformer)
    plain = tiny_pipeline(PROMPT, num_inference_steps=3, generator=_g(), output_type="pt").frames
    tiny_pipeline.scheduler = FlowMatchEulerDiscreteScheduler.from_config(
        tiny_pipeline.scheduler.config, use_dynamic_shifting=True
    )
    shifted = tiny_pipeline(PROMPT, num_inference_steps=3, generator=_g(), output_type="pt").frames
    assert shifted.shape == plain.shape and not torch.equal(shifted, plain)
    expected_mu = 0.5 + (1.15 - 0.5) / (4096 - 256) * (tiny_pipeline.transformer.num_tokens() - 256)
    assert tiny_pipeline.dynamic_shift_mu() == pytest.approx(expected_mu)


def test_other_schedulers_get_a_clear_error(tiny_pipeline):
    tiny_pipeline.scheduler = DDPMScheduler()
    with pytest.raises(TypeError, match="DDPMScheduler is not supported.*FlowMatchEulerDiscreteScheduler"):
        tiny_pipeline(PROMPT, num_inference_steps=2)


@pytest.mark.parametrize("scheduler", ["euler", "heun", "lcm"])
def test_heun_and_lcm_run_in_every_pipeline(tiny_pipeline, scheduler):
    tiny_pipeline.scheduler = SCHEDULERS[scheduler]()
    video = MovingShapes(1, 8, 16, seed=6)[0]["video"][None]
    assert tiny_pipeline(PROMPT, num_inference_steps=2, output_type="pt").frames.shape == (1, 8, 3, 16, 16)
    edit = HiVAEEditPipeline.from_pipe(tiny_pipeline)
    assert edit(video, prompt=PROMPT, strength=0.7, num_inference_steps=4, output_type="pt").frames.shape[0] == 1
    interp = HiVAEInterpolationPipeline.from_pipe(tiny_pipeline)
    out = interp(prompt_a=PROMPT, prompt_b="a blue square moving up", num_steps=2, num_inference_steps=2)
    assert len(out.frames) == 2


def test_callback_tensor_inputs_interrupt_and_properties(tiny_pipeline):
    seen = {}

    def callback(pipe, step, t, tensors):
        seen[step] = sorted(tensors)
        assert pipe.guidance_scale == 3.0 and pipe.do_classifier_free_guidance
        if step == 1:
            pipe._interrupt = True
        return {"prompt_embeds": tensors["prompt_embeds"] * 0}

    tiny_pipeline(
        PROMPT,
        negative_prompt="blurry",
        num_inference_steps=4,
        guidance_scale=3.0,
        callback_on_step_end=callback,
        callback_on_step_end_tensor_inputs=["latents", "prompt_embeds", "negative_prompt_embeds"],
    )
    assert seen == {0: ["latents", "negative_prompt_embeds", "prompt_embeds"], 1: seen[0]}  # interrupted after 1
    assert tiny_pipeline.num_timesteps == 4 and tiny_pipeline.interrupt
    with pytest.raises(ValueError, match="callback_on_step_end_tensor_inputs"):
        tiny_pipeline(PROMPT, callback_on_step_end=callback, callback_on_step_end_tensor_inputs=["noise"])


def test_callback_replacing_prompt_embeds_changes_the_result(tiny_pipeline):
    _wake(tiny_pipeline.transformer)
    run = lambda cb: (
        tiny_pipeline(  # noqa: E731
            PROMPT,
            num_inference_steps=3,
            generator=_g(),
            output_type="pt",
            callback_on_step_end=cb,
            callback_on_step_end_tensor_inputs=["prompt_embeds"],
        ).frames
    )
    keep = run(lambda p, i, t, tensors: {})
    zeroed = run(lambda p, i, t, tensors: {"prompt_embeds": tensors["prompt_embeds"] * 0})
    assert not torch.allclose(keep, zeroed)


def test_prompt_embeds_equal_prompts(tiny_pipeline):
    states, mask, _, _ = tiny_pipeline.encode_prompt([PROMPT, "a blue square moving up"])
    a = tiny_pipeline([PROMPT, "a blue square moving up"], num_inference_steps=2, generator=_g(), output_type="pt")
    b = tiny_pipeline(
        prompt_embeds=states, prompt_attention_mask=mask, num_inference_steps=2, generator=_g(), output_type="pt"
    )
    torch.testing.assert_close(a.frames, b.frames)
    neg, neg_mask, _, _ = tiny_pipeline.encode_prompt(["blurry", "blurry"])
    c = tiny_pipeline(
        [PROMPT, "a blue square moving up"],
        negative_prompt="blurry",
        num_inference_steps=2,
        generator=_g(),
        output_type="pt",
    )
    d = tiny_pipeline(
        prompt_embeds=states,
        prompt_attention_mask=mask,
        negative_prompt_embeds=neg,
        negative_prompt_attention_mask=neg_mask,
        num_inference_steps=2,
        generator=_g(),
        output_type="pt",
    )
    torch.testing.assert_close(c.frames, d.frames)
    with pytest.raises(ValueError, match="not both"):
        tiny_pipeline(PROMPT, prompt_embeds=states)


@pytest.fixture
def diffusion_pipeline(tiny_pipeline):
    torch.manual_seed(1)
    vae = HiVAE(**TINY_HIVAE, decoder_type="diffusion", diffusion_channels=8).eval()
    torch.nn.init.normal_(vae.diffusion_decoder.conv_out[-1].weight, std=0.05)  # its noise shows in the output
    pipe = HiVAEVideoPipeline.from_pipe(tiny_pipeline, vae=vae)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("scheduler", ["euler", "lcm"])
def test_a_list_of_generators_holds_end_to_end(diffusion_pipeline, scheduler):
    """Video i of a batch equals a call for it alone with generator i: DiT noise, scheduler noise and decoder noise."""
    diffusion_pipeline.scheduler = SCHEDULERS[scheduler]()
    prompts = [PROMPT, "a blue square moving up", "a green triangle moving right"]
    batch = diffusion_pipeline(
        prompts, num_inference_steps=3, decoder_steps=2, generator=[_g(s) for s in (5, 6, 7)], output_type="pt"
    ).frames
    for i, seed in enumerate((5, 6, 7)):
        alone = diffusion_pipeline(
            prompts[i], num_inference_steps=3, decoder_steps=2, generator=_g(seed), output_type="pt"
        ).frames
        torch.testing.assert_close(batch[i], alone[0], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="2 generators for 3 videos"):
        diffusion_pipeline(prompts, generator=[_g(), _g()])


def test_output_type_latent_decodes_with_vae_decode_in_every_pipeline(tiny_pipeline):
    video = MovingShapes(1, 8, 16, seed=6)[0]["video"][None]
    gen = tiny_pipeline(PROMPT, num_inference_steps=2, generator=_g(), output_type="latent").frames
    pt = tiny_pipeline(PROMPT, num_inference_steps=2, generator=_g(), output_type="pt").frames
    decoded = tiny_pipeline.vae.decode(gen).sample
    torch.testing.assert_close(((decoded.clamp(-1, 1) + 1) / 2).permute(0, 2, 1, 3, 4), pt, atol=1e-5, rtol=0)
    edit = HiVAEEditPipeline.from_pipe(tiny_pipeline)
    for run in (
        lambda kind: edit(video, prompt=PROMPT, num_inference_steps=3, generator=_g(), output_type=kind).frames,
        lambda kind: edit.motion_transfer(video, video.flip(2), output_type=kind).frames,
    ):
        latent, frames = run("latent"), run("pt")
        torch.testing.assert_close(
            ((tiny_pipeline.vae.decode(latent).sample.clamp(-1, 1) + 1) / 2).permute(0, 2, 1, 3, 4),
            frames,
            atol=1e-5,
            rtol=0,
        )
    interp = HiVAEInterpolationPipeline.from_pipe(tiny_pipeline)
    latents = interp(video_a=video, video_b=video.flip(2), num_steps=3, output_type="latent").frames
    frames = interp(video_a=video, video_b=video.flip(2), num_steps=3, output_type="pt").frames
    for z, f in zip(latents, frames):
        torch.testing.assert_close(
            ((tiny_pipeline.vae.decode(z).sample.clamp(-1, 1) + 1) / 2).permute(0, 2, 1, 3, 4), f, atol=1e-5, rtol=0
        )
    for bad in (
        lambda: edit(video, prompt=PROMPT, output_type="gif"),
        lambda: edit.motion_transfer(video, video, output_type="gif"),
        lambda: interp(video_a=video, video_b=video, output_type="gif"),
    ):
        with pytest.raises(ValueError, match="output_type"):
            bad()


def test_edit_and_interpolation_take_negative_prompt_num_videos_and_callbacks(tiny_pipeline):
    video = torch.stack([MovingShapes(2, 8, 16, seed=6)[i]["video"] for i in range(2)])
    edit = HiVAEEditPipeline.from_pipe(tiny_pipeline)
    steps = []
    out = edit(
        video,
        prompt=PROMPT,
        negative_prompt="blurry",
        num_videos_per_prompt=2,
        num_inference_steps=4,
        strength=1.0,
        generator=_g(),
        output_type="pt",
        callback_on_step_end=lambda p, i, t, k: steps.append(i) or {},
    )
    assert out.frames.shape == (4, 8, 3, 16, 16) and steps == [0, 1, 2, 3]
    assert not torch.equal(out.frames[0], out.frames[1])  # two edits of video 0, different noise
    interp = HiVAEInterpolationPipeline.from_pipe(tiny_pipeline)
    steps.clear()
    out = interp(
        prompt_a=PROMPT,
        prompt_b="a blue square moving up",
        negative_prompt="blurry",
        num_steps=3,
        num_videos_per_prompt=2,
        num_inference_steps=2,
        output_type="np",
        callback_on_step_end=lambda p, i, t, k: steps.append(i) or {},
    )
    assert out.frames[0].shape == (2, 8, 16, 16, 3) and steps == [0, 1, 0, 1]
    with pytest.raises(ValueError, match="apply to prompt_a/prompt_b only"):
        interp(video_a=video, video_b=video, num_videos_per_prompt=2)


def test_model_cpu_offload_runs_every_component_through_its_hook(tiny_pipeline):
    expected = tiny_pipeline(PROMPT, num_inference_steps=2, generator=_g(), output_type="pt").frames
    tiny_pipeline.enable_model_cpu_offload(device="cpu")
    calls = []

    def spy():
        for name in ("vae", "transformer"):
            hook = getattr(tiny_pipeline, name)._hf_hook
            original = hook.pre_forward
            hook.pre_forward = lambda module, *a, _o=original, _n=name, **k: calls.append(_n) or _o(module, *a, **k)

    spy()
    video = MovingShapes(1, 8, 16, seed=6)[0]["video"][None]
    HiVAEEditPipeline.from_pipe(tiny_pipeline).encode_video(video)
    assert calls == ["vae"]  # vae.encode goes through the hook, as in diffusers' own autoencoders
    calls.clear()
    out = tiny_pipeline(PROMPT, num_inference_steps=2, generator=_g(), output_type="pt").frames
    torch.testing.assert_close(out, expected)
    assert calls[-1] == "vae" and "transformer" in calls  # ... and so does vae.decode


def test_video_processor_output_types_agree(tiny_pipeline):
    run = lambda kind: tiny_pipeline(PROMPT, num_inference_steps=2, generator=_g(), output_type=kind).frames  # noqa
    np_frames, pt_frames, pil_frames = run("np"), run("pt"), run("pil")
    assert np.allclose(np_frames, pt_frames.permute(0, 1, 3, 4, 2).numpy(), atol=1e-6)
    assert np.abs(np.asarray(pil_frames[0][3]) / 255.0 - np_frames[0, 3]).max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize("part", ["structure", "dynamics"])
@pytest.mark.parametrize("strength", [0.5, 1.0])
def test_prompt_edit_regenerates_one_part_and_decodes_it_with_the_other(exact_pipeline, part, strength):
    """With a DiT that flows exactly to a target, the edited part becomes the target's, the other stays the
    source's, and the frames are the decode of that combination."""
    pipe, x0 = exact_pipeline
    target = x0[:1]
    pipe.transformer.set_target(target)
    edit = HiVAEEditPipeline.from_pipe(pipe)
    video = MovingShapes(1, 8, 16, seed=6)[0]["video"][None]
    source = edit.encode_video(video)
    out = edit(
        video, prompt=PROMPT, part=part, strength=strength, num_inference_steps=5, generator=_g(), output_type="pt"
    )
    expected = source.replace(**{part: getattr(target, part)})
    torch.testing.assert_close(getattr(out.latents, part), getattr(target, part), atol=1e-4, rtol=1e-4)
    frames = (pipe.vae.decode(pipe.vae.denormalize_latent(expected)).sample.clamp(-1, 1) + 1) / 2
    torch.testing.assert_close(out.frames, frames.permute(0, 2, 1, 3, 4), atol=1e-4, rtol=0)
    untouched = (pipe.vae.decode(pipe.vae.denormalize_latent(source)).sample.clamp(-1, 1) + 1) / 2
    assert (out.frames - untouched.permute(0, 2, 1, 3, 4)).abs().max() > 1e-3  # the edit shows
