import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from hivae.metrics import compression_ratio, foreground_psnr, psnr, ssim, temporal_consistency


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 4, 24, 24, generator=g) * 2 - 1
    y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    return x, y


def test_psnr_matches_skimage_and_hand_value(pair):
    x, y = pair
    expected = [peak_signal_noise_ratio(x[b].numpy(), y[b].numpy(), data_range=2.0) for b in range(2)]
    assert torch.allclose(psnr(y, x), torch.tensor(expected, dtype=torch.float32), atol=1e-4)
    # constant error of 0.2 on range 2: 10*log10(4 / 0.04) = 20 dB
    assert psnr(torch.zeros(1, 3, 2, 4, 4), torch.full((1, 3, 2, 4, 4), 0.2)).item() == pytest.approx(20.0, abs=1e-4)


def test_ssim_matches_skimage_per_frame(pair):
    x, y = pair
    expected = []
    for b in range(2):
        frames = [
            structural_similarity(
                x[b, :, t].permute(1, 2, 0).numpy().astype(np.float64),
                y[b, :, t].permute(1, 2, 0).numpy(),
                data_range=2.0,
                channel_axis=2,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )
            for t in range(4)
        ]
        expected.append(np.mean(frames))
    assert torch.allclose(ssim(x, y), torch.tensor(expected, dtype=torch.float32), atol=1e-4)
    assert torch.allclose(ssim(x, x), torch.ones(2))


def test_temporal_consistency_and_foreground(pair):
    x, _ = pair
    assert temporal_consistency(x, x + 0.3).max() < 1e-6  # a constant offset keeps the motion
    still = x[:, :, :1].expand_as(x)
    assert temporal_consistency(still, x).min() > 0.1
    background = torch.full((1, 3, 1, 8, 8), -1.0)
    target = background.expand(1, 3, 2, 8, 8).clone()
    target[..., :2, :2] = 1.0
    pred = target.clone()
    pred[..., 4:, 4:] = 0.0  # errors on the background only
    assert foreground_psnr(pred, target, background).item() > 100
    assert psnr(pred, target).item() < 20


def test_compression_ratio_and_shape_errors():
    assert compression_ratio(3 * 16 * 32 * 32, 96) == (512.0, pytest.approx(0.1953125))
    with pytest.raises(ValueError, match="equal shape"):
        psnr(torch.zeros(1, 3, 2, 4, 4), torch.zeros(1, 3, 2, 4, 5))


def test_detail_ratio_blur_and_noise():
    from hivae.metrics import detail_ratio

    torch.manual_seed(0)
    target = torch.rand(2, 3, 4, 32, 32) * 2 - 1
    blurred = torch.nn.functional.avg_pool3d(target, (1, 3, 3), stride=1, padding=(0, 1, 1))
    noisy = target + 0.5 * torch.randn_like(target)
    assert torch.allclose(detail_ratio(target, target), torch.ones(2))
    assert (detail_ratio(blurred, target) < 0.5).all()
    assert (detail_ratio(noisy, target) > 1.1).all()
    torch.testing.assert_close(detail_ratio(2 * target, target), torch.full((2,), 4.0))
