"""Train a video tokenizer (HiVAE or the 3D-conv baseline) on synthetic shapes or a video folder.

    accelerate launch gen/train_tokenizer.py --config configs/tokenizer/shapes-32.yaml
    accelerate launch gen/train_tokenizer.py --config configs/tokenizer/shapes-32.yaml train.max_steps=200
    python gen/train_tokenizer.py --config ...          # same script on CPU without accelerate launch

Writes <output_dir>/checkpoints/step-*/ (resumable save_state), logs/ (tensorboard), samples/*.mp4
(reconstructions: target | reconstruction) and, at the end, model/ (save_pretrained with latent statistics,
training_config.yaml, eval.json).
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import torch

if __package__ in (None, ""):  # run as a script from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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
from hivae import TOKENIZERS  # noqa: E402
from hivae.config import load_config, save_config  # noqa: E402
from hivae.data import DataConfig, build_dataset, collate_clips  # noqa: E402
from hivae.evaluation import evaluate_tokenizer, reconstruct  # noqa: E402
from hivae.losses import LossConfig, ReconstructionLoss  # noqa: E402
from hivae.metrics import psnr  # noqa: E402
from hivae.model import LATENT_STATISTICS  # noqa: E402


@dataclass
class TokenizerConfig:
    model_type: Literal["hivae", "baseline"] = "hivae"  # HiVAE or VideoVAE3D
    model: dict[str, Any] = field(default_factory=dict)  # constructor (register_to_config) arguments of the model
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval_clips: int = 32  # held-out clips for samples, final metrics and latent statistics
    init_from: Optional[str] = None  # start from this trained tokenizer's weights (e.g. for a diffusion decoder)
    freeze_autoencoder: bool = False  # stage 2: train only the diffusion decoder, the rest stays frozen


def initialise_from(model, path: str) -> None:
    """Load a trained tokenizer's weights and latent statistics; only the diffusion decoder may be missing."""
    load_init_weights(model, path, "tokenizer", optional_prefix="diffusion_decoder.")
    config = json.loads((Path(path) / "config.json").read_text())
    model.register_to_config(**{k: config[k] for k in LATENT_STATISTICS if k in config})


def held_out_clips(config: TokenizerConfig) -> tuple[torch.Tensor, list[str]]:
    """(N, 3, T, H, W) evaluation clips and their sources: the first `eval_clips` items of the "eval" split (shapes
    under another seed; for files, videos that training never reads, split by file) and their file names."""
    dataset = build_dataset(config.data, split="eval", sampling="center")
    count = min(config.eval_clips, len(dataset))
    items = [dataset[i] for i in range(count)]
    return torch.stack([item["video"] for item in items]), [item.get("file_name", "") for item in items]


