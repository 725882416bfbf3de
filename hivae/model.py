"""`HiVAE`: the hierarchical video tokenizer tying encoder, structure and dynamics branches and the decoder.

    video (B, 3, T, H, W) --Encoder--> z (B, C, T, h, w) --StructureBranch--> structure (B, d_s, n_q, h_s, w_s)
                                                        --DynamicsBranch---> dynamics  (B, d_d, T, p_h, p_w)
    HierarchicalLatent --LatentFusion--> (B, C, T, h, w) --PixelDecoder--> video (B, 3, T, H, W)

Clips longer than `num_frames` are split into windows (`enable_tiling`), encoded independently, and blended with
linear ramps where windows overlap; the latent records the video length and overlap, so decoding places every window
at its true offset. `enable_slicing` encodes/decodes one clip of the batch at a time. `encode` and `decode` carry
diffusers' forward hooks, so `enable_model_cpu_offload` moves the tokenizer to the GPU for them.
"""

from __future__ import annotations

import math

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils.accelerate_utils import apply_forward_hook
from diffusers.utils.torch_utils import randn_tensor

from .decoder import FrameDecoder, FrameFusion, LatentFusion, PixelDecoder
from .diffusion_decoder import DiffusionDecoder
from .dynamics import DynamicsBranch, FastDynamicsBranch
from .encoder import Encoder
from .latents import DiagonalGaussian, HierarchicalLatent, HierarchicalLatentDistribution
from .loading import CheckedLoadMixin
from .outputs import DecoderOutput, EncoderOutput, ReconstructionOutput
from .structure import SlowStructureBranch, StructureBranch
from .validation import check_finite, check_video


def window_starts(total: int, window: int, overlap: int) -> list[int]:
    """Start frames of windows of `window` frames covering `total` frames; the last window ends at `total`."""
    if total < window:
        raise ValueError(f"video has {total} frames, need at least num_frames={window}")
    if not 0 <= overlap < window:
        raise ValueError(f"tile overlap must be in [0, {window}), got {overlap}")
    starts = list(range(0, total - window + 1, window - overlap))
    if starts[-1] + window < total:
        starts.append(total - window)
    return starts


def blend_windows(windows: list[torch.Tensor], starts: list[int], total: int) -> torch.Tensor:
    """Average overlapping windows (B, C, T_w, H, W) into (B, C, total, H, W) with linear cross-fades."""
    b, c, length, h, w = windows[0].shape
    out = windows[0].new_zeros(b, c, total, h, w)
    weight = windows[0].new_zeros(1, 1, total, 1, 1)
    for index, (clip, start) in enumerate(zip(windows, starts)):
        ramp = torch.ones(length, device=clip.device, dtype=clip.dtype)
        if index > 0:  # fade in over the overlap with the previous window
            overlap = starts[index - 1] + length - start
            ramp[:overlap] = torch.linspace(0, 1, overlap + 2, device=clip.device, dtype=clip.dtype)[1:-1]
        if index < len(starts) - 1:
            overlap = start + length - starts[index + 1]
            if overlap > 0:
                ramp[length - overlap :] = torch.minimum(
                    ramp[length - overlap :],
                    torch.linspace(1, 0, overlap + 2, device=clip.device, dtype=clip.dtype)[1:-1],
                )
        ramp = ramp.view(1, 1, length, 1, 1)
        out[:, :, start : start + length] += clip * ramp
        weight[:, :, start : start + length] += ramp
    return out / weight


# config keys of the latent statistics (set by `set_latent_statistics`, used by `normalize_latent`)
LATENT_STATISTICS = ("structure_shift", "structure_scale", "dynamics_shift", "dynamics_scale")


