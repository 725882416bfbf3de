"""Dynamics / detailed-motion branch: per-frame features averaged over space, every time step kept.

VidTwin's Dynamics latent and Hi-VAE's detailed-motion latent: a per-position MLP projects z, adaptive average pooling
reduces each frame to a p_h x p_w grid ((1, 1) = global average), and a 1x1 head gives mean and log-variance of `d_d`
channels. Spatial content is removed, fast motion survives at full temporal rate.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange, reduce

from .encoder import FrameEncoder
from .layers import dct_basis


class DynamicsBranch(nn.Module):
    """z (B, C, T, h, w) -> mean, logvar (B, d_d, T, p_h, p_w)."""

    def __init__(self, width: int, latent_channels: int, pool_size: tuple[int, int] = (1, 1)):
        super().__init__()
        self.pool_size = tuple(pool_size)
        self.project = nn.Sequential(nn.Conv3d(width, width, 1), nn.SiLU(), nn.Conv3d(width, width, 1))
        self.to_moments = nn.Sequential(nn.SiLU(), nn.Conv3d(width, 2 * latent_channels, 1))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = F.adaptive_avg_pool3d(self.project(z), (z.shape[2], *self.pool_size))
        return self.to_moments(pooled).chunk(2, dim=1)


class FastDynamicsBranch(nn.Module):
    """Video (B, 3, T, H, W) -> mean, logvar (B, d_d, T / stride, 1, 1): the fast part of per-frame features.

    Every frame is encoded with x, y coordinate channels appended, then reduced over space to its mean and its first
    moments along x and y (what is there and where it sits: a jump left or right survives), and its slow part is
    removed: the projection onto the `lowpass` slowest cosines
    over the clip (constant, trend, gentle curve, ...) is subtracted, and a bias-free linear head keeps the mean free
    of it. Static content and the slow path cannot sit in the mean; blinking, pulsing and shaking can.

    `stride` > 1 averages the fast features over groups of `stride` frames before the heads: (B, d_d, T / stride, 1, 1),
    a fast latent at a lower rate (VidTwin's temporal patches) that leaves more of a small budget to the structure.

    `relative=True` pools each (softplus) feature channel to the log of its mass and its centroid instead: after the
    high-pass these are a relative change of presence or size and a displacement in image coordinates, the same
    numbers for any object, so the dynamics of one clip means the same on the structure of another (motion transfer).
    """

    def __init__(
        self,
        in_channels: int,
        channels: tuple[int, ...],
        patch: int,
        latent_channels: int,
        num_frames: int,
        lowpass: int = 4,
        relative: bool = False,
        stride: int = 1,
    ):
        super().__init__()
        if not 0 <= lowpass < num_frames:
            raise ValueError(f"dynamics_lowpass must be in [0, num_frames={num_frames}), got {lowpass}")
        if stride < 1 or num_frames % stride:
            raise ValueError(f"dynamics_stride must be a divisor of num_frames={num_frames}, got {stride}")
        hidden = channels[-1]
        self.relative, self.stride = relative, stride
        self.encoder = FrameEncoder(in_channels + 2, channels, patch, hidden)
        self.register_buffer("basis", dct_basis(num_frames, lowpass), persistent=False)  # (lowpass, T)
        self.to_mean = nn.Conv1d(3 * hidden, latent_channels, 1, bias=False)
        self.to_logvar = nn.Conv1d(3 * hidden, latent_channels, 1)

    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, t, h, w = video.shape
        ys, xs = torch.meshgrid(
            torch.linspace(-1, 1, h, device=video.device), torch.linspace(-1, 1, w, device=video.device), indexing="ij"
        )
        coords = torch.stack([xs, ys]).to(video.dtype)
        frames = rearrange(video, "b c t h w -> (b t) c h w")
        frames = torch.cat([frames, coords.expand(frames.shape[0], -1, -1, -1)], dim=1)
        maps = self.encoder(frames)  # (B*T, C, h', w')
        grid = F.interpolate(coords[None], size=maps.shape[-2:], mode="bilinear", align_corners=False)[0]
        if self.relative:  # per channel: log of its mass and its centroid, both free of the object's look
            weights = F.softplus(maps.float())
            mass = weights.mean(dim=(2, 3))
            centroid = [(weights * g).mean(dim=(2, 3)) / mass for g in grid.float()]
            pooled = torch.cat([(mass + 1e-3).log(), *centroid], dim=1).to(maps.dtype)
        else:  # the average over space and the first moments along x and y: what is there, and where it sits
            pooled = torch.cat([maps.mean(dim=(2, 3)), *((maps * g).mean(dim=(2, 3)) for g in grid)], dim=1)
        features = rearrange(pooled, "(b t) c -> b c t", b=b)  # (B, 3C, T)
        basis = self.basis.to(features.dtype)
        fast = features - (features @ basis.T) @ basis  # remove the slow cosines
        fast = reduce(fast, "b c (t s) -> b c t", "mean", s=self.stride)  # (B, 3C, T / stride)
        mean, logvar = self.to_mean(fast), self.to_logvar(fast)
        return rearrange(mean, "b c t -> b c t 1 1"), rearrange(logvar, "b c t -> b c t 1 1")
