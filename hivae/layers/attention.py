"""Multi-head attention through `F.scaled_dot_product_attention` (flash / memory-efficient kernels when available).

The backend is a process-wide switch: "sdpa" (default), "math" (plain softmax(QK^T)V, for debugging and exact
reference), or "xformers" (only if installed; CUDA only).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

__all__ = ["Attention", "set_attention_backend"]

_BACKEND = "sdpa"


def set_attention_backend(name: str) -> None:
    """Choose how every `Attention` computes: "sdpa", "math" or "xformers"."""
    global _BACKEND
    if name not in ("sdpa", "math", "xformers"):
        raise ValueError(f"attention backend must be 'sdpa', 'math' or 'xformers', got {name!r}")
    if name == "xformers":
        try:
            import xformers.ops  # noqa: F401
        except ImportError:
            raise ImportError("attention backend 'xformers' needs `pip install hivae[xformers]` (CUDA only)")
    _BACKEND = name


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """q: (B, heads, Nq, d), k/v: (B, heads, Nk, d), mask: bool (B, 1|heads, Nq|1, Nk), True = attend."""
    if _BACKEND == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    if _BACKEND == "xformers":
        import xformers.ops as xops

        bias = (
            None
            if mask is None
            else torch.zeros(mask.shape, dtype=q.dtype, device=q.device)
            .masked_fill(~mask, float("-inf"))
            .expand(q.shape[0], q.shape[1], q.shape[2], k.shape[2])
        )
        out = xops.memory_efficient_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_bias=bias)
        return out.transpose(1, 2)
    scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-1) @ v


class Attention(nn.Module):
    """Self-attention, or cross-attention when `context` is given. x: (B, N, dim), context: (B, M, context_dim)."""

    def __init__(self, dim: int, heads: int = 4, context_dim: int | None = None, qkv_bias: bool = True):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=qkv_bias)
        self.to_kv = nn.Linear(context_dim or dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        context = x if context is None else context
        q = rearrange(self.to_q(x), "b n (h d) -> b h n d", h=self.heads)
        k, v = rearrange(self.to_kv(context), "b m (two h d) -> two b h m d", two=2, h=self.heads)
        out = attention(q, k, v, None if mask is None else mask[:, None, None, :])
        return self.proj(rearrange(out, "b h n d -> b n (h d)"))
