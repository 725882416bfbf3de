"""adaLN modulation (DiT): a conditioning vector sets per-channel shift, scale and gate."""

import torch

__all__ = ["modulate"]


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x: (B, N, C); shift, scale: (B, C)."""
    return x * (1 + scale[:, None]) + shift[:, None]
