"""Input checks shared by the models and pipelines: clear errors before any compute."""

from __future__ import annotations

import torch


def check_video(x: torch.Tensor, name: str = "video", spatial_factor: int = 1, channels: int = 3) -> None:
    """Require a finite floating tensor (B, channels, T, H, W) with H, W divisible by `spatial_factor`."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (B, {channels}, T, H, W), got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating tensor in [-1, 1], got dtype {x.dtype} (convert uint8 with x/127.5-1)"
        )
    if x.ndim != 5 or x.shape[1] != channels:
        raise ValueError(f"{name} must have shape (B, {channels}, T, H, W), got {tuple(x.shape)}")
    height, width = x.shape[-2:]
    if height % spatial_factor or width % spatial_factor:
        raise ValueError(f"{name}: height and width must be multiples of {spatial_factor}, got {height}x{width}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or Inf values")


def check_finite(tensor: torch.Tensor, name: str) -> None:
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or Inf values")
