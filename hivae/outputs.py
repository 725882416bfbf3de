"""Output dataclasses of the tokenizers (diffusers' BaseOutput: attribute, key or tuple access)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from diffusers.utils import BaseOutput


@dataclass
class EncoderOutput(BaseOutput):
    latent_dist: Any  # HierarchicalLatentDistribution (a plain VideoVAE3D: its grid + a constant dynamics slot)


@dataclass
class DecoderOutput(BaseOutput):
    sample: torch.Tensor  # (B, 3, T, H, W) in [-1, 1]


@dataclass
class ReconstructionOutput(BaseOutput):
    sample: torch.Tensor  # (B, 3, T, H, W) reconstruction
    latent: Any = None  # the latent that was decoded
    kl: torch.Tensor | None = None  # (B,) KL of the posterior to N(0, I), per latent element
    kl_dynamics: torch.Tensor | None = None  # (B,) the dynamics part's KL alone, per element
    swapped: torch.Tensor | None = None  # forward(dynamics_from=...): structure of clip i, dynamics of another
    diffusion_loss: torch.Tensor | None = None  # training only, decoder_type="diffusion": the decoder's loss
