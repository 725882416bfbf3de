"""The benchmark helpers: FLOP counting / MFU, the SVG plot, isolated measurements and their JSON rows."""

import json
import math
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch

from benchmarks.dit_efficiency import PEAK_TFLOPS, count_flops, peak_tflops
from benchmarks.run_all import main as run_all
from benchmarks.run_all import plot
from benchmarks.svg_plot import Panel, write_svg


def test_flop_count_of_a_linear_training_step():
    layer = torch.nn.Linear(64, 32, bias=False)
    x = torch.randn(8, 64, requires_grad=True)

    def step():
        layer(x).sum().backward()

    # forward 2*B*in*out, backward the same for the input grad and again for the weight grad
    assert count_flops(step) == 3 * 2 * 8 * 64 * 32
    x.requires_grad_(False)
    assert count_flops(step) == 2 * 2 * 8 * 64 * 32  # no input grad needed


def test_peak_tflops_lookup():
    """An override wins; unknown devices have no peak; fp32 (TF32) is half the bf16 rate; the most specific name
    wins (an H100 PCIe is not taken for the faster SXM H100)."""
    assert peak_tflops("anything", "bf16", 1.5) == 1.5
    assert peak_tflops("CPU (x86_64, 2 threads)", "bf16", None) is None
    for name in PEAK_TFLOPS:
        assert peak_tflops(f"NVIDIA {name}", "fp32", None) == peak_tflops(f"NVIDIA {name}", "bf16", None) / 2
    assert peak_tflops("NVIDIA H100 PCIe", "bf16", None) < peak_tflops("NVIDIA H100 80GB HBM3", "bf16", None)


def test_svg_plot_has_one_line_per_series(tmp_path):
    panels = [
        Panel("a", "frames", "clips/s", {"64px": [(16, 9.0), (32, 4.0)], "128px": [(16, 2.0), (32, 1.0)]}),
        Panel("b", "frames", "ms", {"x": [(16, 5.0), (64, 0.0)]}),  # non-positive points are skipped on log axes
    ]
    path = write_svg(panels, tmp_path / "plot.svg")
    root = ET.parse(path).getroot()
    lines = root.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 3
    assert len(lines[2].get("points").split()) == 1
    assert {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")} >= {"a", "b", "64px", "128px", "frames"}


def test_run_all_plot_from_rows(tmp_path):
    scaling = {
        "tokenizer": [
            {"model": m, "frames": f, "size": 64, "encode_clips_per_s": 1.0 / f, "decode_clips_per_s": 2.0 / f}
            for m in ("HiVAE", "3D-VAE 48x")
            for f in (16, 32)
        ],
        "dit": [{"latent": "hivae (614x)", "frames": f, "size": 64, "step_ms": 10.0 * f} for f in (16, 32)],
        "generation": [{"frames": f, "size": 64, "s_per_clip": 0.1 * f} for f in (16, 32)],
    }
    root = ET.parse(plot({"scaling": scaling}, tmp_path / "p.svg")).getroot()
    assert len(root.findall("{http://www.w3.org/2000/svg}polyline")) == 2 + 2 + 1 + 1


def test_isolated_tokenizer_measurement_row(capsys):
    spec = {"kind": "tokenizer", "name": "3D-VAE 48x", "frames": 8, "size": 16, "dtype": "fp32", "repeats": 1}
    row = run_all(["--measure", json.dumps(spec)])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == row
    from benchmarks.run_all import build_tokenizer

    model, _ = build_tokenizer("3D-VAE 48x", 8, 16)
    assert row["compression"] == pytest.approx(48.0) == model.compression_ratio
    assert row["params_M"] == pytest.approx(sum(p.numel() for p in model.parameters()) / 1e6)
    assert set(row) == {
        "model",
        "frames",
        "size",
        "compression",
        "encode_clips_per_s",
        "decode_clips_per_s",
        "peak_mem_MiB",
        "params_M",
    }


def test_equal_budget_harness_trains_each_model_for_the_budget(tmp_path, monkeypatch):
    """Two tiny tokenizers, 0.05 min each: both stop on the budget, are scored on the evaluation folder, and the
    3D-DCT oracle keeps exactly as many values as each model has; --export writes a loadable, scored folder."""
    import yaml

    from benchmarks import equal_budget
    from hivae.data.natural import build_training_folder
    from hivae.loading import load_tokenizer, recorded_psnr

    build_training_folder(tmp_path / "train", 4, num_frames=8, size=32, photos=["coffee", "china"], progress=False)
    build_training_folder(tmp_path / "eval", 2, num_frames=8, size=32, seed=9, photos=["astronaut"], progress=False)
    data = {"source": "folder", "root": str(tmp_path / "train"), "num_frames": 8, "size": 32, "eval_fraction": 0.01}
    train = {"batch_size": 2, "warmup_steps": 1, "checkpoint_every": 1000, "log_every": 1}
    hivae = dict(backbone="frame", sample_size=32, num_frames=8, base_channels=8, channel_mults=[1, 2], width=16,
                 structure_channels=2, num_queries=2, structure_window=4, structure_downsample=0, structure_pool="mean",
                 dynamics_channels=2, dynamics_width=8, dynamics_patch=8, dynamics_lowpass=2)
    vae3d = dict(sample_size=32, num_frames=8, base_channels=8, channel_mults=[1, 2, 2, 2], temporal_downsample=2,
                 latent_channels=4)
    presets = {}
    for name, model_type, model in (("small", "hivae", hivae), ("plain", "baseline", vae3d)):
        config = {"model_type": model_type, "model": model, "data": data, "train": train, "eval_clips": 1}
        config["loss"] = {"foreground_weight": 0.0}
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(config))
        presets[name] = str(tmp_path / f"{name}.yaml")
    suite = equal_budget.Suite(models=presets, eval_root=str(tmp_path / "eval"), dataset="tiny", sample_every=2)
    monkeypatch.setitem(equal_budget.SUITES, "tiny", suite)
    argv = ["--suite", "tiny", "--minutes", "0.05", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "r.json")]
    payload = equal_budget.main([*argv, "--export", "small", str(tmp_path / "shipped")])
    rows = {row["model"]: row for row in payload["rows"]}
    for name in ("small", "plain"):
        row = rows[name]
        assert 0.05 <= row["minutes"] < 0.05 + 0.5 and row["steps"] > 0
        assert row["latent_values"] == round(3 * 8 * 32 * 32 / row["compression_ratio"])
        oracle = rows[f"3D-DCT oracle ({row['latent_values']} coefficients)"]
        assert oracle["latent_values"] == row["latent_values"] and oracle["psnr"] > 10
        assert len(payload["curves"][name]["loss"]) >= row["steps"] - 1
    assert rows["small"]["latent_values"] != rows["plain"]["latent_values"]
    assert json.loads((tmp_path / "r.json").read_text())["rows"] == payload["rows"]
    assert load_tokenizer(tmp_path / "shipped").config.sample_size == 32
    assert recorded_psnr(tmp_path / "shipped") == (rows["small"]["psnr"], "tiny")


