"""The efficient two-timescale backbone: shapes, the split by construction, the DiT's compact token layout."""

import pytest
import torch

from gen.dit import HiVAEDiT
from hivae import HierarchicalLatent, HiVAE
from hivae.data import PATTERNS, MovingShapes

FRAME = dict(
    backbone="frame",
    sample_size=64,
    num_frames=16,
    base_channels=16,
    channel_mults=(1, 2, 2),
    width=32,
    structure_channels=4,
    num_queries=4,
    structure_downsample=0,
    dynamics_channels=2,
    structure_pool="presence",
    structure_blur=4.0,
    dynamics_width=16,
)


def test_frame_backbone_shapes_ratio_and_decoders(tmp_path):
    torch.manual_seed(0)
    model = HiVAE(**FRAME).eval()
    assert model.spatial_factor == 16 and model.latent_shapes() == ((4, 4, 4, 4), (2, 16, 1, 1))
    assert model.compression_ratio == pytest.approx(3 * 16 * 64 * 64 / (256 + 32))
    video = torch.rand(2, 3, 16, 64, 64) * 2 - 1
    with torch.no_grad():
        latent = model.encode(video).latent_dist.mode()
        assert model.decode(latent).sample.shape == video.shape
    model.save_pretrained(tmp_path)
    loaded = HiVAE.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(video).sample, model(video).sample)
    diffusion = HiVAE(**FRAME, decoder_type="diffusion", diffusion_channels=8).eval()
    with torch.no_grad():
        assert diffusion.decode(diffusion.encode(video).latent_dist.mode(), num_inference_steps=2).sample.shape == (
            2,
            3,
            16,
            64,
            64,
        )
    with pytest.raises(ValueError, match="one structure query per window"):
        HiVAE(**(FRAME | {"num_queries": 2}))


@pytest.mark.parametrize("relative", [False, True])
def test_dynamics_mean_has_no_slow_part(relative):
    """The dynamics mean is orthogonal to the slowest cosines over the clip: no constant, no trend."""
    from hivae.layers import dct_basis

    torch.manual_seed(0)
    model = HiVAE(**FRAME, dynamics_relative=relative).eval()
    with torch.no_grad():
        dynamics = model.encode(torch.rand(3, 3, 16, 64, 64) * 2 - 1).latent_dist.mode().dynamics  # (B, d, T, 1, 1)
    slow = dynamics.flatten(3).squeeze(-1) @ dct_basis(16, 4).T
    assert slow.abs().max() < 1e-4 * dynamics.abs().max()


def _pattern_pairs(model, clips: int = 16):
    """Latents of the same clips (shape, colour, path) rendered with each fast pattern."""
    latents = {}
    for pattern in PATTERNS:
        data = MovingShapes(clips, 16, 64, seed=5, patterns=(pattern,), path_variation=1.0)
        with torch.no_grad():
            latents[pattern] = model.encode(torch.stack([data[i]["video"] for i in range(clips)])).latent_dist.mode()
    return latents


@pytest.mark.parametrize("relative", [False, True])
def test_changing_only_the_fast_pattern_moves_dynamics_not_structure_even_untrained(relative):
    """Relative to each latent's spread (mean distance between clips), swapping a clip's fast pattern moves the
    structure latent at most a fifth as much as the dynamics latent: by construction, not by training."""
    torch.manual_seed(0)
    latents = _pattern_pairs(HiVAE(**FRAME, dynamics_relative=relative).eval())
    moves = {}
    for part in ("structure", "dynamics"):
        every = torch.cat([getattr(z, part).flatten(1) for z in latents.values()])
        spread = torch.cdist(every, every).mean()
        steady = getattr(latents["steady"], part).flatten(1)
        moves[part] = torch.stack(
            [(getattr(latents[p], part).flatten(1) - steady).norm(dim=1).mean() / spread for p in PATTERNS[1:]]
        )
    assert moves["structure"].mean() <= moves["dynamics"].mean() / 5, moves
    assert (moves["structure"] < moves["dynamics"]).all(), moves  # each pattern on its own too


