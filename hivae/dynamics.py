"""Dynamics / detailed-motion branch: per-frame features averaged over space, every time step kept.

VidTwin's Dynamics latent and Hi-VAE's detailed-motion latent: a per-position MLP projects z, adaptive average pooling
reduces each frame to a p_h x p_w grid ((1, 1) = global average), and a 1x1 head gives mean and log-variance of `d_d`
channels. Spatial content is removed, fast motion survives at full temporal rate.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


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
