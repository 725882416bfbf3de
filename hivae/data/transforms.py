"""Frame conversions: uint8 frames <-> float video tensors, resize + centre crop."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange


def parse_size(size: int | Sequence[int] | None, name: str = "size") -> tuple[int, int] | None:
    """`None`, an int or an (H, W) pair of positive ints -> (H, W) or None."""
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    try:
        height, width = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or an (H, W) pair, got {size!r}")
    if height <= 0 or width <= 0:
        raise ValueError(f"{name} must be positive, got {(height, width)}")
    return height, width


def resize_center_crop(video: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """Resize `(C, T, H, W)` so it covers `size` (keeping aspect), then centre-crop to exactly `size`."""
    out_h, out_w = parse_size(size)
    _, _, height, width = video.shape
    scale = max(out_h / height, out_w / width)
    new_h, new_w = max(out_h, round(height * scale)), max(out_w, round(width * scale))
    if (new_h, new_w) != (height, width):
        frames = rearrange(video, "c t h w -> t c h w")
        frames = F.interpolate(frames, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
        video = rearrange(frames, "t c h w -> c t h w")
    top, left = (new_h - out_h) // 2, (new_w - out_w) // 2
    return video[:, :, top : top + out_h, left : left + out_w]


def grid_size(height: int, width: int, short_side: int, multiple: int) -> tuple[int, int]:
    """(H, W) after scaling the shorter side to `short_side` (aspect kept) and cropping each side down to a
    multiple of `multiple`."""
    scale = short_side / min(height, width)
    new_h, new_w = max(short_side, round(height * scale)), max(short_side, round(width * scale))
    return new_h // multiple * multiple, new_w // multiple * multiple


def fit_to_grid(video: torch.Tensor, short_side: int, multiple: int) -> torch.Tensor:
    """Resize `(C, T, H, W)` so its shorter side is `short_side`, keeping the aspect ratio, then centre-crop each side
    down to a multiple of `multiple` (a convolutional tokenizer's spatial factor): any frame size in, nothing
    stretched, at most `multiple - 1` pixels cut per side."""
    if short_side < multiple or short_side % multiple:
        raise ValueError(f"short side {short_side} must be a positive multiple of {multiple}")
    _, _, height, width = video.shape
    return resize_center_crop(video, grid_size(height, width, short_side, multiple))


def frames_to_tensor(frames: np.ndarray, size: int | Sequence[int] | None = None) -> torch.Tensor:
    """uint8 `(T, H, W, 3)` -> float `(3, T, H, W)` in [-1, 1], optionally resized and centre-cropped."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
    video = rearrange(torch.from_numpy(np.ascontiguousarray(frames)), "t h w c -> c t h w").float() / 127.5 - 1.0
    if size is not None:
        video = resize_center_crop(video, size).clamp(-1.0, 1.0)
    return video


def tensor_to_frames(video: torch.Tensor) -> np.ndarray:
    """float `(3, T, H, W)` in [-1, 1] -> uint8 `(T, H, W, 3)`."""
    if video.ndim != 4 or video.shape[0] != 3:
        raise ValueError(f"video must be (3, T, H, W), got {tuple(video.shape)}")
    video = ((video.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return rearrange(video, "c t h w -> t h w c").numpy()
