"""Video quality metrics on `(B, 3, T, H, W)` tensors in [-1, 1] (data range 2), returned per clip `(B,)`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape or x.ndim != 5:
        raise ValueError(
            f"expected two (B, C, T, H, W) tensors of equal shape, got {tuple(x.shape)}, {tuple(y.shape)}"
        )


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB over each whole clip -> `(B,)`."""
    _check_pair(x, y)
    mse = (x.double() - y.double()).pow(2).flatten(1).mean(1)
    return (10.0 * torch.log10(data_range**2 / mse.clamp_min(1e-20))).float()


def _gaussian_window(size: int, sigma: float, dtype: torch.dtype, device=None) -> torch.Tensor:
    coords = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def _valid_blur_matrix(kernel: torch.Tensor, length: int) -> torch.Tensor:
    """(length - k + 1, length) matrix applying a 1D kernel of k taps over the valid region."""
    k = kernel.numel()
    matrix = torch.zeros(length - k + 1, length, dtype=kernel.dtype, device=kernel.device)
    for i in range(length - k + 1):
        matrix[i, i : i + k] = kernel
    return matrix


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 2.0,
    window: int = 11,
    sigma: float = 1.5,
    compute_dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Structural similarity per frame (Gaussian window, valid region, channels averaged), averaged -> `(B,)`.

    compute_dtype: float64 for metrics; a training loss passes its own dtype (float64 is slow and has no gradient
    kernels on some accelerators).

    Matches `skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    channel_axis=...)` (scikit-image truncates its Gaussian at 3.5 sigma: 11 taps).
    """
    _check_pair(x, y)
    batch = x.shape[0]
    x, y = (rearrange(v.to(compute_dtype), "b c t h w -> (b t c) 1 h w") for v in (x, y))
    size = min(window, x.shape[-2], x.shape[-1])
    size -= 1 - size % 2  # odd
    kernel = _gaussian_window(size, sigma, x.dtype, x.device)
    rows, cols = _valid_blur_matrix(kernel, x.shape[-2]), _valid_blur_matrix(kernel, x.shape[-1])
    blur = lambda v: rows @ v @ cols.T  # noqa: E731  (valid separable Gaussian blur as two matrix products)
    mu_x, mu_y = blur(x), blur(y)
    var_x, var_y = blur(x * x) - mu_x**2, blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(1).view(batch, -1).mean(1).float()


def temporal_consistency(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute error between the frame differences of `x` and `y` (0 = same motion) -> `(B,)`."""
    _check_pair(x, y)
    if x.shape[2] < 2:
        raise ValueError(f"temporal consistency needs at least 2 frames, got T={x.shape[2]}")
    dx, dy = x[:, :, 1:] - x[:, :, :-1], y[:, :, 1:] - y[:, :, :-1]
    return (dx - dy).abs().flatten(1).mean(1).float()


def detail_ratio(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fine-detail energy of `x` over that of `y`: mean squared per-frame Laplacian -> `(B,)`.

    1 = as much high-frequency detail as the target; below 1 = blurrier (the usual regression decoder), above 1 =
    noisier. It does not say whether the detail is in the right place: read it beside PSNR.
    """
    _check_pair(x, y)
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64, device=x.device)
    energy = lambda v: F.conv2d(rearrange(v.double(), "b c t h w -> (b t c) 1 h w"), kernel[None, None])  # noqa: E731
    ex, ey = (energy(v).pow(2).view(x.shape[0], -1).mean(1) for v in (x, y))
    return (ex / ey.clamp_min(1e-20)).float()


def foreground_psnr(
    x: torch.Tensor, y: torch.Tensor, background: torch.Tensor, data_range: float = 2.0, threshold: float = 0.1
) -> torch.Tensor:
    """PSNR over the pixels where the target `y` differs from `background` (the moving objects) -> `(B,)`.

    `background`: `(B, 3, 1 or T, H, W)`, e.g. the per-pixel temporal median of `y`.
    """
    _check_pair(x, y)
    mask = ((y - background).abs().amax(1, keepdim=True) > threshold).expand_as(y).double()
    sq = (x.double() - y.double()).pow(2) * mask
    mse = sq.flatten(1).sum(1) / mask.flatten(1).sum(1).clamp_min(1.0)
    return (10.0 * torch.log10(data_range**2 / mse.clamp_min(1e-20))).float()


def compression_ratio(video_numel: int, latent_numel: int) -> tuple[float, float]:
    """(ratio as 'x', latent size as % of the video) for per-clip element counts."""
    if latent_numel <= 0:
        raise ValueError(f"latent_numel must be positive, got {latent_numel}")
    return video_numel / latent_numel, 100.0 * latent_numel / video_numel
