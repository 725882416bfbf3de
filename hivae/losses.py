"""Tokenizer training losses: foreground-weighted L1 + L2, SSIM, KL, and an optional 3D patch-GAN.

On sparse scenes (a small object on a plain background) a plain pixel loss lets the model collapse to predicting
the background. Pixels that differ from the clip's background estimate (its per-channel median) are weighted
`1 + foreground_weight`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .metrics import ssim


@dataclass
class LossConfig:
    l1_weight: float = 1.0  # mean absolute error
    l2_weight: float = 1.0  # mean squared error
    ssim_weight: float = 0.2  # 1 - SSIM, per frame
    kl_weight: float = 1e-5  # KL of both latent parts to N(0, I), per element
    swap_weight: float = 0.0  # > 0 (with data.swap_pairs): pixel loss of decode(structure of A, dynamics of B)
    # against A rendered with B's fast pattern, so the decoder renders combinations it never saw in one clip
    dynamics_kl_weight: float = 0.0  # extra KL weight on the dynamics part: a rate on the fast latent, so what the
    # structure already carries (a steady clip) leaves the dynamics at the prior
    foreground_weight: float = 4.0  # extra weight on pixels that differ from the background estimate
    foreground_threshold: float = 0.15  # |x - background| above this (range [-1, 1]) counts as foreground
    gan_weight: float = 0.0  # > 0 enables the 3D patch discriminator
    gan_start_step: int = 5000  # adversarial loss starts after this many steps
    discriminator_channels: int = 32  # width of the patch discriminator
    diffusion_weight: float = 1.0  # decoder_type="diffusion": weight of the diffusion decoder's loss
    lpips_weight: float = 0.0  # > 0 adds LPIPS (needs lpips_weights)
    lpips_weights: Optional[str] = None  # safetensors file of VGG16-LPIPS weights you supply (see hivae.lpips)


def foreground_mask(video: torch.Tensor, threshold: float) -> torch.Tensor:
    """(B, 3, T, H, W) -> (B, 1, T, H, W) in {0, 1}: pixels away from the per-clip median colour."""
    background = video.flatten(2).median(dim=2).values[:, :, None, None, None]
    return ((video - background).abs().amax(dim=1, keepdim=True) > threshold).to(video.dtype)


class PatchDiscriminator3D(nn.Module):
    """Small 3D conv discriminator scoring overlapping space-time patches: (B, 3, T, H, W) -> (B, 1, t, h, w)."""

    def __init__(self, channels: int = 32, in_channels: int = 3):
        super().__init__()
        layers, ch_in = [], in_channels
        for ch in (channels, 2 * channels, 4 * channels):
            layers += [nn.Conv3d(ch_in, ch, 4, stride=(1, 2, 2), padding=(1, 1, 1)), nn.LeakyReLU(0.2)]
            ch_in = ch
        self.net = nn.Sequential(*layers, nn.Conv3d(ch_in, 1, 3, padding=1))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.net(video)


class ReconstructionLoss(nn.Module):
    """Generator-side loss. `forward` returns (total, dict of float logs)."""

    def __init__(self, config: LossConfig):
        super().__init__()
        self.config = config
        self.discriminator = PatchDiscriminator3D(config.discriminator_channels) if config.gan_weight > 0 else None
        self.lpips = None
        if config.lpips_weight > 0:
            if not config.lpips_weights:
                raise ValueError(
                    "loss.lpips_weight > 0 needs loss.lpips_weights: a safetensors file (nothing downloads)"
                )
            from .lpips import LPIPS

            self.lpips = LPIPS(config.lpips_weights)

    def forward(
        self,
        recon: torch.Tensor,
        target: torch.Tensor,
        kl: torch.Tensor,
        step: int = 0,
        kl_dynamics: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        c = self.config
        pixels, logs = self.pixel_loss(recon, target)
        kl_loss = kl.float().mean()
        total = pixels + c.kl_weight * kl_loss
        logs["kl"] = kl_loss.item()
        if c.dynamics_kl_weight > 0:
            if kl_dynamics is None:
                raise ValueError("loss.dynamics_kl_weight > 0 needs the model's kl_dynamics (a HiVAE)")
            total = total + c.dynamics_kl_weight * kl_dynamics.float().mean()
            logs["kl_dynamics"] = kl_dynamics.float().mean().item()
        if self.lpips is not None:
            perceptual = self.lpips(recon, target).mean()
            total = total + c.lpips_weight * perceptual
            logs["lpips"] = perceptual.item()
        if self.gan_active(step):
            # the generator's term must not leave gradients in the discriminator (it accumulates its own)
            self.discriminator.requires_grad_(False)
            try:
                adversarial = -self.discriminator(recon).mean()
            finally:
                self.discriminator.requires_grad_(True)
            total = total + c.gan_weight * adversarial
            logs["g_adv"] = adversarial.item()
        logs["loss"] = total.item()
        return total, logs

    def pixel_loss(self, recon: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Foreground-weighted L1 + L2 and 1 - SSIM of (B, 3, T, H, W) clips -> (weighted sum, logs)."""
        c = self.config
        recon, target = recon.float(), target.float()
        weight = 1.0 + c.foreground_weight * foreground_mask(target, c.foreground_threshold)
        weight = weight / weight.mean()
        l1 = (weight * (recon - target).abs()).mean()
        l2 = (weight * (recon - target).pow(2)).mean()
        ssim_loss = (
            1.0 - ssim(recon.clamp(-1, 1), target, compute_dtype=recon.dtype).mean()
            if c.ssim_weight > 0
            else recon.new_zeros(())
        )
        total = c.l1_weight * l1 + c.l2_weight * l2 + c.ssim_weight * ssim_loss
        return total, {"l1": l1.item(), "l2": l2.item(), "ssim_loss": ssim_loss.item()}

    def gan_active(self, step: int) -> bool:
        return self.discriminator is not None and step >= self.config.gan_start_step

    def discriminator_loss(
        self, recon: torch.Tensor, target: torch.Tensor, discriminator: nn.Module | None = None
    ) -> torch.Tensor:
        """Hinge loss of the patch discriminator (or its prepared / DDP wrapper) on real `target` vs detached `recon`."""
        discriminator = discriminator or self.discriminator
        real, fake = discriminator(target.float()), discriminator(recon.detach().float())
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
