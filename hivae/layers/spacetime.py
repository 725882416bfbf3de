"""Factorised space-time transformer on video features: spatial attention per frame, temporal attention per site."""

from __future__ import annotations

import torch
import torch.nn as nn
from einops import rearrange

from .attention import Attention
from .embeddings import sincos_embedding_3d
from .mlp import Mlp

__all__ = ["SpaceTimeBlock", "SpaceTimeTransformer"]


class SpaceTimeBlock(nn.Module):
    """Pre-norm block: spatial self-attention, temporal self-attention, MLP. x: (B, T, S, C) with S = H*W sites."""

    def __init__(self, dim: int, heads: int = 4, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm_space, self.norm_time, self.norm_mlp = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn_space, self.attn_time = Attention(dim, heads), Attention(dim, heads)
        self.mlp = Mlp(dim, mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, s, _ = x.shape
        x = rearrange(x, "b t s c -> (b t) s c")
        x = x + self.attn_space(self.norm_space(x))
        x = rearrange(x, "(b t) s c -> (b s) t c", b=b)
        x = x + self.attn_time(self.norm_time(x))
        x = x + self.mlp(self.norm_mlp(x))
        return rearrange(x, "(b s) t c -> b t s c", b=b)


class SpaceTimeTransformer(nn.Module):
    """Adds a 3D sin-cos position embedding, then `depth` SpaceTimeBlocks. (B, C, T, H, W) -> same shape."""

    def __init__(self, dim: int, depth: int = 2, heads: int = 4, mlp_ratio: float = 4.0):
        super().__init__()
        self.blocks = nn.ModuleList(SpaceTimeBlock(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        tokens = rearrange(x, "b c t h w -> b t (h w) c")
        tokens = tokens + rearrange(sincos_embedding_3d(t, h, w, c, x.device), "(t s) c -> t s c", t=t).to(x.dtype)
        for block in self.blocks:
            tokens = block(tokens)
        return rearrange(self.norm(tokens), "b t (h w) c -> b c t h w", h=h)