def test_equal_budget_references_bound_and_naive_codec():
    """Window means are exact on clips that change only between windows and lose motion otherwise; the thumbnail
    codec keeps at most its budget (a smooth static clip survives, a fine checkerboard does not)."""
    from benchmarks.equal_budget import reference_rows, thumbnail_codec, window_means

    steps = torch.linspace(-1, 1, 4).repeat_interleave(4)  # constant over each 4-frame window
    clip = steps.view(1, 1, 16, 1, 1).expand(2, 3, 16, 8, 8).contiguous()
    assert torch.equal(window_means(clip, 4), clip)
    assert not torch.allclose(window_means(clip, 8), clip)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    smooth = (0.5 * xx + 0.3 * yy).view(1, 1, 1, 32, 32).expand(1, 3, 16, 32, 32)
    assert (thumbnail_codec(smooth, 3 * 16 * 16) - smooth).abs().max() < 0.05
    checker = ((torch.arange(32)[:, None] + torch.arange(32)[None]) % 2 * 2 - 1).float()
    checker = checker.view(1, 1, 1, 32, 32).expand(1, 3, 16, 32, 32)
    assert (thumbnail_codec(checker, 3 * 16 * 16) - checker).abs().mean() > 0.9
    rows = {row["model"]: row for row in reference_rows(smooth.contiguous(), 96, "smooth")}
    assert rows["3D-DCT oracle (96 coefficients)"]["latent_values"] == 96
    assert rows["mean of every 16 frames (bound, unlimited values)"]["psnr"] > 60  # a static clip is its mean


def test_rate_distortion_models_reach_their_ratios():
    """Every (data set, family, ratio) of the rate-distortion benchmark builds from its preset + overrides at the data
    set's clip size, counts its latent values as the ratio says (within 10%), and reconstructs a clip of the right
    shape."""
    import yaml

    from benchmarks.rate_distortion import DATASETS, PRESETS, model_overrides, ratios
    from hivae import TOKENIZERS
    from hivae.config import apply_overrides

    assert ratios("natural-32") == [48, 192, 512, 1024, 1536] and ratios("natural-64") == [512, 1536]
    for dataset in ("shapes-photo-32", "natural-64"):
        size = DATASETS[dataset].size
        clip = torch.rand(1, 3, 16, size, size) * 2 - 1
        for family, preset in PRESETS.items():
            for ratio in ratios(dataset):
                config = yaml.safe_load((Path(__file__).resolve().parents[1] / preset).read_text())
                apply_overrides(config, model_overrides(family, ratio, dataset))
                assert config["data"]["size"] == size and config["train"]["mixed_precision"] in ("no", False)
                assert (config["data"]["source"] == "shapes") == dataset.startswith("shapes")
                model = TOKENIZERS[config["model_type"]](**config["model"]).eval()
                assert abs(model.compression_ratio / ratio - 1) < 0.1, (dataset, family, ratio)
                latent = model.encode(clip).latent_dist.mode()
                parts = [latent.structure, latent.dynamics] if family == "hivae" else [latent.structure]
                assert sum(p[0].numel() for p in parts) == round(clip[0].numel() / model.compression_ratio)
                assert model.decode(latent).sample.shape == clip.shape