def discriminator_update(accelerator, discriminator, loss_fn, optimizer, recon, target) -> dict[str, float]:
    """One micro-batch of the patch discriminator's hinge loss, accumulated like the generator's: gradients are
    summed (scaled by 1 / accumulation steps, synchronised across ranks only on the last micro-batch) and the
    optimizer steps when `accelerator.sync_gradients`. `discriminator` is the prepared (possibly DDP) module."""
    sync = accelerator.sync_gradients
    with contextlib.nullcontext() if sync else accelerator.no_sync(discriminator):
        d_loss = loss_fn.discriminator_loss(recon, target, discriminator)
        accelerator.backward(d_loss)
    if sync:
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return {"d_loss": d_loss.item()}


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(__doc__, argv)
    config = load_config(args.config, TokenizerConfig, args.overrides)
    model_cls = TOKENIZERS[config.model_type]
    check_model_kwargs(model_cls, config.model)
    tc = config.train

    if config.loss.swap_weight > 0 and not config.data.swap_pairs:
        raise ValueError("loss.swap_weight > 0 needs data.swap_pairs=true (rendered pattern-swap targets)")
    accelerator = make_accelerator(tc)
    model = model_cls(**config.model)
    if config.init_from:
        initialise_from(model, config.init_from)
    if config.freeze_autoencoder:
        if getattr(model, "diffusion_decoder", None) is None:
            raise ValueError("freeze_autoencoder=true needs model.decoder_type=diffusion")
        model.requires_grad_(False)
        model.diffusion_decoder.requires_grad_(True)
    loss_fn = ReconstructionLoss(config.loss)
    loader = make_loader(build_dataset(config.data, split="train"), tc, collate_clips)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer, scheduler = make_optimizer(trainable, tc, accelerator.num_processes)
    model, optimizer, scheduler, loader = accelerator.prepare(model, optimizer, scheduler, loader)
    loss_fn.to(accelerator.device)
    discriminator = disc_optimizer = None
    if loss_fn.discriminator is not None:
        # the loss keeps the plain module (the generator's adversarial term, gradients to the generator only); the
        # prepared one trains the discriminator
        disc_optimizer = torch.optim.AdamW(loss_fn.discriminator.parameters(), lr=tc.learning_rate, betas=(0.5, 0.9))
        discriminator, disc_optimizer = accelerator.prepare(loss_fn.discriminator, disc_optimizer)
    ema = make_ema(model, tc, accelerator)
    start = resume_step(accelerator, tc, ema)

    eval_clips, eval_sources = held_out_clips(config)
    if accelerator.is_main_process:
        Path(tc.output_dir).mkdir(parents=True, exist_ok=True)
        save_config(config, Path(tc.output_dir) / "config.yaml")
        split = {"source": config.data.source, "eval_fraction": config.data.eval_fraction}
        if config.data.source != "shapes":
            split["eval_files"] = sorted(set(eval_sources))
        (Path(tc.output_dir) / "data_split.json").write_text(json.dumps(split, indent=1))
        accelerator.init_trackers("tokenizer")
        unwrapped = accelerator.unwrap_model(model)
        print(
            f"{config.model_type}: {sum(p.numel() for p in unwrapped.parameters()) / 1e6:.2f}M parameters, "
            f"compression {unwrapped.compression_ratio:.1f}x; training steps {start}..{tc.max_steps}"
        )

    def step_fn(batch, step):
        video = batch["video"]
        swap = config.loss.swap_weight > 0 and "swap_video" in batch
        if swap:  # clips and their partners in one batch; the first half is also decoded with the partners' dynamics
            n = len(video)
            video = torch.cat([video, batch["partner_video"]])
            swap_kwargs = {"dynamics_from": torch.arange(n, 2 * n, device=video.device)}
        else:
            swap_kwargs = {}
        # stage 2 trains the diffusion decoder on the latents it will decode: the posterior mean
        out = model(video, sample_posterior=not config.freeze_autoencoder, **swap_kwargs)
        loss, logs = loss_fn(out.sample, video, out.kl, step, kl_dynamics=getattr(out, "kl_dynamics", None))
        if swap:
            swap_loss, swap_logs = loss_fn.pixel_loss(out.swapped, batch["swap_video"])
            loss = loss + config.loss.swap_weight * swap_loss
            logs |= {f"swap_{k}": v for k, v in swap_logs.items()} | {"loss": loss.item()}
        if out.diffusion_loss is not None:
            loss = loss + config.loss.diffusion_weight * out.diffusion_loss
            logs |= {"diffusion_loss": out.diffusion_loss.item(), "loss": loss.item()}
        if disc_optimizer is None or not loss_fn.gan_active(step):
            return loss, logs, None

        def update_discriminator():
            return discriminator_update(accelerator, discriminator, loss_fn, disc_optimizer, out.sample, video)

        return loss, logs, update_discriminator

    def sample_fn(step):  # EMA weights: the held-out PSNR curve of the model that will be saved
        clips = eval_clips[:8]
        recon = reconstruct(accelerator.unwrap_model(model), clips)
        accelerator.log({"eval/psnr": psnr(recon, clips).mean().item()}, step=step)
        log_videos(accelerator, "reconstruction", torch.cat([clips[:4], recon[:4]], dim=4), step)

    run_training_loop(
        accelerator, model, optimizer, scheduler, loader, tc, ema, start, step_fn, sample_fn, desc="tokenizer"
    )

    final_dir = Path(tc.output_dir) / "model"
    if accelerator.is_main_process:
        final = accelerator.unwrap_model(model)
        if ema is not None:
            ema.copy_to(final.parameters())
        final.eval()
        metrics = evaluate_tokenizer(final, eval_clips)
        if config.data.source != "shapes":
            metrics["eval_files"] = sorted(set(eval_sources))  # held out by file: never read in training
        if not config.freeze_autoencoder:  # the latent statistics a DiT normalises with (HiVAE and the plain VAE)
            # (a frozen encoder keeps init_from's statistics: DiTs trained on its latents stay valid)
            with torch.no_grad():
                param = next(final.parameters())
                latents = [final.encode(c.to(param.device)).latent_dist.mode() for c in eval_clips.split(8)]
            from hivae import HierarchicalLatent

            metrics["latent_statistics"] = final.set_latent_statistics(HierarchicalLatent.cat(latents))
        save_pretrained_atomic(final, final_dir, config)
        (final_dir / "eval.json").write_text(json.dumps(metrics, indent=2))
        print(json.dumps({k: v for k, v in metrics.items() if k != "latent_statistics"}, indent=2))
        print(f"saved tokenizer to {final_dir.resolve()}")
    accelerator.end_training()
    return final_dir


if __name__ == "__main__":
    main()
