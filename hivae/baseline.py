"""`VideoVAE3D`: a plain 3D-conv video VAE (Cosmos/CogVideoX style, 4x8x8 by default) for side-by-side comparison.

Its latent is one grid (B, c, T/ft, H/fs, W/fs); `latent_channels` sets the compression ratio 3*ft*fs*fs / c (48x at
c=16 for 4x8x8). `patch_size` p > 1 first folds p x p pixels into channels (LTX-Video's patchify, Cosmos' wavelet
step), so the convolutions run at H/p: fs = p * 2**levels, at about 1/p**2 of the compute. Same API and training
script as `HiVAE`: it speaks in `HierarchicalLatent`s whose structure part is
that grid and whose dynamics part is one constant zero per clip, so the latent cache, `HiVAEDiT.from_tokenizer` and the
pipelines run on a plain VAE unchanged (the DiT spends one token on the constant).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

from .latents import DiagonalGaussian, HierarchicalLatent, HierarchicalLatentDistribution
from .layers import ResBlock, fold_pixels, unfold_pixels
from .loading import CheckedLoadMixin
from .outputs import DecoderOutput, EncoderOutput, ReconstructionOutput
from .validation import check_finite, check_video


DYNAMICS_SLOT = (1, 1, 1, 1)  # per-clip shape of the constant dynamics part of a plain VAE's latent


class _Resample(nn.Module):
    """Halve (down) or double (up) H, W and optionally T."""

    def __init__(self, channels: int, temporal: bool, up: bool):
        super().__init__()
        self.factor = (2 if temporal else 1, 2, 2)
        self.up = up
        stride = self.factor if not up else 1
        self.conv = nn.Conv3d(channels, channels, 3, stride=stride, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=self.factor, mode="nearest")
        return self.conv(x)


class VideoVAE3D(CheckedLoadMixin, ModelMixin, ConfigMixin):
    """Plain 3D-conv VAE. Spatial factor patch_size * 2**(len(channel_mults)-1), temporal 2**temporal_downsample."""

    @register_to_config
    def __init__(
        self,
        sample_size: int = 32,
        num_frames: int = 16,
        in_channels: int = 3,
        base_channels: int = 32,
        channel_mults: tuple[int, ...] = (1, 2, 2, 4),
        temporal_downsample: int = 2,
        latent_channels: int = 16,
        latent_shift: float = 0.0,
        latent_scale: float = 1.0,
        patch_size: int = 1,
    ):
        super().__init__()
        channels = [base_channels * m for m in channel_mults]
        levels = len(channels) - 1
        if temporal_downsample > levels:
            raise ValueError(f"temporal_downsample={temporal_downsample} exceeds the {levels} downsampling levels")
        if patch_size < 1:
            raise ValueError(f"patch_size must be >= 1, got {patch_size}")
        folded = in_channels * patch_size**2
        self.conv_in = nn.Conv3d(folded, channels[0], 3, padding=1)
        down = []
        for level, ch in enumerate(channels):
            down.append(ResBlock(channels[max(level - 1, 0)], ch))
            if level < levels:
                down.append(_Resample(ch, temporal=level < temporal_downsample, up=False))
        self.down = nn.Sequential(*down, ResBlock(channels[-1]))
        self.to_moments = nn.Conv3d(channels[-1], 2 * latent_channels, 1)
        self.from_latent = nn.Conv3d(latent_channels, channels[-1], 3, padding=1)
        up, rev = [ResBlock(channels[-1])], channels[::-1]
        for level, ch in enumerate(rev):
            up.append(ResBlock(rev[max(level - 1, 0)], ch))
            if level < levels:
                up.append(_Resample(ch, temporal=levels - 1 - level < temporal_downsample, up=True))
        self.up = nn.Sequential(*up)
        self.conv_out = nn.Sequential(
            nn.GroupNorm(min(8, channels[0]), channels[0]),
            nn.SiLU(),
            nn.Conv3d(channels[0], folded, 3, padding=1),
        )

    @property
    def spatial_factor(self) -> int:
        return self.config.patch_size * 2 ** (len(self.config.channel_mults) - 1)

    @property
    def temporal_factor(self) -> int:
        return 2**self.config.temporal_downsample

    def latent_shapes(self, num_frames: int | None = None, height: int | None = None, width: int | None = None):
        """Per-clip shapes ((c, T/ft, H/fs, W/fs), (1, 1, 1, 1)): the grid, then the constant dynamics slot."""
        c = self.config
        height, width = height or c.sample_size, width or c.sample_size
        t = (num_frames or c.num_frames) // self.temporal_factor
        return (c.latent_channels, t, height // self.spatial_factor, width // self.spatial_factor), DYNAMICS_SLOT

    @property
    def compression_ratio(self) -> float:
        c = self.config
        return c.in_channels * c.num_frames * c.sample_size**2 / torch.Size(self.latent_shapes()[0]).numel()  # the grid

    def encode(self, x: torch.Tensor, return_dict: bool = True) -> EncoderOutput | tuple:
        """(B, 3, T, H, W) -> posterior over HierarchicalLatent: the grid (B, c, T/ft, H/fs, W/fs) as structure, a
        constant zero (B, 1, 1, 1, 1) as dynamics (its posterior is the prior: mode 0, KL 0; decoding ignores it)."""
        check_video(x, "video", self.spatial_factor, self.config.in_channels)
        if x.shape[2] % self.temporal_factor:
            raise ValueError(f"video has {x.shape[2]} frames, need a multiple of {self.temporal_factor}")
        x = fold_pixels(x, self.config.patch_size)
        mean, logvar = self.to_moments(self.down(self.conv_in(x))).chunk(2, dim=1)
        slot = mean.new_zeros(len(mean), *DYNAMICS_SLOT)
        dist = HierarchicalLatentDistribution(DiagonalGaussian(mean, logvar), DiagonalGaussian(slot, slot))
        return EncoderOutput(latent_dist=dist) if return_dict else (dist,)

    def decode(
        self,
        latent: HierarchicalLatent | torch.Tensor,
        num_frames: int | None = None,
        return_dict: bool = True,
        num_inference_steps: int | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
    ) -> DecoderOutput | tuple:
        """HierarchicalLatent (or its grid (B, c, t, h, w) alone) -> video (B, 3, T, H, W).

        num_frames, num_inference_steps and generator are HiVAE's decode arguments, accepted so that pipelines can call
        either tokenizer; the decoder is deterministic and decodes one window of `config.num_frames` frames."""
        grid = latent.structure if isinstance(latent, HierarchicalLatent) else latent
        if grid.ndim != 5 or grid.shape[1] != self.config.latent_channels:
            raise ValueError(f"latent must be (B, {self.config.latent_channels}, t, h, w), got {tuple(grid.shape)}")
        check_finite(grid, "latent")
        video = unfold_pixels(self.conv_out(self.up(self.from_latent(grid))), self.config.patch_size)
        return DecoderOutput(sample=video) if return_dict else (video,)

    # ------------------------------------------------------------ latent normalisation for the DiT (grid only)
    def normalize_latent(self, latent: HierarchicalLatent) -> HierarchicalLatent:
        """(grid - latent_shift) / latent_scale; the constant dynamics slot stays zero."""
        return latent.replace(structure=(latent.structure - self.config.latent_shift) / self.config.latent_scale)

    def denormalize_latent(self, latent: HierarchicalLatent) -> HierarchicalLatent:
        return latent.replace(structure=latent.structure * self.config.latent_scale + self.config.latent_shift)

    def set_latent_statistics(self, latents: HierarchicalLatent) -> dict[str, float]:
        """Store the mean/std of a batch of grids (posterior means) as latent_shift/latent_scale; returns them."""
        grid = latents.structure.float()
        stats = {"latent_shift": grid.mean().item(), "latent_scale": grid.std().clamp_min(1e-6).item()}
        self.register_to_config(**stats)
        return stats

    def forward(
        self,
        sample: torch.Tensor,
        sample_posterior: bool = False,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
    ) -> ReconstructionOutput | tuple:
        dist = self.encode(sample).latent_dist
        latent = dist.sample(generator) if sample_posterior else dist.mode()
        out = ReconstructionOutput(sample=self.decode(latent).sample, latent=latent, kl=dist.structure.kl())
        return out if return_dict else out.to_tuple()