def test_rate_distortion_runs_remember_their_variant_overrides(tmp_path):
    """A run keeps the --set it was trained with and its CPU: scoring it later without --set reads them back, and
    training it again with other overrides stops with the run named instead of resuming a different model."""
    from benchmarks.rate_distortion import run_record

    run, warp = tmp_path / "hivae-1536x-30min-warp", ["model.dynamics_warp=true"]
    assert run_record(run, warp, eval_only=True) == {"overrides": warp, "cpu": None}
    assert not run.exists()  # scoring writes nothing
    started = run_record(run, warp, eval_only=False)
    assert started["overrides"] == warp and started["cpu"]
    assert run_record(run, [], eval_only=True) == started
    assert run_record(run, warp, eval_only=False) == started  # resumed
    with pytest.raises(SystemExit, match="hivae-1536x-30min-warp was trained with --set model.dynamics_warp=true"):
        run_record(run, ["model.dynamics_lowpass=0"], eval_only=False)


def test_rate_distortion_keeps_published_rows_of_other_ratios(tmp_path):
    """A call that scores some ratios keeps the published rows of the others (same minutes, threads and jobs),
    replaces the ones it scored, and ignores a JSON made under another budget or with other threads."""
    from benchmarks.rate_distortion import merge_published

    def row(family, ratio, psnr):
        return {"model": f"{family}-{ratio}x", "family": family, "compression_ratio": float(ratio), "psnr": psnr}

    path = tmp_path / "rd.json"
    regime = {"minutes_per_model": 20.0, "threads_per_model": 1, "jobs": 2}
    path.write_text(json.dumps({**regime, "rows": [row("hivae", 512, 19.0), row("vae3d", 512, 18.0)],
                                "curves": {"hivae-512x": [1], "vae3d-512x": [2]}}))
    scored = [row("hivae", 1536, 17.0), row("hivae", 512, 20.0)]
    rows, curves = merge_published(path, regime, scored, {"hivae-512x": [3]})
    assert [(r["model"], r["psnr"]) for r in rows] == [
        ("hivae-512x", 20.0), ("vae3d-512x", 18.0), ("hivae-1536x", 17.0)
    ]
    assert curves == {"vae3d-512x": [2], "hivae-512x": [3]}
    for other in ({"minutes_per_model": 30.0}, {"threads_per_model": 2}):
        merged, _ = merge_published(path, {**regime, **other}, [row("hivae", 1536, 17.0)], {})
        assert merged == [row("hivae", 1536, 17.0)]


def test_dit_time_to_quality_best_run_and_not_reached():
    from benchmarks.dit_time_to_quality import best_run

    def rows(*points):
        return [{"minutes": m, "step": 100 * m, "accuracy_all": a} for m, a in points]

    runs = {1e-4: rows((3, 0.5), (6, 0.92)), 5e-4: rows((3, 0.7), (6, 0.95)), 1e-3: rows((3, 0.91), (6, 0.2))}
    assert best_run(runs, 0.9) == (1e-3, {"minutes_to_target": 3, "steps_to_target": 300})
    best, outcome = best_run({1e-4: rows((3, 0.5), (9, 0.6)), 5e-4: rows((3, 0.7))}, 0.9)
    assert best == 5e-4 and outcome["not_reached"] == "not reached by 9 minutes" and outcome["steps_to_target"] is None


