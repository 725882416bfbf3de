"""Backbone encoder: pixels -> base latent `z` (B, C, T, h, w), time kept, space reduced by 2**(levels-1)."""

from __future__ import annotations

import torch
import torch.nn as nn

from .layers import Downsample2x, ResBlock, SpaceTimeTransformer


class Encoder(nn.Module):
    """3D-conv res-blocks with spatial downsampling, then a factorised space-time transformer.

    (B, 3, T, H, W) -> (B, width, T, H/f, W/f) with f = 2**(len(channel_mults) - 1).
    """

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 32,
        channel_mults: tuple[int, ...] = (1, 2, 2),
        width: int = 128,
        depth: int = 2,
        heads: int = 4,
    ):
        super().__init__()
        channels = [base_channels * m for m in channel_mults]
        self.conv_in = nn.Conv3d(in_channels, channels[0], 3, padding=1)
        stages = []
        for level, ch in enumerate(channels):
            prev = channels[max(level - 1, 0)]
            stages.append(ResBlock(prev, ch))
            if level < len(channels) - 1:
                stages.append(Downsample2x(ch))
        self.stages = nn.Sequential(*stages)
        self.to_width = nn.Conv3d(channels[-1], width, 1)
        self.transformer = SpaceTimeTransformer(width, depth, heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.transformer(self.to_width(self.stages(self.conv_in(x))))
