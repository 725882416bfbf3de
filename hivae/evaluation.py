"""Reconstruction evaluation of a tokenizer on a set of clips, with the all-background reference.

On sparse scenes a collapsed tokenizer that outputs only the background still scores a PSNR far above zero, so every
report carries `psnr_background` (predicting each clip's median colour everywhere) and `psnr_foreground` (error on
the pixels that differ from the background) next to the plain PSNR.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch

from .metrics import detail_ratio, foreground_psnr, psnr, ssim, temporal_consistency


@torch.no_grad()
def reconstruct(
    model,
    videos: torch.Tensor,
    batch_size: int = 8,
    decoder_steps: int | None = None,
    generator: torch.Generator | None = None,
    latent_edit: Callable | None = None,
) -> torch.Tensor:
    """Posterior-mean reconstructions of (N, 3, T, H, W) clips, in batches, clamped to [-1, 1], float32 on the CPU.

    decoder_steps / generator: steps and noise of a HiVAE diffusion decoder (None = its default steps).
    latent_edit: HierarchicalLatent -> HierarchicalLatent applied between encoding and decoding (HiVAE only), e.g.
        dropping the dynamics to see how much of the reconstruction they carry.
    """
    param = next(model.parameters())
    outs = []
    for chunk in videos.split(batch_size):
        x = chunk.to(param.device, param.dtype)
        if getattr(model, "diffusion_decoder", None) is not None or latent_edit is not None:
            latent = model.encode(x).latent_dist.mode()
            latent = latent if latent_edit is None else latent_edit(latent)
            video = model.decode(latent, x.shape[2], num_inference_steps=decoder_steps, generator=generator).sample
        else:
            video = model(x).sample
        outs.append(video.float().clamp(-1, 1).cpu())
    return torch.cat(outs)


def reconstruction_metrics(recon: torch.Tensor, videos: torch.Tensor) -> dict[str, float]:
    """Mean PSNR / SSIM / temporal consistency / foreground PSNR / detail ratio, plus the all-background PSNR."""
    background = videos.flatten(2).median(dim=2).values[:, :, None, None, None].expand_as(videos)
    return {
        "psnr": psnr(recon, videos).mean().item(),
        "ssim": ssim(recon, videos).mean().item(),
        "temporal_consistency": temporal_consistency(recon, videos).mean().item(),
        "psnr_foreground": foreground_psnr(recon, videos, background).mean().item(),
        "psnr_background": psnr(background.contiguous(), videos).mean().item(),
        "detail_ratio": detail_ratio(recon, videos).mean().item(),
    }


def evaluate_tokenizer(model, videos: torch.Tensor | Iterable[torch.Tensor], batch_size: int = 8) -> dict[str, float]:
    """Metrics of `model` on clips (N, 3, T, H, W) plus its compression ratio."""
    videos = videos if isinstance(videos, torch.Tensor) else torch.stack(list(videos))
    was_training = model.training
    model.eval()
    metrics = reconstruction_metrics(reconstruct(model, videos, batch_size), videos)
    model.train(was_training)
    ratio = float(model.compression_ratio)
    return {**metrics, "compression_ratio": ratio, "compression_percent": 100.0 / ratio, "num_clips": len(videos)}
