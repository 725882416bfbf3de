import pytest
import torch

from hivae import HierarchicalLatent, HiVAE, VideoVAE3D
from hivae.model import window_starts

from .conftest import TINY_HIVAE


def _video(b=2, t=8, s=16, seed=0):
    return torch.rand(b, 3, t, s, s, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize(
    "overrides,structure,dynamics,ratio",
    [
        ({}, (4, 2, 4, 4), (2, 8, 1, 1), 3 * 8 * 16 * 16 / (128 + 16)),
        ({"structure_downsample": 0, "dynamics_pool": (2, 2)}, (4, 2, 8, 8), (2, 8, 2, 2), 3 * 8 * 256 / (512 + 64)),
        ({"num_queries": 4, "dynamics_channels": 1}, (4, 4, 4, 4), (1, 8, 1, 1), 3 * 8 * 256 / (256 + 8)),
    ],
)
def test_latent_shapes_and_compression_ratio(overrides, structure, dynamics, ratio):
    model = HiVAE(**(TINY_HIVAE | overrides)).eval()
    dist = model.encode(_video()).latent_dist
    latent = dist.sample(torch.Generator().manual_seed(0))
    assert latent.structure.shape == (2, *structure) and latent.dynamics.shape == (2, *dynamics)
    assert model.latent_shapes() == (structure, dynamics)
    assert model.compression_ratio == pytest.approx(ratio)
    assert latent.numel_per_clip() == 3 * 8 * 256 / ratio
    assert model.decode(latent).sample.shape == (2, 3, 8, 16, 16)
    assert dist.kl().shape == (2,)


def test_shipped_presets_reach_500x():
    from gen.train_tokenizer import TokenizerConfig
    from hivae.config import load_config

    for name in ("shapes-32", "shapes-64", "video-128"):
        config = load_config(f"configs/tokenizer/{name}.yaml", TokenizerConfig)
        with torch.device("meta"):
            model = HiVAE(**config.model)
        assert model.compression_ratio >= 500, name


def test_save_load_roundtrip(tiny_hivae, tmp_path):
    tiny_hivae.register_to_config(structure_shift=0.5, dynamics_scale=2.0)
    tiny_hivae.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    loaded = HiVAE.from_pretrained(tmp_path).eval()
    x = _video()
    with torch.no_grad():
        assert torch.equal(tiny_hivae(x).sample, loaded(x).sample)
    assert loaded.config.structure_shift == 0.5 and loaded.config.dynamics_scale == 2.0


def test_normalize_denormalize_roundtrip(tiny_hivae):
    latent = tiny_hivae.encode(_video()).latent_dist.mode()
    stats = tiny_hivae.set_latent_statistics(latent)
    normed = tiny_hivae.normalize_latent(latent)
    assert abs(normed.structure.mean().item()) < 1e-5 and abs(normed.structure.std().item() - 1) < 1e-4
    back = tiny_hivae.denormalize_latent(normed)
    assert torch.allclose(back.structure, latent.structure, atol=1e-5)
    assert set(stats) == {"structure_shift", "structure_scale", "dynamics_shift", "dynamics_scale"}


def _window_decode(model, clip):
    """Decode of one window encoded alone (tiling off)."""
    model.disable_tiling()
    with torch.no_grad():
        return model.decode(model.encode(clip).latent_dist.mode()).sample


@pytest.mark.parametrize("length", [8, 9, 12, 15, 17, 30])
@pytest.mark.parametrize("overlap", [0, 1, 3, 4, 7])
def test_tiled_decode_has_the_encoded_length_and_true_window_offsets(tiny_hivae, length, overlap):
    """A tiled latent decodes to exactly the encoded length; outside overlaps every frame is its window's own decode
    at that window's true offset; inside an overlap it cross-fades from the earlier window to the later one."""
    clip = _video(1, length, seed=length)
    tiny_hivae.enable_tiling(overlap=overlap)
    with torch.no_grad():
        latent = tiny_hivae.encode(clip).latent_dist.mode()
        out = tiny_hivae.decode(latent).sample
    assert out.shape == (1, 3, length, 16, 16)
    starts = window_starts(length, 8, overlap)
    windows = [_window_decode(tiny_hivae, clip[:, :, s : s + 8]) for s in starts]
    owner = [[k for k, s in enumerate(starts) if s <= f < s + 8] for f in range(length)]
    for frame, owners in enumerate(owner):
        got = out[:, :, frame]
        if len(owners) == 1:
            k = owners[0]
            torch.testing.assert_close(got, windows[k][:, :, frame - starts[k]], atol=1e-5, rtol=0)
        else:  # a mix of the overlapping windows' decodes of this frame
            decodes = torch.stack([windows[k][:, :, frame - starts[k]] for k in owners])
            assert ((got >= decodes.amin(0) - 1e-5) & (got <= decodes.amax(0) + 1e-5)).all()
    for k in range(1, len(starts)):  # the mix moves monotonically from window k-1 to window k across the overlap
        shared = [f for f in range(length) if owner[f] == [k - 1, k]]
        weights = []
        for f in shared:
            a, b = windows[k - 1][:, :, f - starts[k - 1]], windows[k][:, :, f - starts[k]]
            weights.append((((out[:, :, f] - a) * (b - a)).sum() / (b - a).pow(2).sum()).item())
        assert all(0 < w < 1 for w in weights) and weights == sorted(weights)


def test_tiled_latent_records_its_layout_and_untracked_ones_fail_clearly(tiny_hivae):
    clip = _video(1, 30, seed=3)
    tiny_hivae.enable_tiling(overlap=4)
    with torch.no_grad():
        latent = tiny_hivae.encode(clip).latent_dist.mode()
        assert (latent.num_frames, latent.tile_overlap) == (30, 4)
        tiny_hivae.enable_tiling(overlap=2)  # decoding follows the latent's own overlap, not the current setting
        assert tiny_hivae.decode(latent).sample.shape[2] == 30
        bare = HierarchicalLatent(latent.structure, latent.dynamics)
        tiny_hivae.disable_tiling()
        with pytest.raises(ValueError, match="does not record the video length"):
            tiny_hivae.decode(bare)
        tiny_hivae.enable_tiling(overlap=4)
        assert tiny_hivae.decode(bare, num_frames=30).sample.shape[2] == 30
        with pytest.raises(ValueError, match="num_frames=29, but the latent was encoded from 30"):
            tiny_hivae.decode(latent, num_frames=29)
        with pytest.raises(ValueError, match="holds 7 windows but 20 frames with overlap 4 need 4"):
            tiny_hivae.decode(bare, num_frames=20)
        one = tiny_hivae.encode(clip[:, :, :8]).latent_dist.mode()
        assert one.num_frames is None  # a single window needs no layout


def test_window_starts_cover_the_video():
    assert window_starts(16, 8, 0) == [0, 8]
    assert window_starts(20, 8, 2) == [0, 6, 12]
    assert window_starts(30, 16, 4) == [0, 12, 14]
    with pytest.raises(ValueError, match="need at least num_frames=8"):
        window_starts(5, 8, 0)
    with pytest.raises(ValueError, match="overlap must be in"):
        window_starts(16, 8, 8)


def test_slicing_matches_batched(tiny_hivae):
    x = _video(3)
    with torch.no_grad():
        batched = tiny_hivae(x).sample
        tiny_hivae.enable_slicing()
        assert torch.allclose(tiny_hivae(x).sample, batched, atol=1e-5)


@pytest.mark.parametrize(
    "video,error,match",
    [
        (torch.zeros(1, 3, 8, 16, 16, dtype=torch.uint8), TypeError, "floating tensor"),
        (torch.zeros(1, 4, 8, 16, 16), ValueError, r"shape \(B, 3, T, H, W\)"),
        (torch.zeros(1, 3, 8, 15, 16), ValueError, "multiples of 4"),
        (torch.full((1, 3, 8, 16, 16), float("nan")), ValueError, "NaN"),
        (torch.zeros(1, 3, 12, 16, 16), ValueError, "enable_tiling"),
    ],
)
def test_bad_inputs(tiny_hivae, video, error, match):
    with pytest.raises(error, match=match):
        tiny_hivae.encode(video)


def test_bad_latents(tiny_hivae):
    good = tiny_hivae.encode(_video(1)).latent_dist.mode()
    with pytest.raises(ValueError, match="dynamics latent must be"):
        tiny_hivae.decode(good.replace(dynamics=good.dynamics[:, :, :4]))
    with pytest.raises(TypeError, match="HierarchicalLatent"):
        tiny_hivae.decode(good.structure)


def test_baseline_vae_shapes_and_ratio(tmp_path):
    model = VideoVAE3D(sample_size=16, num_frames=8, base_channels=8, channel_mults=(1, 2, 2, 2), latent_channels=4)
    x = _video()
    out = model(x)
    assert out.latent.structure.shape == (2, 4, 2, 2, 2) and out.sample.shape == x.shape
    assert torch.equal(out.latent.dynamics, torch.zeros(2, 1, 1, 1, 1))  # the constant slot the DiT stack carries
    assert model.compression_ratio == pytest.approx(3 * 4 * 8 * 8 / 4)  # 4x8x8 factors, 4 channels -> 192x
    model.save_pretrained(tmp_path)
    with torch.no_grad():
        assert torch.equal(VideoVAE3D.from_pretrained(tmp_path)(x).sample, model(x).sample)
    with pytest.raises(ValueError, match="multiple of 4"):
        model.encode(_video(1, 6))


def test_baseline_vae_patchify_keeps_pixels_in_place():
    """patch_size folds p x p pixels into channels: the spatial factor multiplies and the layout stays in place (a
    change at pixels 32..35 peaks near latent cell 8 and back, within the convolutions' reach; the far corner moves by
    GroupNorm statistics only; a mixed-up fold would move it to cell 0)."""
    torch.manual_seed(0)
    model = VideoVAE3D(sample_size=64, num_frames=4, base_channels=8, channel_mults=(1, 2), temporal_downsample=0,
                       latent_channels=4, patch_size=2).eval()
    assert model.spatial_factor == 4 and model.latent_shapes()[0] == (4, 4, 16, 16)
    assert model.compression_ratio == pytest.approx(3 * 4 * 4 / 4)
    x = torch.rand(1, 3, 4, 64, 64) * 2 - 1

    def peak_and_far(change: torch.Tensor, cell: int) -> tuple[bool, float]:
        change = change.abs()[0].amax(dim=(0, 1))  # (H, W)
        peak = divmod(int(change.argmax()), change.shape[-1])
        near = abs(peak[0] // cell - 8) <= 2 and abs(peak[1] // cell - 8) <= 2
        return near, float(change[: 2 * cell, : 2 * cell].max() / change.max())

    with torch.no_grad():
        z = model.encode(x).latent_dist.mode()
        nudged = x.clone()
        nudged[..., 32:36, 32:36] += 1.0
        peak, far = peak_and_far(model.encode(nudged).latent_dist.mode().structure - z.structure, 1)
        assert peak and far < 0.2
        bump = torch.zeros_like(z.structure)
        bump[..., 8, 8] = 1.0
        peak, far = peak_and_far(model.decode(z.replace(structure=z.structure + bump)).sample - model.decode(z).sample, 4)
        assert peak and far < 0.2
    with pytest.raises(ValueError, match="patch_size"):
        VideoVAE3D(patch_size=0)


def test_hierarchical_latent_helpers():
    z = HierarchicalLatent(torch.ones(2, 4, 2, 2, 2), torch.zeros(2, 2, 8, 1, 1))
    assert z[0:1].batch_size == 1 and HierarchicalLatent.cat([z, z]).batch_size == 4
    assert z.numel_per_clip() == 32 + 16


def test_wrong_checkpoint_type_is_refused(tmp_path, tiny_hivae):
    from gen.dit import HiVAEDiT

    HiVAEDiT.from_tokenizer(tiny_hivae, hidden_size=32, depth=1, heads=2, num_classes=4, text_dim=0).save_pretrained(
        tmp_path
    )
    with pytest.raises(ValueError, match="holds a 'HiVAEDiT', not a HiVAE"):
        HiVAE.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="config.json: missing"):
        HiVAE.from_pretrained(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(ValueError, match="not valid JSON"):
        HiVAE.from_pretrained(tmp_path)
