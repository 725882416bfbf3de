"""Latent containers: the two-part `HierarchicalLatent` and Gaussian posteriors over it.

Shapes (per clip of T frames at H x W):
    structure: (B, d_s, n_q, h_s, w_s)   slow part: n_q temporal queries on a coarse spatial grid
    dynamics:  (B, d_d, t, p_h, p_w)     fast part: every time step, averaged over space to a p_h x p_w grid
Videos longer than one window (tiling) concatenate windows along axis 2 of both parts; such a latent also records the
encoded video length and the window overlap (`num_frames`, `tile_overlap`), which decoding needs to place the
windows: k windows of a given overlap fit several video lengths.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable

import torch
from diffusers.utils.torch_utils import randn_tensor

PARTS = ("structure", "dynamics")


@dataclass
class HierarchicalLatent:
    structure: torch.Tensor  # (B, d_s, n_q, h_s, w_s)
    dynamics: torch.Tensor  # (B, d_d, t, p_h, p_w)
    num_frames: int | None = None  # tiled latents: length of the encoded video
    tile_overlap: int | None = None  # tiled latents: frames shared by neighbouring windows

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> "HierarchicalLatent":
        return self.replace(structure=fn(self.structure), dynamics=fn(self.dynamics))

    def zip_map(self, other: "HierarchicalLatent", fn) -> "HierarchicalLatent":
        return self.replace(structure=fn(self.structure, other.structure), dynamics=fn(self.dynamics, other.dynamics))

    def to(self, *args, **kwargs) -> "HierarchicalLatent":
        return self.map(lambda t: t.to(*args, **kwargs))

    @property
    def batch_size(self) -> int:
        return self.structure.shape[0]

    def numel_per_clip(self) -> int:
        """Numbers stored per clip: everything the decoder needs."""
        return (self.structure.numel() + self.dynamics.numel()) // self.batch_size

    def __getitem__(self, index) -> "HierarchicalLatent":
        return self.map(lambda t: t[index])

    @staticmethod
    def cat(latents: list["HierarchicalLatent"], dim: int = 0) -> "HierarchicalLatent":
        """Concatenate along the batch (dim 0); all latents must share the tiling layout."""
        layouts = {(z.num_frames, z.tile_overlap) for z in latents}
        if len(layouts) > 1:
            raise ValueError(
                f"cannot concatenate latents of different tiling layouts (num_frames, overlap): {layouts}"
            )
        parts = {p: torch.cat([getattr(z, p) for z in latents], dim) for p in PARTS}
        return latents[0].replace(**parts)

    def replace(self, **values) -> "HierarchicalLatent":
        """A copy with some fields (parts or layout) replaced."""
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        return HierarchicalLatent(**(current | values))


class DiagonalGaussian:
    """N(mean, exp(logvar)) over a tensor, with a KL to N(0, I) averaged per element and per sample -> (B,)."""

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor):
        self.mean, self.logvar = mean, logvar.clamp(-30.0, 20.0)
        self.std = torch.exp(0.5 * self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = randn_tensor(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + self.std * noise

    def mode(self) -> torch.Tensor:
        return self.mean

    def kl(self) -> torch.Tensor:
        return 0.5 * (self.mean.pow(2) + self.logvar.exp() - 1.0 - self.logvar).flatten(1).mean(1)


class HierarchicalLatentDistribution:
    """Posterior over both parts; `sample`/`mode` return a `HierarchicalLatent` (with the tiling layout, if any)."""

    def __init__(
        self,
        structure: DiagonalGaussian,
        dynamics: DiagonalGaussian,
        num_frames: int | None = None,
        tile_overlap: int | None = None,
    ):
        self.structure, self.dynamics = structure, dynamics
        self.layout = {"num_frames": num_frames, "tile_overlap": tile_overlap}

    def sample(self, generator: torch.Generator | None = None) -> HierarchicalLatent:
        return HierarchicalLatent(self.structure.sample(generator), self.dynamics.sample(generator), **self.layout)

    def mode(self) -> HierarchicalLatent:
        return HierarchicalLatent(self.structure.mode(), self.dynamics.mode(), **self.layout)

    @property
    def mean(self) -> HierarchicalLatent:
        return self.mode()

    def kl(self) -> torch.Tensor:
        """(B,) mean of the two parts' per-element KL."""
        return 0.5 * (self.structure.kl() + self.dynamics.kl())
