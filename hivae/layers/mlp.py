"""Transformer feed-forward block."""

import torch.nn as nn

__all__ = ["Mlp"]


class Mlp(nn.Sequential):
    """Linear -> GELU(tanh) -> Linear on (..., dim)."""

    def __init__(self, dim: int, hidden_ratio: float = 4.0, out_dim: int | None = None):
        hidden = int(dim * hidden_ratio)
        super().__init__(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, out_dim or dim))
