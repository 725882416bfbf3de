"""Decoding: fuse the structure and dynamics latents into per-frame features, then render pixels.

Two backbones. `spacetime` (the first design): `LatentFusion` is the conditioning shared by every decoder type: the structure latent is upsampled in space and its
n_q queries are mapped to the T frames (VidTwin's kernel-1 convolution over the query axis); the dynamics latent is
embedded and broadcast over space; the two are summed. `PixelDecoder` is the deterministic decoder. `frame` (the
efficient design): `FrameFusion` maps the structure queries to frames and embeds each frame's dynamics, and
`FrameDecoder` renders every frame with 2D blocks FiLM-modulated by that embedding, ending in pixel shuffle.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from .latents import HierarchicalLatent
from .layers import FiLMResBlock2d, ResBlock, SpaceTimeTransformer, Upsample2x


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


def interpolation_matrix(num_queries: int, num_frames: int) -> torch.Tensor:
    """(num_frames, num_queries) linear interpolation from window centres to frames (each row sums to 1)."""
    window = num_frames / num_queries
    centres = torch.arange(num_queries) * window + (window - 1) / 2
    position = torch.arange(num_frames, dtype=torch.float32)
    weights = (1 - (position[:, None] - centres[None]).abs() / window).clamp_min(0)
    weights[position < centres[0], 0] = 1.0  # hold the first and last window's value at the clip's ends
    weights[position > centres[-1], -1] = 1.0
    return weights / weights.sum(dim=1, keepdim=True)


class FrameFusion(nn.Module):
    """HierarchicalLatent -> fused features (B, width, T, h_s, w_s) and a per-frame dynamics embedding (B*T, cond).

    The efficient backbone's conditioning: structure queries are mapped to frames by a learned linear map over the
    query axis (initialised as linear interpolation between window centres); the dynamics of each frame is embedded
    once, added to every site and handed to the decoder's FiLM layers. A dynamics latent at a lower rate
    (`dynamics_stride` > 1: T / stride steps) is first interpolated linearly to the T frames.
    """

    def __init__(
        self,
        width: int,
        structure_channels: int,
        dynamics_channels: int,
        num_queries: int,
        num_frames: int,
        cond_dim: int,
        dynamics_stride: int = 1,
    ):
        super().__init__()
        self.dynamics_stride = dynamics_stride
        self.register_buffer(  # (T, T / stride): dynamics steps -> frames
            "dynamics_to_frames", interpolation_matrix(num_frames // dynamics_stride, num_frames), persistent=False
        )
        self.structure_in = nn.Conv3d(structure_channels, width, 1)
        self.query_to_time = nn.Linear(num_queries, num_frames)
        with torch.no_grad():
            self.query_to_time.weight.copy_(interpolation_matrix(num_queries, num_frames))
            self.query_to_time.bias.zero_()
        self.dynamics_in = nn.Sequential(
            nn.Linear(dynamics_channels, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim), nn.SiLU()
        )
        self.dynamics_to_width = nn.Linear(cond_dim, width)

    def forward(self, latent: HierarchicalLatent) -> tuple[torch.Tensor, torch.Tensor]:
        structure = self.structure_in(latent.structure)  # (B, C, n_q, h, w)
        structure = rearrange(
            self.query_to_time(rearrange(structure, "b c n h w -> b c h w n")), "b c h w t -> b c t h w"
        )
        dynamics = rearrange(latent.dynamics, "b c t ph pw -> b t (c ph pw)")  # (B, T / stride, d_d)
        if self.dynamics_stride > 1:
            dynamics = torch.einsum("ft,btc->bfc", self.dynamics_to_frames.to(dynamics.dtype), dynamics)
        cond = self.dynamics_in(dynamics)  # (B, T, cond)
        features = structure + rearrange(self.dynamics_to_width(cond), "b t c -> b c t 1 1")
        return features, rearrange(cond, "b t c -> (b t) c")


class FrameDecoder(nn.Module):
    """Fused features (B, width, T, h, w) + per-frame cond (B*T, cond) -> pixels (B, 3, T, h*f, w*f).

    Per-frame 2D res-blocks (FiLM-modulated by the frame's dynamics) from coarse to fine with nearest upsampling in
    between, then a convolution to `patch`**2 * 3 channels and pixel shuffle; f = patch * 2**(len(channels) - 1).
    `warp=True`: each rendered frame is then resampled by an affine map of the image plane read from its dynamics
    embedding and its fused features averaged over space (the dynamics says how far, the structure may say which
    way); identity at initialisation, border padding. A pan, zoom or shake of the whole frame then costs the dynamics
    a few numbers per frame instead of costing the structure a blurred average of every position.
    """

    def __init__(
        self, width: int, channels: tuple[int, ...], patch: int, out_channels: int, cond_dim: int, warp: bool = False
    ):
        super().__init__()
        self.warp = nn.Linear(cond_dim + width, 6) if warp else None  # (B*T, cond + width) -> change of the map
        if self.warp is not None:
            nn.init.zeros_(self.warp.weight)
            nn.init.zeros_(self.warp.bias)
        self.conv_in = nn.Conv2d(width, channels[0], 3, padding=1)
        self.blocks = nn.ModuleList()
        self.ups = nn.ModuleList()
        for level, ch in enumerate(channels):
            self.blocks.append(FiLMResBlock2d(channels[max(level - 1, 0)], ch, cond_dim))
            if level < len(channels) - 1:
                self.ups.append(nn.Conv2d(ch, ch, 3, padding=1))
        self.out = nn.Sequential(
            nn.GroupNorm(min(8, channels[-1]), channels[-1]),
            nn.SiLU(),
            nn.Conv2d(channels[-1], out_channels * patch**2, 3, padding=1),
            nn.PixelShuffle(patch),
        )

    def forward(self, features: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        b = features.shape[0]
        frames_in = rearrange(features, "b c t h w -> (b t) c h w")
        h = self.conv_in(frames_in)
        for level, block in enumerate(self.blocks):
            h = block(h, cond)
            if level < len(self.ups):
                h = self.ups[level](F.interpolate(h, scale_factor=2, mode="nearest"))
        frames = self.out(h)
        if self.warp is not None:
            frames = affine_warp(frames, self.warp(torch.cat([cond, frames_in.mean(dim=(2, 3))], dim=1)))
        return rearrange(frames, "(b t) c h w -> b c t h w", b=b)


def affine_warp(frames: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """Resample frames (N, C, H, W) at the affine map identity + delta (N, 6) of normalised [-1, 1] coordinates:
    output pixel (x, y) reads input pixel A @ (x, y, 1); bilinear, edge pixels repeated outside the frame."""
    identity = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0], device=frames.device, dtype=frames.dtype)
    theta = rearrange(identity + delta.to(frames.dtype), "n (r k) -> n r k", r=2)
    grid = F.affine_grid(theta, list(frames.shape), align_corners=False)
    return F.grid_sample(frames, grid, mode="bilinear", padding_mode="border", align_corners=False)
