"""Structure / global-motion branch: a Q-Former over time at every spatial site, then spatial downsampling.

VidTwin's Structure latent and Hi-VAE's global-motion latent: n_q learned queries cross-attend over the T time steps
of each site (keeping the low-frequency motion trend), strided convolutions remove spatial redundancy, and a 1x1
projection gives mean and log-variance of `d_s` channels.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from einops import rearrange, reduce

from .encoder import FrameEncoder
from .layers import Attention, Downsample2x, Mlp, ResBlock, gaussian_blur2d, sincos_embedding_1d


class QFormerLayer(nn.Module):
    """Queries cross-attend to the sequence, then self-attend, then an MLP (pre-norm)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm_q, self.norm_kv, self.norm_self, self.norm_mlp = (nn.LayerNorm(dim) for _ in range(4))
        self.cross, self.self_attn, self.mlp = Attention(dim, heads), Attention(dim, heads), Mlp(dim)

    def forward(self, queries: torch.Tensor, sequence: torch.Tensor) -> torch.Tensor:
        queries = queries + self.cross(self.norm_q(queries), self.norm_kv(sequence))
        queries = queries + self.self_attn(self.norm_self(queries))
        return queries + self.mlp(self.norm_mlp(queries))


class QFormer(nn.Module):
    """(N, T, C) sequences -> (N, n_queries, C) summaries."""

    def __init__(self, dim: int, num_queries: int, depth: int = 2, heads: int = 4):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(num_queries, dim) * 0.02)
        self.layers = nn.ModuleList(QFormerLayer(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        n, t, c = sequence.shape
        sequence = sequence + sincos_embedding_1d(torch.arange(t, device=sequence.device), c).to(sequence.dtype)
        queries = self.queries.to(sequence.dtype).expand(n, -1, -1)
        for layer in self.layers:
            queries = layer(queries, sequence)
        return self.norm(queries)


class StructureBranch(nn.Module):
    """z (B, C, T, h, w) -> mean, logvar (B, d_s, n_q, h / 2**down, w / 2**down)."""

    def __init__(
        self, width: int, latent_channels: int, num_queries: int, downsample: int = 1, depth: int = 2, heads: int = 4
    ):
        super().__init__()
        self.qformer = QFormer(width, num_queries, depth, heads)
        blocks = []
        for _ in range(downsample):
            blocks += [Downsample2x(width), ResBlock(width, temporal_kernel=1)]
        self.down = nn.Sequential(*blocks)
        self.to_moments = nn.Sequential(nn.GroupNorm(8, width), nn.SiLU(), nn.Conv3d(width, 2 * latent_channels, 1))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, _, h, w = z.shape
        summary = self.qformer(rearrange(z, "b c t h w -> (b h w) t c"))  # (B*h*w, n_q, C)
        grid = rearrange(summary, "(b h w) n c -> b c n h w", b=b, h=h, w=w)  # queries take the time axis
        return self.to_moments(self.down(grid)).chunk(2, dim=1)


class SlowStructureBranch(nn.Module):
    """Video (B, 3, T, H, W) -> mean, logvar (B, d_s, T / window, H / f, W / f): one query per window of frames.

    Low-pass in time by construction (DESIGN.md section 6): each window of `window` frames is reduced to its
    per-pixel maximum (or mean) *before* any learned layer, so a pattern whose period fits in the window (blinking on
    and off, a pulse, a jump back and forth) reaches the structure only as its envelope; what changes from window
    to window is the slow path. Each reduced frame is encoded by a `FrameEncoder`.
    """

    def __init__(
        self,
        in_channels: int,
        channels: tuple[int, ...],
        patch: int,
        latent_channels: int,
        window: int = 4,
        pool: str = "max",
        blur: float = 0.0,
    ):
        super().__init__()
        self.blur = blur
        if pool not in ("max", "mean", "presence"):
            raise ValueError(f"structure_pool must be 'max', 'mean' or 'presence', got {pool!r}")
        self.window, self.pool = window, pool
        self.encoder = FrameEncoder(in_channels, channels, patch, 2 * latent_channels)

    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = video.shape[0]
        if self.pool == "presence":  # mean of the window's frames, each weighted by how much differs from the clip
            background = video.flatten(2).median(dim=2).values[:, :, None, None, None]
            presence = (video - background).abs().amax(dim=1, keepdim=True).mean(dim=(3, 4), keepdim=True)
            presence = (presence > 0.1 * presence.amax(dim=2, keepdim=True)).to(video.dtype) + 1e-3  # (B, 1, T, 1, 1)
            weights = presence / reduce(
                presence, "b c (n w) h x -> b c n h x", "sum", w=self.window
            ).repeat_interleave(self.window, dim=2)
            slow = reduce(video * weights, "b c (n w) h x -> (b n) c h x", "sum", w=self.window)
        else:
            slow = reduce(video, "b c (n w) h x -> (b n) c h x", self.pool, w=self.window)  # envelope of each window
        slow = gaussian_blur2d(slow, self.blur)  # sub-cell jumps and size swings of a pattern average out
        moments = rearrange(self.encoder(slow), "(b n) c h w -> b c n h w", b=b)
        return moments.chunk(2, dim=1)
