"""Hi-VAE-style conditional diffusion decoder, made few-step with a shortcut objective.

The deterministic decoder gives `x_det`; this module generates the residual `r = (x - x_det) / residual_scale` by
rectified flow, conditioned on `x_det`, on the fused structure + dynamics features, on the flow time sigma and on the
step size d it is asked to take. The network predicts the clean residual (x-prediction); its velocity is
`(r_sigma - r_hat) / sigma`. With a zero-initialised output layer an untrained decoder therefore returns `x_det`
exactly, and the last sampling step lands on the prediction instead of leaving unremoved noise behind.

Training mixes plain flow matching (d = 0, target r) with shortcut self-consistency (Frans et al., 2024): one step
of size 2d must land where two steps of size d land, so that 1-4 steps approach many steps. The recursion bottoms
out at the flow-matching head: the finest step is taken with step input 0 (`step_input`).

    r_sigma = (1 - sigma) r + sigma * noise,   r_{sigma - d} = r_sigma - d * (r_sigma - r_hat) / sigma
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from .layers import Downsample2x, Upsample2x, fold_pixels, timestep_embedding, unfold_pixels

# the shortcut objective trains step sizes 1, 1/2, ..., 2**-SHORTCUT_LEVELS (steps of 2d from two steps of d); the
# recursion bottoms out at d = 2**-(SHORTCUT_LEVELS + 1), taken with the flow-matching head (step input 0), which
# also serves any step count that is not a power of two or is finer than that
SHORTCUT_LEVELS = 5


def step_input(d: torch.Tensor) -> torch.Tensor:
    """The step size the network is told: d itself where the shortcut objective trains it, else 0 (flow head)."""
    return torch.where(d >= 2.0**-SHORTCUT_LEVELS, d, torch.zeros_like(d))


class CondResBlock(nn.Module):
    """Res-block whose middle is scaled and shifted by an embedding (FiLM). x: (B, C, T, H, W), emb: (B, E)."""

    def __init__(self, channels: int, emb_dim: int):
        super().__init__()
        self.norm1, self.norm2 = nn.GroupNorm(8, channels), nn.GroupNorm(8, channels)
        self.conv1 = nn.Conv3d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * channels)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(emb)[:, :, None, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return x + self.conv2(F.silu(h))


def _expand(v: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, 1, 1, 1) to broadcast over videos."""
    return rearrange(v, "b -> b 1 1 1 1")


