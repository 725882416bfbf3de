"""Decoding: fuse the structure and dynamics latents into per-frame features, then render pixels.

`LatentFusion` is the conditioning shared by every decoder type: the structure latent is upsampled in space and its
n_q queries are mapped to the T frames (VidTwin's kernel-1 convolution over the query axis); the dynamics latent is
embedded and broadcast over space; the two are summed. `PixelDecoder` is the fast deterministic decoder.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from .latents import HierarchicalLatent
from .layers import ResBlock, SpaceTimeTransformer, Upsample2x


class LatentFusion(nn.Module):
    """HierarchicalLatent -> fused features (B, width, T, h, w) on the base-latent grid."""

    def __init__(
        self,
        width: int,
        structure_channels: int,
        dynamics_channels: int,
        num_queries: int,
        num_frames: int,
        structure_upsample: int = 1,
    ):
        super().__init__()
        self.structure_in = nn.Conv3d(structure_channels, width, 1)
        blocks = []
        for _ in range(structure_upsample):
            blocks += [ResBlock(width, temporal_kernel=1), Upsample2x(width)]
        self.structure_up = nn.Sequential(*blocks)
        self.query_to_time = nn.Linear(num_queries, num_frames)  # mixes the n_q queries into T frames
        self.dynamics_in = nn.Sequential(nn.Conv3d(dynamics_channels, width, 1), nn.SiLU(), nn.Conv3d(width, width, 1))

    def forward(self, latent: HierarchicalLatent) -> torch.Tensor:
        structure = self.structure_up(self.structure_in(latent.structure))  # (B, C, n_q, h, w)
        structure = rearrange(
            self.query_to_time(rearrange(structure, "b c n h w -> b c h w n")), "b c h w t -> b c t h w"
        )
        dynamics = self.dynamics_in(latent.dynamics)  # (B, C, T, p_h, p_w)
        dynamics = F.interpolate(dynamics, size=structure.shape[2:], mode="nearest")  # broadcast over space
        return structure + dynamics


class PixelDecoder(nn.Module):
    """Fused features (B, width, T, h, w) -> pixels (B, 3, T, h*f, w*f): space-time transformer, then upsampling."""

    def __init__(
        self,
        width: int = 128,
        depth: int = 2,
        heads: int = 4,
        base_channels: int = 32,
        channel_mults: tuple[int, ...] = (1, 2, 2),
        out_channels: int = 3,
    ):
        super().__init__()
        channels = [base_channels * m for m in channel_mults][::-1]
        self.transformer = SpaceTimeTransformer(width, depth, heads)
        self.from_width = nn.Conv3d(width, channels[0], 1)
        stages = []
        for level, ch in enumerate(channels):
            stages.append(ResBlock(channels[max(level - 1, 0)], ch))
            if level < len(channels) - 1:
                stages.append(Upsample2x(ch))
        self.stages = nn.Sequential(*stages)
        self.conv_out = nn.Sequential(
            nn.GroupNorm(min(8, channels[-1]), channels[-1]),
            nn.SiLU(),
            nn.Conv3d(channels[-1], out_channels, 3, padding=1),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.stages(self.from_width(self.transformer(features))))
