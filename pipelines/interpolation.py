"""Interpolation in HiVAE latent space, per part: between two videos, two prompts or two latents.

Interpolating only `structure` morphs the slow content (shape, colour, layout) while keeping A's motion; only
`dynamics` morphs the fast motion while keeping A's content; `both` morphs everything. Interpolation runs on the
normalised latents (zero mean, unit variance per part), where slerp keeps the norm of Gaussian-like codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
from diffusers.utils import BaseOutput
from einops import rearrange

from hivae import HierarchicalLatent

from .pipeline_hivae_video import OUTPUT_TYPES, HiVAEVideoPipeline

PARTS = ("structure", "dynamics", "both")
METHODS = ("lerp", "slerp")


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    return (1 - t) * a + t * b


def slerp(a: torch.Tensor, b: torch.Tensor, t: float, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation per sample (over all non-batch dims); falls back to lerp for parallel vectors."""
    fa, fb = a.flatten(1).double(), b.flatten(1).double()
    cos = (fa * fb).sum(1) / (fa.norm(dim=1) * fb.norm(dim=1)).clamp_min(eps)
    omega = torch.arccos(cos.clamp(-1 + eps, 1 - eps))
    so = torch.sin(omega)
    wa, wb = torch.sin((1 - t) * omega) / so, torch.sin(t * omega) / so
    parallel = so.abs() < 1e-4
    wa, wb = torch.where(parallel, 1 - t, wa), torch.where(parallel, torch.full_like(wb, t), wb)
    out = wa[:, None] * fa + wb[:, None] * fb
    return out.view_as(a).to(a.dtype)


def interpolate_latents(
    a: HierarchicalLatent,
    b: HierarchicalLatent,
    num_steps: int = 5,
    part: Literal["structure", "dynamics", "both"] = "both",
    method: Literal["lerp", "slerp"] = "slerp",
) -> list[HierarchicalLatent]:
    """`num_steps` latents from a (t=0) to b (t=1) in the chosen part(s); the other part stays a's."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not isinstance(num_steps, int) or num_steps < 2:
        raise ValueError(f"num_steps must be an int >= 2, got {num_steps!r}")
    for name in ("structure", "dynamics"):
        if getattr(a, name).shape != getattr(b, name).shape:
            raise ValueError(
                f"{name} latents differ in shape: {tuple(getattr(a, name).shape)} vs {tuple(getattr(b, name).shape)}"
            )
    mix = lerp if method == "lerp" else slerp
    out = []
    for t in torch.linspace(0, 1, num_steps).tolist():
        structure = mix(a.structure, b.structure, t) if part in ("structure", "both") else a.structure
        dynamics = mix(a.dynamics, b.dynamics, t) if part in ("dynamics", "both") else a.dynamics
        out.append(a.replace(structure=structure, dynamics=dynamics))
    return out


@dataclass
class HiVAEInterpolationOutput(BaseOutput):
    """frames: one entry per interpolation step, each in `output_type` for the batch ("latent": tokenizer-space
    latents, for `vae.decode`); grid: (B, 3, T, H, num_steps * W) in [-1, 1], the steps side by side (None for
    "latent"); latents: the normalised latents of every step."""

    frames: list
    grid: torch.Tensor | None
    latents: list[HierarchicalLatent]


class HiVAEInterpolationPipeline(HiVAEVideoPipeline):
    """Interpolate between two videos, two prompts (generated with shared noise) or two normalised latents.

    interp = HiVAEInterpolationPipeline.from_pretrained("checkpoints/hivae-shapes-64")
    out = interp(prompt_a="a red circle moving left", prompt_b="a blue square moving up", part="both")
    """

    @torch.no_grad()
    def __call__(
        self,
        video_a: torch.Tensor | None = None,
        video_b: torch.Tensor | None = None,
        prompt_a: str | None = None,
        prompt_b: str | None = None,
        latents_a: HierarchicalLatent | None = None,
        latents_b: HierarchicalLatent | None = None,
        num_steps: int = 5,
        part: Literal["structure", "dynamics", "both"] = "both",
        method: Literal["lerp", "slerp"] = "slerp",
        negative_prompt: str | None = None,
        num_inference_steps: int = 20,
        guidance_scale: float = 3.0,
        num_videos_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end: Callable | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
        decoder_steps: int | None = None,
    ) -> HiVAEInterpolationOutput | tuple:
        """Give exactly one pair: (video_a, video_b) (B, 3, T, H, W) in [-1, 1], (prompt_a, prompt_b) or
        (latents_a, latents_b) (normalised). Returns decoded videos for every step and a side-by-side grid.

        With prompts, both ends are generated from the same noise (`num_videos_per_prompt` paths, `generator` one or
        one per path), with `negative_prompt`, guidance and callbacks as in the video pipeline.
        """
        pairs = {"video": (video_a, video_b), "prompt": (prompt_a, prompt_b), "latents": (latents_a, latents_b)}
        given = [name for name, (a, b) in pairs.items() if a is not None or b is not None]
        if len(given) != 1 or any(v is None for v in pairs[given[0]]):
            raise ValueError(
                "give exactly one complete pair: video_a/video_b, prompt_a/prompt_b or latents_a/latents_b"
            )
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"`output_type` must be one of {OUTPUT_TYPES}, got {output_type!r}")
        kind = given[0]
        if kind != "prompt" and (num_videos_per_prompt != 1 or negative_prompt is not None or callback_on_step_end):
            raise ValueError("num_videos_per_prompt, negative_prompt and callbacks apply to prompt_a/prompt_b only")
        if kind == "video":
            a, b = self.encode_video(video_a), self.encode_video(video_b)
        elif kind == "prompt":
            self.check_generator(generator, num_videos_per_prompt)
            noise = self.prepare_latents(num_videos_per_prompt, generator, self._execution_device)
            a, b = (
                self.vae.normalize_latent(
                    HiVAEVideoPipeline.__call__(
                        self,
                        prompt=p,
                        negative_prompt=negative_prompt,
                        num_inference_steps=num_inference_steps,
                        guidance_scale=guidance_scale,
                        num_videos_per_prompt=num_videos_per_prompt,
                        generator=generator,
                        latents=noise,
                        output_type="latent",
                        callback_on_step_end=callback_on_step_end,
                        callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
                    ).frames
                )
                for p in (prompt_a, prompt_b)
            )
        else:
            a, b = latents_a, latents_b
        steps = interpolate_latents(a, b, num_steps, part, method)
        if output_type == "latent":
            out = HiVAEInterpolationOutput(
                frames=[self.vae.denormalize_latent(z) for z in steps], grid=None, latents=steps
            )
            return out if return_dict else out.to_tuple()
        videos = [self.decode_latents(z, decoder_steps, generator).float().clamp(-1, 1) for z in steps]
        grid = rearrange(torch.stack(videos), "n b c t h w -> b c t h (n w)").cpu()
        frames = [self.video_processor.postprocess_video(v, output_type=output_type) for v in videos]
        self.maybe_free_model_hooks()
        out = HiVAEInterpolationOutput(frames=frames, grid=grid, latents=steps)
        return out if return_dict else out.to_tuple()
