"""Per-frame 2D blocks for the efficient backbone: frames are a batch of images `(N, C, H, W)`, N = B*T.

Space-to-depth patchification (pixel unshuffle) before any convolution and pixel-shuffle at the end keep every
convolution on a coarse grid (LTX-Video's VAE does the same); time is handled by the latent, not by these layers.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["FiLMResBlock2d", "dct_basis", "gaussian_blur2d"]


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels, eps=1e-6)


class FiLMResBlock2d(nn.Module):
    """GroupNorm-SiLU-Conv2d twice with a residual; with `cond_dim` the middle is scaled and shifted per channel by
    a conditioning vector (FiLM). x: (N, C, H, W), cond: (N, cond_dim)."""

    def __init__(self, in_channels: int, out_channels: int | None = None, cond_dim: int = 0):
        super().__init__()
        out_channels = out_channels or in_channels
        self.norm1, self.norm2 = _norm(in_channels), _norm(out_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.film = nn.Linear(cond_dim, 2 * out_channels) if cond_dim else None
        if self.film is not None:
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.norm2(h)
        if self.film is not None and cond is not None:
            scale, shift = self.film(cond)[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


def dct_basis(length: int, count: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(count, length) orthonormal DCT-II basis: the `count` slowest cosines over `length` steps."""
    t = torch.arange(length, device=device, dtype=torch.float64)
    k = torch.arange(count, device=device, dtype=torch.float64)[:, None]
    basis = torch.cos(torch.pi * (t + 0.5) * k / length)
    basis = basis / basis.norm(dim=1, keepdim=True)
    return basis.to(dtype)


def gaussian_blur2d(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W) images with replicate padding (a fixed spatial low-pass)."""
    if sigma <= 0:
        return images
    radius = int(3 * sigma)
    taps = torch.exp(
        -(torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype) ** 2) / (2 * sigma**2)
    )
    taps = taps / taps.sum()
    c = images.shape[1]
    out = F.conv2d(
        F.pad(images, (radius,) * 4, mode="replicate"), taps.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c
    )
    return F.conv2d(out, taps.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
