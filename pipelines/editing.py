"""Editing in HiVAE latent space: motion transfer, and prompt-guided regeneration of one latent part.

- Motion transfer: the structure latent of video A (what is there) with the dynamics latent of video B (how it
  moves), decoded.
- Prompt-guided edit: the chosen part is re-noised to `strength` (a flow-matching sigma in [0, 1]) and denoised under
  the new prompt, while the other part is held at the source's value (re-noised to the current sigma at every step so
  the transformer sees a consistent state, and restored exactly at the end).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

from hivae import HierarchicalLatent

from .pipeline_hivae_video import OUTPUT_TYPES, HiVAEVideoPipeline, _as_list


@dataclass
class HiVAEEditOutput(BaseOutput):
    """frames: edited videos in `output_type` ("latent": tokenizer-space latents, for `vae.decode`);
    latents: the result's normalised (DiT-space) latents."""

    frames: object
    latents: HierarchicalLatent


class HiVAEEditPipeline(HiVAEVideoPipeline):
    """Motion transfer and prompt-guided editing of videos.

    edit = HiVAEEditPipeline.from_pretrained("checkpoints/hivae-shapes-64")
    out = edit.motion_transfer(video_a, video_b)            # A's content moving like B
    out = edit(video, prompt="a red circle moving right", part="dynamics", strength=0.8)
    """

    @torch.no_grad()
    def motion_transfer(
        self,
        video_a: torch.Tensor,
        video_b: torch.Tensor,
        output_type: str = "np",
        return_dict: bool = True,
        decoder_steps: int | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
    ) -> HiVAEEditOutput | tuple:
        """Structure latent of `video_a` + dynamics latent of `video_b` (both (B, 3, T, H, W) in [-1, 1])."""
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"`output_type` must be one of {OUTPUT_TYPES}, got {output_type!r}")
        a, b = self.encode_video(video_a), self.encode_video(video_b)
        if a.batch_size != b.batch_size:
            raise ValueError(f"video_a and video_b need the same batch size, got {a.batch_size} and {b.batch_size}")
        self.check_generator(generator, a.batch_size)
        latent = a.replace(dynamics=b.dynamics)
        frames = self.postprocess(latent, output_type, decoder_steps, generator)
        self.maybe_free_model_hooks()
        out = HiVAEEditOutput(frames=frames, latents=latent)
        return out if return_dict else out.to_tuple()

    def edit_timesteps(self, num_inference_steps: int, strength: float, device) -> torch.Tensor:
        """The scheduler's timesteps from sigma <= `strength` on (img2img-style truncation, whole solver steps)."""
        schedule = self.retrieve_timesteps(num_inference_steps, device)
        order = self.scheduler.order
        sigmas = schedule[::order] / self.scheduler.config.num_train_timesteps
        start = int((sigmas > strength + 1e-6).sum()) * order
        if start >= len(schedule):
            raise ValueError(f"strength={strength} leaves no denoising step with {num_inference_steps} steps")
        self.scheduler.set_begin_index(start)
        return schedule[start:]

    @torch.no_grad()
    def __call__(
        self,
        video: torch.Tensor | None = None,
        prompt: str | list[str] | None = None,
        part: Literal["structure", "dynamics"] = "dynamics",
        strength: float = 0.8,
        class_labels: int | list[int] | None = None,
        negative_prompt: str | list[str] | None = None,
        num_inference_steps: int = 20,
        guidance_scale: float = 3.0,
        num_videos_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: HierarchicalLatent | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end: Callable | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
        decoder_steps: int | None = None,
    ) -> HiVAEEditOutput | tuple:
        """Regenerate `part` of `video` (or of normalised `latents`) under `prompt`/`class_labels`, keeping the other.

        strength: how much of the part is re-noised (0 keeps it, 1 regenerates it from pure noise).
        num_videos_per_prompt: edits per source video (different noise). Other arguments as in the video pipeline.
        """
        # 1. check inputs
        if part not in ("structure", "dynamics"):
            raise ValueError(f"part must be 'structure' or 'dynamics', got {part!r}")
        if not isinstance(strength, (int, float)) or not 0.0 < strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], got {strength!r}")
        if (video is None) == (latents is None):
            raise ValueError("give exactly one of `video` (B, 3, T, H, W) or normalised `latents`")
        source = self.encode_video(video) if video is not None else latents
        videos = source.batch_size
        prompt = [prompt] * videos if isinstance(prompt, str) else prompt  # one prompt for every video
        class_labels = [class_labels] * videos if isinstance(class_labels, int) else class_labels
        self.check_inputs(
            prompt,
            class_labels,
            negative_prompt,
            num_inference_steps,
            guidance_scale,
            num_videos_per_prompt,
            None,
            output_type,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
        )
        self._guidance_scale, self._interrupt = guidance_scale, False
        device = self._execution_device
        source = source.to(device=device, dtype=self.transformer.dtype)
        conditions = self.num_conditions(prompt, None, class_labels)
        if conditions != videos:
            raise ValueError(f"got {conditions} prompts / class labels for {videos} videos; give one per video")
        source = source.map(lambda x: x.repeat_interleave(num_videos_per_prompt, 0))
        batch = source.batch_size
        self.check_generator(generator, batch)

        # 2. encode the conditions
        states, mask, neg_states, neg_mask = self.encode_prompt(
            _as_list(prompt), device, num_videos_per_prompt, self.do_classifier_free_guidance, negative_prompt
        )
        tensors = {
            "prompt_embeds": states,
            "prompt_attention_mask": mask,
            "negative_prompt_embeds": neg_states,
            "negative_prompt_attention_mask": neg_mask,
        }
        labels = self.prepare_class_labels(class_labels, batch, num_videos_per_prompt, device)

        # 3. timesteps from sigma = strength down to 0
        schedule = self.edit_timesteps(num_inference_steps, strength, device)
        sigma0 = schedule[0] / self.scheduler.config.num_train_timesteps

        # 4. the source re-noised to sigma0 (the edited part starts there; the kept part follows its own path)
        noise = source.map(lambda x: randn_tensor(x.shape, generator=generator, device=device, dtype=x.dtype))
        start = source.zip_map(noise, lambda x, n: (1 - sigma0) * x + sigma0 * n)
        keep = "dynamics" if part == "structure" else "structure"

        # 5. denoising loop, the kept part held on the source's path
        denoised = self.denoise(
            start,
            schedule,
            labels,
            tensors,
            generator,
            callback_on_step_end,
            callback_on_step_end_tensor_inputs,
            hold=(keep, source, noise),
        )
        result = source.replace(**{part: getattr(denoised, part)})

        # 6. decode
        frames = self.postprocess(result, output_type, decoder_steps, generator)
        self.maybe_free_model_hooks()
        out = HiVAEEditOutput(frames=frames, latents=result)
        return out if return_dict else out.to_tuple()
