"""Structure / global-motion branch: a Q-Former over time at every spatial site, then spatial downsampling.

VidTwin's Structure latent and Hi-VAE's global-motion latent: n_q learned queries cross-attend over the T time steps
of each site (keeping the low-frequency motion trend), strided convolutions remove spatial redundancy, and a 1x1
projection gives mean and log-variance of `d_s` channels.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from einops import rearrange

from .layers import Attention, Downsample2x, Mlp, ResBlock, sincos_embedding_1d


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
