"""Fixed sin-cos position embeddings (any length, so models accept any size) and timestep embeddings."""

from __future__ import annotations

import math

import torch

__all__ = ["sincos_embedding_1d", "sincos_embedding_3d", "timestep_embedding"]


def sincos_embedding_1d(positions: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """positions: (N,) float -> (N, dim) [sin | cos] embedding; `dim` must be even."""
    if dim % 2:
        raise ValueError(f"sin-cos embedding dim must be even, got {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=positions.device) / half)
    angles = positions.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def sincos_embedding_3d(t: int, h: int, w: int, dim: int, device=None) -> torch.Tensor:
    """(t*h*w, dim) embedding of a (t, h, w) grid, flattened t-major; dim split 1/4 time, 3/8 each for h and w."""
    dim_t = (dim // 4) // 2 * 2
    dim_h = ((dim - dim_t) // 2) // 2 * 2
    dim_w = dim - dim_t - dim_h
    if dim_w % 2:
        raise ValueError(f"3D sin-cos embedding needs an even split of dim {dim}")
    grid_t, grid_h, grid_w = torch.meshgrid(
        *(torch.arange(n, dtype=torch.float32, device=device) for n in (t, h, w)), indexing="ij"
    )
    parts = [
        sincos_embedding_1d(grid.flatten(), d) for grid, d in ((grid_t, dim_t), (grid_h, dim_h), (grid_w, dim_w)) if d
    ]
    return torch.cat(parts, dim=-1)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Diffusion/flow time `t` (B,) in [0, 1000] -> (B, dim) sinusoidal features (DiT's TimestepEmbedder input)."""
    return sincos_embedding_1d(t, dim, max_period)
