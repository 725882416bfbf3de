"""Train a HiVAEDiT by flow matching on the latents of a frozen HiVAE tokenizer.

    accelerate launch gen/train_dit.py --config configs/dit/shapes-32.yaml
    ACCELERATE_USE_CPU=1 torchrun --nproc_per_node 2 gen/train_dit.py --config configs/dit/shapes-32.yaml  # 2 CPU ranks
    python gen/train_dit.py --config configs/dit/shapes-32.yaml train.max_steps=100   # plain CPU run

With `cache_dir` set, latents and caption encodings are read from a cache built on first use by all ranks together
(or by gen/cache_latents.py) and rebuilt when its fingerprint (tokenizer weights, data settings, text encoder) no
longer matches; without it, clips are encoded on the fly. Writes <output_dir>/checkpoints/step-*, logs/
(tensorboard), samples/*.mp4 (generations for `sample_prompts`, from the EMA weights), model/ (the transformer) and
pipeline/ (the whole HiVAEVideoPipeline, loadable with from_pretrained).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):  # run as a script from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gen.cache_latents import ensure_cache  # noqa: E402
from gen.dit_config import DiTTrainConfig, build_dit, load_frozen_tokenizer  # noqa: E402
from gen.flow_matching import flow_matching_loss  # noqa: E402
from gen.text_encoder import encode_text, load_text_encoder  # noqa: E402
from gen.training import (  # noqa: E402
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
from hivae.config import load_config, save_config  # noqa: E402
from hivae.data import build_dataset, collate_clips  # noqa: E402
from hivae.latents import HierarchicalLatent  # noqa: E402


def make_pipeline(vae, transformer, text, config: DiTTrainConfig):
    """The HiVAEVideoPipeline over a trained transformer (entry-point code: `gen` library modules never import
    `pipelines`)."""
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

    # data: a latent cache (built by all ranks, checked against the run's fingerprint) or clips encoded on the fly
    if config.cache_dir:
        dataset = ensure_cache(
            accelerator,
            config.cache_dir,
            vae,
            config.data,
            text,
            config.text_encoder,
            config.max_text_length,
            tc.num_workers,
        )
        if use_text and not dataset.index["has_text_states"]:
            raise ValueError(f"{config.cache_dir}: cache has no caption encodings but the model is text-conditioned")
        loader = make_loader(dataset, tc)
    else:
        dataset = build_dataset(config.data, split="train")
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
            f"per clip, {len(dataset)} clips, {accelerator.num_processes} processes; steps {start}..{tc.max_steps}"
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
        # noise for the whole global batch from one per-(step, micro-batch) seed, this rank's rows taken: the run
        # does not depend on how many processes share the batch
        micro = accelerator.step % tc.gradient_accumulation_steps
        generator = torch.Generator(device).manual_seed((tc.seed * 1_000_003 + step) * 1024 + micro)
        rows = (accelerator.process_index * latent.batch_size, accelerator.num_processes * latent.batch_size)
        loss, logs = flow_matching_loss(model, latent, config.flow, generator, rows, **kwargs)
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
