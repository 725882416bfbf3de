"""An oracle 3D-DCT codec: the reference a learned tokenizer must beat at the same number of latent values.

Each clip is transformed by an orthonormal DCT-II over (T, H, W) per colour channel; the `keep` coefficients of
largest magnitude over the whole clip are kept, the rest set to zero, and the clip is transformed back. Their
positions are free (not counted), which makes it an oracle: no real codec of `keep` numbers can know them.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.fft import dctn, idctn


def dct_oracle(video: torch.Tensor, keep: int) -> torch.Tensor:
    """(B, C, T, H, W) (or one clip (C, T, H, W)) -> the same shape, each clip rebuilt from its `keep` largest
    3D-DCT coefficients (all channels ranked together)."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1 coefficient, got {keep}")
    single = video.dim() == 4
    clips = video[None] if single else video
    if clips.dim() != 5:
        raise ValueError(f"video must be (B, C, T, H, W) or (C, T, H, W), got {tuple(video.shape)}")
    out = []
    for clip in clips.detach().float().cpu().numpy():
        coeffs = dctn(clip, axes=(1, 2, 3), norm="ortho")
        flat = np.abs(coeffs).ravel()
        if keep < flat.size:
            threshold_index = np.argpartition(flat, flat.size - keep)[flat.size - keep :]
            mask = np.zeros(flat.size, dtype=bool)
            mask[threshold_index] = True
            coeffs = coeffs * mask.reshape(coeffs.shape)
        out.append(idctn(coeffs, axes=(1, 2, 3), norm="ortho"))
    result = torch.from_numpy(np.stack(out)).to(video.dtype)
    return result[0] if single else result