class DiffusionDecoder(nn.Module):
    """Clean-residual prediction: (r_sigma, x_det, features, sigma, d) -> r_hat (B, 3, T, H, W).

    `features` (B, width, T, h, w) come from `LatentFusion` at 1 / 2**levels of the pixel size. Inputs are folded
    into `patch_size` x `patch_size` pixel patches first, so the U-Net runs log2(patch_size) levels fewer.
    """

    def __init__(
        self,
        width: int,
        channels: int = 32,
        levels: int = 3,
        out_channels: int = 3,
        patch_size: int = 2,
        residual_scale: float = 0.05,
    ):
        super().__init__()
        if patch_size < 1 or 2**levels % patch_size or patch_size > 2**levels:
            raise ValueError(f"patch_size must be a power of two <= {2**levels}, got {patch_size}")
        self.patch_size, self.residual_scale = patch_size, residual_scale
        unet_levels = levels - int(math.log2(patch_size))
        self.emb_dim = 4 * channels
        self.embed = nn.Sequential(nn.Linear(512, self.emb_dim), nn.SiLU(), nn.Linear(self.emb_dim, self.emb_dim))
        self.conv_in = nn.Conv3d(2 * out_channels * patch_size**2, channels, 3, padding=1)
        self.down = nn.ModuleList(Downsample2x(channels) for _ in range(unet_levels))
        self.down_blocks = nn.ModuleList(CondResBlock(channels, self.emb_dim) for _ in range(unet_levels))
        self.features_in = nn.Conv3d(width, channels, 1)
        self.mid = nn.ModuleList(CondResBlock(channels, self.emb_dim) for _ in range(2))
        self.up = nn.ModuleList(Upsample2x(channels) for _ in range(unet_levels))
        self.up_blocks = nn.ModuleList(CondResBlock(channels, self.emb_dim) for _ in range(unet_levels))
        self.conv_out = nn.Sequential(
            nn.GroupNorm(8, channels), nn.SiLU(), nn.Conv3d(channels, out_channels * patch_size**2, 3, padding=1)
        )
        nn.init.zeros_(self.conv_out[-1].weight)
        nn.init.zeros_(self.conv_out[-1].bias)

    def forward(
        self, noisy: torch.Tensor, x_det: torch.Tensor, features: torch.Tensor, sigma: torch.Tensor, step: torch.Tensor
    ) -> torch.Tensor:
        p = self.patch_size
        times = torch.cat([timestep_embedding(sigma * 1000, 256), timestep_embedding(step * 1000, 256)], -1)
        emb = self.embed(times.to(self.embed[0].weight.dtype))
        h = fold_pixels(torch.cat([noisy, x_det], dim=1), p)
        h = self.conv_in(h)
        skips = []
        for block, down in zip(self.down_blocks, self.down):
            h = block(h, emb)
            skips.append(h)
            h = down(h)
        h = h + self.features_in(features)
        for block in self.mid:
            h = block(h, emb)
        for block, up in zip(self.up_blocks, self.up):
            h = block(up(h) + skips.pop(), emb)
        return unfold_pixels(self.conv_out(h), p)

    def velocity(self, noisy, x_det, features, sigma, step) -> torch.Tensor:
        """Flow velocity (r_sigma - r_hat) / sigma implied by the clean-residual prediction (sigma > 0)."""
        return (noisy - self(noisy, x_det, features, sigma, step)) / _expand(sigma)

    # ------------------------------------------------------------------ training
    def loss(
        self, target: torch.Tensor, x_det: torch.Tensor, features: torch.Tensor, shortcut_fraction: float = 0.25
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss for the pixel residual `target` = x - x_det (B, 3, T, H, W), in units of the scaled residual.

        Flow matching on (1 - shortcut_fraction) of the batch, shortcut self-consistency on the rest.
        """
        residual = target / self.residual_scale
        b, device = residual.shape[0], residual.device
        noise = torch.randn_like(residual)
        n_short = int(round(b * shortcut_fraction))
        # flow-matching rows: any sigma in (0, 1], step size 0
        sigma = 1 - torch.rand(b, device=device)
        step = torch.zeros(b, device=device)
        clean_target = residual
        if n_short > 0:
            # shortcut rows: a step of 2d = 2**-k, sigma on the grid of multiples of 2d in (0, 1]
            k = torch.randint(0, SHORTCUT_LEVELS + 1, (n_short,), device=device).float()
            d = 2.0 ** -(k + 1)
            sigma[:n_short] = torch.ceil(torch.rand(n_short, device=device) / (2 * d)).clamp_min(1) * 2 * d
            step[:n_short] = 2 * d
        noisy = (1 - _expand(sigma)) * residual + _expand(sigma) * noise
        if n_short > 0:
            with torch.no_grad():
                sl = slice(0, n_short)
                args = (x_det[sl], features[sl])
                midway = noisy[sl] - _expand(d) * self.velocity(noisy[sl], *args, sigma[sl], step_input(d))
                landing = midway - _expand(d) * self.velocity(midway, *args, sigma[sl] - d, step_input(d))
                # the clean residual whose velocity takes one 2d step from noisy to landing
                jump = noisy[sl] - _expand(sigma[sl] / (2 * d)) * (noisy[sl] - landing)
                clean_target = torch.cat([jump, residual[n_short:]])
        prediction = self(noisy, x_det, features, sigma, step)
        per_row = (prediction - clean_target).pow(2).flatten(1).mean(1)
        loss = per_row.mean()
        logs = {"diffusion_loss": loss.item(), "flow_loss": per_row[n_short:].mean().item()}
        if n_short > 0:
            logs["shortcut_loss"] = per_row[:n_short].mean().item()
        return loss, logs

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(
        self,
        x_det: torch.Tensor,
        features: torch.Tensor,
        num_steps: int = 4,
        generator: torch.Generator | list[torch.Generator] | None = None,
    ) -> torch.Tensor:
        """Pixel residual (B, 3, T, H, W) by `num_steps` Euler steps with diffusers' FlowMatchEulerDiscreteScheduler.

        generator: one, or one per clip (clip i then gets the noise it would get alone with generator i)."""
        from diffusers import FlowMatchEulerDiscreteScheduler
        from diffusers.utils.torch_utils import randn_tensor

        if not isinstance(num_steps, int) or num_steps < 1:
            raise ValueError(f"num_inference_steps must be a positive int, got {num_steps!r}")
        scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0)
        scheduler.set_timesteps(sigmas=[1 - i / num_steps for i in range(num_steps)], device=x_det.device)
        x = randn_tensor(x_det.shape, generator=generator, device=x_det.device, dtype=x_det.dtype)
        step = torch.full((x.shape[0],), 1.0 / num_steps, device=x.device, dtype=x.dtype)
        if not math.log2(num_steps).is_integer():
            step = torch.zeros_like(step)  # a step size the shortcut objective never saw: use the flow-matching head
        step = step_input(step)
        for t in scheduler.timesteps:
            sigma = (t / 1000).expand(x.shape[0]).to(x.dtype)
            x = scheduler.step(self.velocity(x, x_det, features, sigma, step), t, x, return_dict=False)[0]
        return x * self.residual_scale