def test_query_token_layout_is_four_times_smaller_than_a_48x_latent():
    dit = HiVAEDiT(
        structure_channels=4,
        num_queries=4,
        structure_size=(4, 4),
        dynamics_channels=2,
        num_frames=16,
        token_layout="query",
        dynamics_group=4,
        hidden_size=32,
        depth=1,
        heads=2,
        num_classes=3,
        text_dim=0,
    )
    tokens_48x = 4 * (8 // 2) * (8 // 2)  # 16 channels on 4x8x8 cells at 16x64x64, 2x2 patches
    assert dit.num_tokens() == 8 and tokens_48x / dit.num_tokens() >= 4
    torch.manual_seed(0)
    for layer in [b.modulation[-1] for b in dit.blocks] + [dit.structure_out.linear, dit.dynamics_out.linear]:
        torch.nn.init.normal_(layer.weight, std=0.1)
    z = HierarchicalLatent(torch.randn(2, 4, 4, 4, 4), torch.randn(2, 2, 16, 1, 1))
    out = dit(z, torch.tensor([100.0, 900.0]), torch.tensor([0, 1])).sample
    assert out.structure.shape == z.structure.shape and out.dynamics.shape == z.dynamics.shape
    # a change in one query's latent changes the prediction (tokens and positions line up with the latent)
    bumped = z.replace(structure=z.structure.clone())
    bumped.structure[:, :, 2] += 1.0
    assert not torch.allclose(
        dit(bumped, torch.tensor([100.0, 900.0]), torch.tensor([0, 1])).sample.structure, out.structure
    )


def test_four_way_condition_sampling_and_class_token():
    dit = HiVAEDiT(
        structure_channels=4,
        num_queries=4,
        structure_size=(4, 4),
        dynamics_channels=2,
        num_frames=16,
        hidden_size=32,
        depth=1,
        heads=2,
        num_classes=3,
        text_dim=8,
        condition_probs=(0.4, 0.25, 0.25, 0.1),
        class_token=True,
    ).train()
    torch.manual_seed(0)
    drop_class, drop_text = dit.training_drops(20000, None, torch.device("cpu"))
    both = (~drop_class & ~drop_text).float().mean()
    text_only = (drop_class & ~drop_text).float().mean()
    class_only = (~drop_class & drop_text).float().mean()
    neither = (drop_class & drop_text).float().mean()
    for got, want in ((both, 0.4), (text_only, 0.25), (class_only, 0.25), (neither, 0.1)):
        assert abs(got.item() - want) < 0.015
    with pytest.raises(ValueError, match="condition_probs"):
        HiVAEDiT(num_classes=3, text_dim=8, condition_probs=(0.5, 0.5, 0.5, 0.0))


def test_dynamics_rate_acts_on_the_dynamics_branch_only():
    """loss.dynamics_kl_weight: its gradient reaches only the dynamics encoder and a few steps shrink that KL."""
    from hivae.losses import LossConfig, ReconstructionLoss

    torch.manual_seed(0)
    model = HiVAE(**FRAME).train()
    video = MovingShapes(4, 16, 64, seed=3, patterns=("blinking",), path_variation=1.0)
    video = torch.stack([video[i]["video"] for i in range(4)])
    rate_only = ReconstructionLoss(
        LossConfig(l1_weight=0, l2_weight=0, ssim_weight=0, kl_weight=0, dynamics_kl_weight=1)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    kls = []
    for _ in range(5):
        out = model(video, sample_posterior=True)
        loss, logs = rate_only(out.sample, video, out.kl, kl_dynamics=out.kl_dynamics)
        optimizer.zero_grad()
        loss.backward()
        grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
        assert grads and all(n.startswith("dynamics_branch.") for n in grads)
        optimizer.step()
        kls.append(logs["kl_dynamics"])
    assert kls[-1] < 0.5 * kls[0]
    with pytest.raises(ValueError, match="kl_dynamics"):
        rate_only(out.sample, video, out.kl)


def test_dynamics_noise_is_relative_and_training_only():
    """dynamics_noise: noise of that fraction of the dynamics rms, added only to training samples, never to structure."""
    torch.manual_seed(0)
    quiet = HiVAE(**FRAME).train()
    noisy = HiVAE(**(FRAME | {"dynamics_noise": 0.5})).train()
    noisy.load_state_dict(quiet.state_dict())
    video = torch.rand(4, 3, 16, 64, 64) * 2 - 1
    with torch.no_grad():
        a = quiet(video, sample_posterior=True, generator=torch.Generator().manual_seed(1)).latent
        b = noisy(video, sample_posterior=True, generator=torch.Generator().manual_seed(1)).latent
        torch.testing.assert_close(a.structure, b.structure)
        added = (b.dynamics - a.dynamics).pow(2).mean().sqrt() / a.dynamics.pow(2).mean().sqrt()
        assert 0.35 < added.item() < 0.65
        torch.testing.assert_close(quiet(video).sample, noisy(video).sample)  # posterior mean: no noise
        noisy.eval(), quiet.eval()
        torch.testing.assert_close(
            quiet(video, sample_posterior=True, generator=torch.Generator().manual_seed(1)).latent.dynamics,
            noisy(video, sample_posterior=True, generator=torch.Generator().manual_seed(1)).latent.dynamics,
        )


def test_pattern_swap_pairs_keep_content_and_path_and_take_the_partners_pattern():
    from hivae.data import PatternSwapPairs, collate_clips
    from hivae.shape_detector import detect_attributes

    shapes = MovingShapes(40, 16, 64, seed=9, patterns=PATTERNS, path_variation=1.0)
    pairs = PatternSwapPairs(shapes)
    swapped_patterns = 0
    for i in range(12):
        item = pairs[i]
        torch.testing.assert_close(item["video"], shapes[i]["video"])
        partner = next(j for j in range(len(shapes)) if torch.equal(shapes[j]["video"], item["partner_video"]))
        found = detect_attributes(item["swap_video"])
        assert (found.shape, found.colour, found.motion) == (item["shape"], item["colour"], item["motion"])
        assert found.pattern == shapes[partner]["pattern"]
        swapped_patterns += shapes[partner]["pattern"] != item["pattern"]
    assert swapped_patterns >= 6
    batch = collate_clips([pairs[0], pairs[1]])
    assert batch["swap_video"].shape == batch["partner_video"].shape == (2, 3, 16, 64, 64)


def test_swap_loss_trains_the_swapped_decode(tmp_path):
    """train_tokenizer with loss.swap_weight: the swapped decode is logged and the config is checked."""
    from gen.train_tokenizer import main as train_tokenizer

    common = [
        "model_type=hivae",
        "model.backbone=frame",
        "model.sample_size=32",
        "model.num_frames=8",
        "model.base_channels=8",
        "model.channel_mults=[1,2]",
        "model.width=16",
        "model.num_queries=2",
        "model.structure_downsample=0",
        "model.dynamics_pool=[1,1]",
        "model.dynamics_width=8",
        "model.dynamics_relative=true",
        "data.num_frames=8",
        "data.size=32",
        "data.num_samples=16",
        "data.patterns=[steady,blinking]",
        f"train.output_dir={tmp_path}",
        "train.max_steps=2",
        "train.batch_size=2",
        "train.log_every=1",
        "train.sample_every=0",
        "train.mixed_precision=no",
        "eval_clips=2",
    ]
    with pytest.raises(ValueError, match="swap_pairs"):
        train_tokenizer(["--config", "configs/tokenizer/shapes2-64.yaml", *common, "loss.swap_weight=1.0"])
    train_tokenizer(
        ["--config", "configs/tokenizer/shapes2-64.yaml", *common, "loss.swap_weight=1.0", "data.swap_pairs=true"]
    )
    assert (tmp_path / "model" / "config.json").is_file()


def test_dynamics_warp_moves_whole_frames():
    """dynamics_warp: identity at initialisation; a translation read from the dynamics shifts every decoded frame
    by whole pixels (output x reads rendered x + k), the edge repeated where the frame has no content."""
    torch.manual_seed(0)
    plain = HiVAE(**FRAME).eval()
    warped = HiVAE(**FRAME, dynamics_warp=True).eval()
    missing, unexpected = warped.load_state_dict(plain.state_dict(), strict=False)
    assert set(missing) == {"decoder.warp.weight", "decoder.warp.bias"} and not unexpected
    video = torch.rand(2, 3, 16, 64, 64) * 2 - 1
    with torch.no_grad():
        latent = warped.encode(video).latent_dist.mode()
        rendered = plain.decode(latent).sample
        torch.testing.assert_close(warped.decode(latent).sample, rendered, atol=1e-5, rtol=0)
        shift = 4  # pixels: normalised x moves by 2 * shift / width
        warped.decoder.warp.bias.copy_(torch.tensor([0.0, 0.0, 2 * shift / 64, 0.0, 0.0, 0.0]))
        moved = warped.decode(latent).sample
    torch.testing.assert_close(moved[..., : 64 - shift], rendered[..., shift:], atol=1e-5, rtol=0)
    torch.testing.assert_close(moved[..., 64 - shift :], rendered[..., -1:].expand_as(moved[..., 64 - shift :]))
    assert (moved - rendered).abs().mean() > 1e-3
    with pytest.raises(ValueError, match="dynamics_warp needs backbone='frame'"):
        HiVAE(dynamics_warp=True)


def test_reconstruct_applies_a_latent_edit_between_encode_and_decode():
    """`reconstruct(..., latent_edit=)` decodes the edited latent: with the dynamics dropped, every clip decodes as its
    structure alone, which differs from the full reconstruction."""
    from hivae.evaluation import reconstruct

    torch.manual_seed(0)
    model = HiVAE(**FRAME).eval()
    video = torch.rand(3, 3, 16, 64, 64) * 2 - 1
    drop = lambda z: z.replace(dynamics=torch.zeros_like(z.dynamics))  # noqa: E731
    static = reconstruct(model, video, batch_size=2, latent_edit=drop)
    with torch.no_grad():
        expected = model.decode(drop(model.encode(video).latent_dist.mode())).sample.clamp(-1, 1)
    torch.testing.assert_close(static, expected)
    assert (static - reconstruct(model, video)).abs().mean() > 1e-4


def test_dynamics_stride_keeps_one_dynamics_step_per_group_of_frames():
    """dynamics_stride=4: the fast latent has T/4 steps, each the average of its 4 frames (reordering frames inside a
    group leaves it unchanged, moving a frame to another group does not); on decode a step only reaches the frames
    its interpolation touches; tiled clips keep T/4 steps per window."""
    torch.manual_seed(0)
    config = FRAME | {"dynamics_stride": 4, "dynamics_lowpass": 1}
    model = HiVAE(**config).eval()
    assert model.latent_shapes() == ((4, 4, 4, 4), (2, 4, 1, 1))
    assert model.compression_ratio == pytest.approx(3 * 16 * 64 * 64 / (256 + 8))
    video = torch.rand(1, 3, 16, 64, 64) * 2 - 1
    inside = video[:, :, [3, 2, 1, 0, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]]
    across = video[:, :, [15, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0]]
    with torch.no_grad():
        dynamics = [model.encode(v).latent_dist.mode().dynamics for v in (video, inside, across)]
        torch.testing.assert_close(dynamics[1], dynamics[0], atol=1e-5, rtol=1e-4)
        assert (dynamics[2] - dynamics[0]).abs().max() > 1e-3
        latent = model.encode(video).latent_dist.mode()
        nudged = latent.dynamics.clone()
        nudged[:, :, 0] += 3.0
        before = model.decode(latent).sample
        after = model.decode(latent.replace(dynamics=nudged)).sample
    change = (after - before).abs().amax(dim=(0, 1, 3, 4))  # per frame
    assert (change[:2] > 1e-3).all()  # step 0 sits at frame 1.5
    assert (change[6:] == 0).all()  # frames past step 1's centre (5.5) never read step 0
    model.enable_tiling(overlap=4)
    with torch.no_grad():
        tiled = model.encode(torch.rand(1, 3, 28, 64, 64) * 2 - 1).latent_dist.mode()
        assert tiled.dynamics.shape == (1, 2, 8, 1, 1)
        assert model.decode(tiled).sample.shape == (1, 3, 28, 64, 64)
    with pytest.raises(ValueError, match="dynamics_stride must be a divisor of num_frames=16, got 3"):
        HiVAE(**FRAME, dynamics_stride=3)
    with pytest.raises(ValueError, match="dynamics_stride > 1 needs backbone='frame'"):
        HiVAE(dynamics_stride=2)
