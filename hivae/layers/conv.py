"""Convolutional blocks on video feature maps `(B, C, T, H, W)`; spatial resampling keeps T."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

__all__ = ["Downsample2x", "ResBlock", "Upsample2x", "fold_pixels", "unfold_pixels"]


def fold_pixels(x: torch.Tensor, p: int) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, C*p*p, T, H/p, W/p): each p x p pixel block as channels (patchify)."""
    return rearrange(x, "b c t (h p) (w q) -> b (c p q) t h w", p=p, q=p)


def unfold_pixels(x: torch.Tensor, p: int) -> torch.Tensor:
    """Inverse of `fold_pixels`: (B, C*p*p, T, H, W) -> (B, C, T, H*p, W*p)."""
    return rearrange(x, "b (c p q) t h w -> b c t (h p) (w q)", p=p, q=p)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels, eps=1e-6)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-Conv3d twice with a residual; `temporal_kernel=1` makes it per-frame (2D)."""

    def __init__(self, in_channels: int, out_channels: int | None = None, temporal_kernel: int = 3):
        super().__init__()
        out_channels = out_channels or in_channels
        kernel, padding = (temporal_kernel, 3, 3), (temporal_kernel // 2, 1, 1)
        self.block = nn.Sequential(
            _norm(in_channels),
            nn.SiLU(),
            nn.Conv3d(in_channels, out_channels, kernel, padding=padding),
            _norm(out_channels),
            nn.SiLU(),
            nn.Conv3d(out_channels, out_channels, kernel, padding=padding),
        )
        self.skip = nn.Conv3d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.block(x)


class Downsample2x(nn.Module):
    """Halve H and W with a strided (1, 3, 3) convolution: (B, C, T, H, W) -> (B, C', T, H/2, W/2)."""

    def __init__(self, in_channels: int, out_channels: int | None = None):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels or in_channels, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample2x(nn.Module):
    """Double H and W (nearest, then a (1, 3, 3) convolution): (B, C, T, H, W) -> (B, C', T, 2H, 2W)."""

    def __init__(self, in_channels: int, out_channels: int | None = None):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels or in_channels, (1, 3, 3), padding=(0, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=(1, 2, 2), mode="nearest"))
