"""LPIPS perceptual distance (Zhang et al., 2018, VGG16 variant) from weights the user supplies; nothing downloads.

Weights: one safetensors file with torchvision's VGG16 feature keys (`features.{i}.weight` / `.bias`) and the
five LPIPS heads as `lin{k}.weight` (1, C, 1, 1) (the `lpips` package's `lin{k}.model.1.weight` is accepted too).
Convert once with e.g. `safetensors.torch.save_file({**vgg.features.state_dict() prefixed, **lins}, path)`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn
from einops import rearrange
from safetensors.torch import load_file

VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
TAPS = (3, 8, 15, 22, 29)  # ReLU outputs relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
TAP_CHANNELS = (64, 128, 256, 512, 512)


class LPIPS(nn.Module):
    """Frozen LPIPS. forward(x, y) on (B, 3, H, W) or (B, 3, T, H, W) in [-1, 1] -> (B,) distance (frames averaged)."""

    def __init__(self, weights: str | os.PathLike):
        super().__init__()
        layers, channels = [], 3
        for item in VGG16:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU()]
                channels = item
        self.features = nn.Sequential(*layers)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in TAP_CHANNELS)
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self._load(Path(weights))
        self.eval().requires_grad_(False)

    def _load(self, path: Path) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: LPIPS weights not found (supply a safetensors file; nothing downloads)")
        tensors = load_file(path)
        state = {k: v for k, v in tensors.items() if k.startswith("features.")}
        for k in range(len(TAP_CHANNELS)):
            key = next((n for n in (f"lin{k}.weight", f"lin{k}.model.1.weight") if n in tensors), None)
            if key is None:
                raise ValueError(f"{path}: no LPIPS head lin{k}.weight")
            state[f"lins.{k}.weight"] = tensors[key]
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = [m for m in missing if m not in ("shift", "scale")]
        if missing or unexpected:
            raise ValueError(f"{path}: not VGG16-LPIPS weights (missing {missing[:3]}, unexpected {unexpected[:3]})")

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        if x.ndim == 5:
            x, y = (rearrange(v, "b c t h w -> (b t) c h w") for v in (x, y))
        hx, hy = (x - self.shift) / self.scale, (y - self.shift) / self.scale
        total = x.new_zeros(x.shape[0])
        tap = 0
        for index, layer in enumerate(self.features):
            hx, hy = layer(hx), layer(hy)
            if index in TAPS:
                nx = hx / (hx.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
                ny = hy / (hy.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
                total = total + self.lins[tap]((nx - ny).pow(2)).mean(dim=(1, 2, 3))
                tap += 1
                if tap == len(TAPS):
                    break
        return total.view(batch, -1).mean(1)