def test_dit_time_to_quality_trains_in_chunks_evaluates_and_resumes(tmp_path, tiny_hivae):
    """Tiny DiTs on a tiny HiVAE and a tiny plain VAE: each run trains in budget chunks, every chunk is scored on the
    prompt set, a second call continues nothing that is done, --report rebuilds the same summary."""
    from benchmarks import dit_time_to_quality as ttq
    from hivae import VideoVAE3D

    tiny_hivae.save_pretrained(tmp_path / "hivae")
    torch.manual_seed(0)
    VideoVAE3D(sample_size=16, num_frames=8, base_channels=8, channel_mults=(1, 2, 2), latent_channels=4).save_pretrained(
        tmp_path / "vae48"
    )
    tiny = ["size=null", "model.hidden_size=32", "model.depth=1", "model.heads=2", "data.size=16",
            "data.num_frames=8", "train.warmup_steps=1", "train.batch_size=4", "train.num_workers=0"]
    argv = ["--tokenizers", f"hivae={tmp_path / 'hivae'}", f"vae48={tmp_path / 'vae48'}", "--lrs", "1e-3",
            "--minutes", "0.04", "--every", "0.02", "--clips", "16", "--prompts", "2", "--runs", str(tmp_path / "runs"),
            "--out", str(tmp_path / "ttq.json"), "--recon-clips", "2", "--jobs", "2", "--threads", "1",
            "--overrides", *tiny]
    payload = ttq.main(argv)  # the two latents side by side, one thread each
    assert payload["settings"]["jobs"] == 2 and payload["settings"]["threads"] == 1
    for latent in ("hivae", "vae48"):
        rows = [row for row in payload["rows"] if row["latent"] == latent]
        assert len(rows) == 2 and 0 < rows[0]["step"] < rows[1]["step"]  # two chunks, the second resumed
        assert 0.02 <= rows[0]["minutes"] < rows[1]["minutes"] and rows[1]["minutes"] >= 0.04
        assert all(0.0 <= row["accuracy_all"] <= row["shape"] <= 1.0 for row in rows)
    summary = {row["latent"]: row for row in payload["summary"]}
    assert summary["hivae"]["tokens_per_clip"] == 2 + 8 // 4  # 2 queries + 8 frames in groups of 4
    assert summary["vae48"]["tokens_per_clip"] == 2 * 2 * 2 + 1  # 2 x 4 x 4 grid in 2x2 patches + the slot
    assert summary["vae48"]["latent_values"] == 4 * 2 * 4 * 4
    assert all(0.0 <= row["reconstruction_attributes_all"] <= 1.0 for row in summary.values())
    assert ttq.main(argv)["rows"] == payload["rows"]  # done: nothing retrained, nothing re-scored
    assert ttq.main([*argv, "--report"])["summary"] == payload["summary"]
    assert (tmp_path / "ttq.svg").is_file()
    shutil.rmtree(tmp_path / "runs")  # a new machine: the finished runs come back from the published JSON
    assert ttq.main([*argv[:-len(tiny) - 1], "--latents", "hivae", "--overrides", *tiny]) == payload
    assert not (tmp_path / "runs").exists()  # nothing trained
    changed = [*argv, "train.batch_size=2"]  # other settings: the published runs do not count and are retrained
    assert len(ttq.main([*changed, "--latents", "hivae", "--report"])["rows"]) == 0
    assert len(ttq.main([*argv[:-len(tiny) - 1], "--jobs", "1", "--report", "--overrides", *tiny])["rows"]) == 0


def test_rate_distortion_variant_arguments_are_checked(capsys):
    """A changed model needs a name, a plain one, and KEY=VALUE overrides; each mistake names its flag."""
    from benchmarks.rate_distortion import main

    for argv, message in (
        (["--set", "model.dynamics_warp=true"], "name them with --variant"),
        (["--variant", "a-b"], "--variant must be"),
        (["--variant", "warp", "--set", "model.dynamics_warp"], "--set takes KEY=VALUE"),
        (["--datasets", "natural-64", "--ratios", "48", "512"], "--ratios [48] not defined for natural-64"),
    ):
        with pytest.raises(SystemExit):
            main(argv)
        assert message in capsys.readouterr().err


def test_clip_statistics_rows_and_dynamics_shares():
    """A clip whose two halves are each one image: exact with a slot per half, not with one mean frame; every
    HiVAE ratio of the rate-distortion table splits exactly its budget between structure and dynamics."""
    from benchmarks.clip_statistics import dynamics_shares, statistics

    halves = torch.cat([torch.full((2, 3, 8, 16, 16), -0.5), torch.full((2, 3, 8, 16, 16), 0.5)], dim=2)
    row = statistics(halves)
    assert row["clips"] == 2 and row["window_means_psnr"] > 60
    assert row["mean_frame_psnr"] == pytest.approx(20 * math.log10(2 / 0.5), abs=1e-3)  # off by 0.5 in a range of 2
    assert row["thumbnail_psnr_12"] == pytest.approx(row["mean_frame_psnr"], abs=1e-3)  # flat frames: no layout
    for share in dynamics_shares(32):
        assert share["structure"] + share["dynamics"] == 3 * 16 * 32 * 32 // share["ratio"]
        assert share["dynamics_share"] == pytest.approx(share["dynamics"] / (3 * 16 * 32 * 32 / share["ratio"]))