class HiVAE(CheckedLoadMixin, ModelMixin, ConfigMixin):
    """Hierarchical video VAE with a slow structure latent and a fast dynamics latent.

    Two backbones share the latent layout and the API:
    - `backbone="spacetime"` (the first design): 3D-conv res-blocks and a factorised space-time transformer give a
      base latent; a Q-Former over time makes the structure, a spatial average the dynamics; a space-time decoder.
    - `backbone="frame"` (efficient, two timescales by construction): pixel unshuffle by `patch_size` and per-frame
      2D convolutions only. Structure: each window of `structure_window` frames is reduced (`structure_pool`) before
      encoding (one query per window, so `num_queries = num_frames / structure_window`): a fast pattern cannot
      enter. Dynamics: per-frame features with coordinate channels, averaged over space, minus their projection on
      the `dynamics_lowpass` slowest cosines: slow content cannot enter. The decoder maps queries to frames and
      renders each frame with 2D blocks FiLM-modulated by its dynamics.

    Args:
        sample_size: training clip side H = W in pixels (other sizes work if divisible by `spatial_factor`).
        num_frames: frames T per clip (per window when tiling).
        base_channels, channel_mults: conv widths per level; 2**(len(channel_mults)-1) = spatial factor of `z`.
        width, encoder_depth, decoder_depth, heads: space-time transformer size of encoder and decoder.
        structure_channels (d_s), num_queries (n_q), structure_downsample, qformer_depth: structure branch.
        dynamics_channels (d_d), dynamics_pool ((p_h, p_w)): dynamics branch.
        decoder_type: "deterministic" (one pass) or "diffusion": the deterministic output refined by a conditional
            flow-matching decoder (`hivae.diffusion_decoder`) in `diffusion_steps` steps by default.
        diffusion_channels, diffusion_patch_size, diffusion_residual_scale, shortcut_fraction: width, input patch
            size, residual units (about the residual's std) and shortcut-objective share of the diffusion decoder.
        structure_shift/scale, dynamics_shift/scale: latent statistics used by `normalize_latent` for the DiT.
        backbone, patch_size, structure_window, structure_pool, dynamics_width, dynamics_patch, dynamics_lowpass:
            the efficient backbone (see above); `channel_mults` sets its encoder/decoder levels, `width` its fused
            feature width. structure_blur: Gaussian sigma (px) of the fixed spatial low-pass in front of
            the structure encoder. dynamics_noise: training-time Gaussian noise on the dynamics latent, as a fraction of
            its rms over the batch (scale-free): the decoder learns to ignore deviations that small, such as the
            mean over clips of random-phase patterns, and a steady clip keeps decoding as steady. dynamics_relative:
            pool the dynamics features to log-mass and centroid, free of the object's look (`FastDynamicsBranch`).
            dynamics_warp: the frame decoder resamples each rendered frame by an affine map read from its dynamics
            and pooled features (global motion: pan, zoom, shake), identity at initialisation (`FrameDecoder`).
            dynamics_stride: the dynamics latent keeps one step per `dynamics_stride` frames (T / stride steps, frame
            features averaged over each group, interpolated back to frames on decode): at a small budget, where the
            per-frame latent would take a third or more of the numbers, more of them go to the structure.
    """

    _supports_gradient_checkpointing = False

    @register_to_config
    def __init__(
        self,
        sample_size: int = 32,
        num_frames: int = 16,
        in_channels: int = 3,
        base_channels: int = 32,
        channel_mults: tuple[int, ...] = (1, 2, 2, 2),
        width: int = 128,
        encoder_depth: int = 2,
        decoder_depth: int = 2,
        heads: int = 4,
        structure_channels: int = 4,
        num_queries: int = 4,
        structure_downsample: int = 1,
        qformer_depth: int = 2,
        dynamics_channels: int = 2,
        dynamics_pool: tuple[int, int] = (1, 1),
        decoder_type: str = "deterministic",
        diffusion_channels: int = 32,
        diffusion_steps: int = 4,
        diffusion_patch_size: int = 2,
        diffusion_residual_scale: float = 0.05,
        shortcut_fraction: float = 0.25,
        structure_shift: float = 0.0,
        structure_scale: float = 1.0,
        dynamics_shift: float = 0.0,
        dynamics_scale: float = 1.0,
        backbone: str = "spacetime",
        patch_size: int = 4,
        structure_window: int = 4,
        structure_pool: str = "max",
        dynamics_width: int = 32,
        dynamics_patch: int = 8,
        dynamics_lowpass: int = 4,
        structure_blur: float = 0.0,
        dynamics_noise: float = 0.0,
        dynamics_relative: bool = False,
        dynamics_warp: bool = False,
        dynamics_stride: int = 1,
    ):
        super().__init__()
        if decoder_type not in ("deterministic", "diffusion"):
            raise ValueError(f"decoder_type must be 'deterministic' or 'diffusion', got {decoder_type!r}")
        if backbone not in ("spacetime", "frame"):
            raise ValueError(f"backbone must be 'spacetime' or 'frame', got {backbone!r}")
        channel_mults = tuple(channel_mults)
        if dynamics_warp and backbone != "frame":
            raise ValueError(f"dynamics_warp needs backbone='frame', got backbone={backbone!r}")
        if dynamics_stride != 1 and backbone != "frame":
            raise ValueError(f"dynamics_stride > 1 needs backbone='frame', got backbone={backbone!r}")
        if backbone == "frame":
            if num_frames % structure_window or num_queries != num_frames // structure_window:
                raise ValueError(
                    f"backbone='frame' takes one structure query per window: num_queries must be num_frames / "
                    f"structure_window = {num_frames} / {structure_window}, got {num_queries}"
                )
            if tuple(dynamics_pool) != (1, 1) or structure_downsample != 0:
                raise ValueError("backbone='frame' needs dynamics_pool=(1, 1) and structure_downsample=0")
            channels = tuple(base_channels * m for m in channel_mults)
            cond_dim = width // 2
            self.encoder = None
            self.structure_branch = SlowStructureBranch(
                in_channels, channels, patch_size, structure_channels, structure_window, structure_pool, structure_blur
            )
            self.dynamics_branch = FastDynamicsBranch(
                in_channels,
                (dynamics_width,),
                dynamics_patch,
                dynamics_channels,
                num_frames,
                dynamics_lowpass,
                dynamics_relative,
                dynamics_stride,
            )
            self.fusion = FrameFusion(
                width, structure_channels, dynamics_channels, num_queries, num_frames, cond_dim, dynamics_stride
            )
            self.decoder = FrameDecoder(width, channels[::-1], patch_size, in_channels, cond_dim, dynamics_warp)
        else:
            self.encoder = Encoder(in_channels, base_channels, channel_mults, width, encoder_depth, heads)
            self.structure_branch = StructureBranch(
                width, structure_channels, num_queries, structure_downsample, qformer_depth, heads
            )
            self.dynamics_branch = DynamicsBranch(width, dynamics_channels, tuple(dynamics_pool))
            self.fusion = LatentFusion(
                width, structure_channels, dynamics_channels, num_queries, num_frames, structure_downsample
            )
            self.decoder = PixelDecoder(width, decoder_depth, heads, base_channels, channel_mults, in_channels)
        feature_levels = int(math.log2(self.spatial_factor)) - (0 if backbone == "frame" else structure_downsample)
        self.diffusion_decoder = (
            DiffusionDecoder(
                width,
                diffusion_channels,
                feature_levels,
                in_channels,
                diffusion_patch_size,
                diffusion_residual_scale,
            )
            if decoder_type == "diffusion"
            else None
        )
        self.use_slicing = False
        self.tile_overlap: int | None = None

    # ----------------------------------------------------------------- geometry
    @property
    def spatial_factor(self) -> int:
        """Pixels per structure-latent cell along H and W."""
        c = self.config
        if c.backbone == "frame":
            return c.patch_size * 2 ** (len(c.channel_mults) - 1)
        return 2 ** (len(c.channel_mults) - 1 + c.structure_downsample)

    @property
    def dynamics_steps(self) -> int:
        """Time steps of the dynamics latent per window: num_frames / dynamics_stride."""
        return self.config.num_frames // self.config.dynamics_stride

    def latent_shapes(self, num_frames: int | None = None, height: int | None = None, width: int | None = None):
        """Per-clip shapes ((d_s, n_q, h_s, w_s), (d_d, t, p_h, p_w)) for a clip of the given size."""
        c = self.config
        height, width = height or c.sample_size, width or c.sample_size
        windows = len(window_starts(num_frames or c.num_frames, c.num_frames, self.tile_overlap or 0))
        grid = (height // self.spatial_factor, width // self.spatial_factor)
        return (
            (c.structure_channels, windows * c.num_queries, *grid),
            (c.dynamics_channels, windows * self.dynamics_steps, *c.dynamics_pool),
        )

    @property
    def compression_ratio(self) -> float:
        """(3*T*H*W) / (numbers in structure + dynamics) for one training-size clip."""
        c = self.config
        structure, dynamics = self.latent_shapes()
        latent = torch.Size(structure).numel() + torch.Size(dynamics).numel()
        return c.in_channels * c.num_frames * c.sample_size**2 / latent

    # ----------------------------------------------------------------- tiling / slicing switches
    def enable_tiling(self, overlap: int = 4) -> None:
        """Accept clips longer than `num_frames`: windows overlapping by `overlap` frames, blended on decode."""
        window_starts(self.config.num_frames, self.config.num_frames, overlap)  # validates overlap
        self.tile_overlap = overlap

    def disable_tiling(self) -> None:
        self.tile_overlap = None

    def enable_slicing(self) -> None:
        """Encode and decode one clip of the batch at a time (lower peak memory)."""
        self.use_slicing = True

    def disable_slicing(self) -> None:
        self.use_slicing = False

    # ----------------------------------------------------------------- encode
    def _encode_window(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        z = x if self.encoder is None else self.encoder(x)  # the frame backbone's branches read the video itself
        return (*self.structure_branch(z), *self.dynamics_branch(z))

    def _encode_moments(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        total, window = x.shape[2], self.config.num_frames
        if total != window and self.tile_overlap is None:
            raise ValueError(
                f"video has {total} frames but the model takes num_frames={window}; call enable_tiling() for "
                "longer clips"
            )
        starts = window_starts(total, window, self.tile_overlap or 0)
        parts = [self._encode_window(x[:, :, s : s + window]) for s in starts]
        return tuple(torch.cat(moments, dim=2) for moments in zip(*parts))

    @apply_forward_hook
    def encode(self, x: torch.Tensor, return_dict: bool = True) -> EncoderOutput | tuple:
        """Video (B, 3, T, H, W) in [-1, 1] -> posterior over HierarchicalLatent (see `hivae.latents`).

        A video longer than one window (tiling) gives a latent that records its length and the window overlap.
        """
        check_video(x, "video", self.spatial_factor, self.config.in_channels)
        if self.use_slicing and x.shape[0] > 1:
            moments = [self._encode_moments(clip) for clip in x.split(1)]
            moments = tuple(torch.cat(m, dim=0) for m in zip(*moments))
        else:
            moments = self._encode_moments(x)
        s_mean, s_logvar, d_mean, d_logvar = moments
        tiled = s_mean.shape[2] > self.config.num_queries
        layout = {"num_frames": x.shape[2], "tile_overlap": self.tile_overlap} if tiled else {}
        dist = HierarchicalLatentDistribution(
            DiagonalGaussian(s_mean, s_logvar), DiagonalGaussian(d_mean, d_logvar), **layout
        )
        return EncoderOutput(latent_dist=dist) if return_dict else (dist,)

    # ----------------------------------------------------------------- decode
    def _check_latent(self, latent: HierarchicalLatent) -> int:
        c = self.config
        if not isinstance(latent, HierarchicalLatent):
            raise TypeError(f"latent must be a HierarchicalLatent, got {type(latent).__name__}")
        s, d = latent.structure, latent.dynamics
        if s.ndim != 5 or s.shape[1] != c.structure_channels or s.shape[2] % c.num_queries:
            raise ValueError(
                f"structure latent must be (B, {c.structure_channels}, k*{c.num_queries}, h_s, w_s), got {tuple(s.shape)}"
            )
        windows = s.shape[2] // c.num_queries
        expected = (s.shape[0], c.dynamics_channels, windows * self.dynamics_steps, *c.dynamics_pool)
        if tuple(d.shape) != expected:
            raise ValueError(f"dynamics latent must be {expected} to match the structure latent, got {tuple(d.shape)}")
        check_finite(s, "structure latent")
        check_finite(d, "dynamics latent")
        return windows

    def render(self, latent: HierarchicalLatent) -> tuple[torch.Tensor, torch.Tensor]:
        """One window's deterministic decode (B, 3, T, H, W) and the fused features that condition it."""
        if self.config.backbone == "frame":
            features, cond = self.fusion(latent)
            return self.decoder(features, cond), features
        features = self.fusion(latent)
        return self.decoder(features), features

    def _decode_window(self, latent: HierarchicalLatent, steps: int, generator) -> torch.Tensor:
        video, features = self.render(latent)
        if self.diffusion_decoder is not None and steps > 0:
            video = video + self.diffusion_decoder.sample(video, features, steps, generator)
        return video

    def window_layout(self, latent: HierarchicalLatent, num_frames: int | None = None) -> tuple[int, list[int]]:
        """(video length, window start frames) of a latent: from the latent's own record, or `num_frames`."""
        c = self.config
        windows = self._check_latent(latent)
        if windows == 1:
            return c.num_frames, [0]
        if num_frames is not None and latent.num_frames is not None and num_frames != latent.num_frames:
            raise ValueError(f"num_frames={num_frames}, but the latent was encoded from {latent.num_frames} frames")
        total = num_frames if num_frames is not None else latent.num_frames
        overlap = latent.tile_overlap if latent.tile_overlap is not None else self.tile_overlap
        if total is None or overlap is None:
            raise ValueError(
                f"the latent holds {windows} windows but does not record the video length and overlap (it was not "
                "made by encode with tiling): pass num_frames= and call enable_tiling(overlap) as when encoding"
            )
        starts = window_starts(total, c.num_frames, overlap)
        if len(starts) != windows:
            raise ValueError(
                f"latent holds {windows} windows but {total} frames with overlap {overlap} need {len(starts)}"
            )
        return total, starts

    def _decode_one(self, latent: HierarchicalLatent, num_frames: int | None, steps: int, generator) -> torch.Tensor:
        c = self.config
        total, starts = self.window_layout(latent, num_frames)
        if len(starts) == 1:
            return self._decode_window(latent, steps, generator)
        clips = []
        for index in range(len(starts)):
            part = HierarchicalLatent(
                latent.structure[:, :, index * c.num_queries : (index + 1) * c.num_queries],
                latent.dynamics[:, :, index * self.dynamics_steps : (index + 1) * self.dynamics_steps],
            )
            clips.append(self._decode_window(part, steps, generator))
        return blend_windows(clips, starts, total)

    @apply_forward_hook
    def decode(
        self,
        latent: HierarchicalLatent,
        num_frames: int | None = None,
        return_dict: bool = True,
        num_inference_steps: int | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
    ) -> DecoderOutput | tuple:
        """HierarchicalLatent -> video (B, 3, T, H, W).

        num_frames: length of a tiled video whose latent does not record it. num_inference_steps: diffusion-decoder
        steps (default `config.diffusion_steps`; 0 = deterministic decoder only). generator: its noise; a list gives
        clip i the noise of generator i (as a call on clip i alone with generator i would).
        """
        steps = self.config.diffusion_steps if num_inference_steps is None else num_inference_steps
        if isinstance(generator, list) and len(generator) != latent.batch_size:
            raise ValueError(f"got {len(generator)} generators for a batch of {latent.batch_size}")
        if self.use_slicing and latent.batch_size > 1:
            gens = generator if isinstance(generator, list) else [generator] * latent.batch_size
            video = torch.cat(
                [self._decode_one(latent[i : i + 1], num_frames, steps, gens[i]) for i in range(latent.batch_size)]
            )
        else:
            video = self._decode_one(latent, num_frames, steps, generator)
        return DecoderOutput(sample=video) if return_dict else (video,)

    def forward(
        self,
        sample: torch.Tensor,
        sample_posterior: bool = False,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
        dynamics_from: torch.Tensor | None = None,
    ) -> ReconstructionOutput | tuple:
        """Reconstruct a video: encode, take the posterior mean (or a sample), decode.

        dynamics_from: (n,) batch indices; also decodes the structure of clips 0..n-1 with the dynamics of those clips
        (`swapped`, (n, 3, T, H, W): motion transfer, deterministic decoder).
        """
        dist = self.encode(sample).latent_dist
        latent = dist.sample(generator) if sample_posterior else dist.mode()
        if self.training and sample_posterior and self.config.dynamics_noise > 0:
            rms = latent.dynamics.detach().float().pow(2).mean().sqrt()
            noise = randn_tensor(latent.dynamics.shape, generator=generator, device=latent.dynamics.device)
            noisy = latent.dynamics + (self.config.dynamics_noise * rms * noise).to(latent.dynamics.dtype)
            latent = latent.replace(dynamics=noisy)
        if self.training and self.diffusion_decoder is not None:
            # training: the deterministic reconstruction, plus the diffusion decoder's loss on its residual
            self._check_latent(latent)
            video, features = self.render(latent)
            diffusion_loss, _ = self.diffusion_decoder.loss(
                sample - video.detach(), video.detach(), features, self.config.shortcut_fraction
            )
            extra = {"diffusion_loss": diffusion_loss}
        else:
            video = self.decode(latent, num_frames=sample.shape[2], generator=generator).sample
            extra = {}
        if dynamics_from is not None:  # deterministic decode of the swapped latent (motion transfer)
            mixed = latent[: len(dynamics_from)].replace(dynamics=latent.dynamics[dynamics_from])
            extra["swapped"] = self.decode(mixed, num_frames=sample.shape[2], num_inference_steps=0).sample
        out = ReconstructionOutput(sample=video, latent=latent, kl=dist.kl(), kl_dynamics=dist.dynamics.kl(), **extra)
        return out if return_dict else out.to_tuple()

    # ----------------------------------------------------------------- latent normalisation for the DiT
    def normalize_latent(self, latent: HierarchicalLatent) -> HierarchicalLatent:
        """(z - shift) / scale per part, using the statistics stored in the config."""
        c = self.config
        return latent.replace(
            structure=(latent.structure - c.structure_shift) / c.structure_scale,
            dynamics=(latent.dynamics - c.dynamics_shift) / c.dynamics_scale,
        )

    def denormalize_latent(self, latent: HierarchicalLatent) -> HierarchicalLatent:
        c = self.config
        return latent.replace(
            structure=latent.structure * c.structure_scale + c.structure_shift,
            dynamics=latent.dynamics * c.dynamics_scale + c.dynamics_shift,
        )

    def set_latent_statistics(self, latents: HierarchicalLatent) -> dict[str, float]:
        """Store per-part mean/std of a batch of latents (posterior means) in the config; returns them."""
        values = []
        for part in (latents.structure.float(), latents.dynamics.float()):
            values += [part.mean().item(), part.std().clamp_min(1e-6).item()]
        stats = dict(zip(LATENT_STATISTICS, values))
        self.register_to_config(**stats)
        return stats
