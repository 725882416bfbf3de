"""Backbone encoder: pixels -> base latent `z` (B, C, T, h, w), time kept, space reduced by 2**(levels-1)."""

from __future__ import annotations

import torch
import torch.nn as nn

from .layers import Downsample2x, FiLMResBlock2d, ResBlock, SpaceTimeTransformer


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


class FrameEncoder(nn.Module):
    """Images (N, C_in, H, W) -> (N, out_channels, H/f, W/f), f = patch * 2**(len(channels) - 1).

    The efficient backbone's encoder: pixel unshuffle by `patch` (space-to-depth, so no convolution runs at full
    resolution), then one FiLM-free res-block per level with a strided convolution between levels.
    """

    def __init__(self, in_channels: int, channels: tuple[int, ...], patch: int, out_channels: int):
        super().__init__()
        self.unshuffle = nn.PixelUnshuffle(patch)
        self.conv_in = nn.Conv2d(in_channels * patch**2, channels[0], 3, padding=1)
        layers: list[nn.Module] = []
        for level, ch in enumerate(channels):
            if level > 0:
                layers.append(nn.Conv2d(channels[level - 1], ch, 3, stride=2, padding=1))
            layers.append(FiLMResBlock2d(ch))
        self.levels = nn.Sequential(*layers)
        self.out = nn.Sequential(nn.GroupNorm(min(8, channels[-1]), channels[-1]), nn.SiLU())
        self.proj = nn.Conv2d(channels[-1], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.out(self.levels(self.conv_in(self.unshuffle(x)))))
