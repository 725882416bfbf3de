import json
from pathlib import Path

import numpy as np

import pytest
import torch

from hivae.data import MovingShapes, VideoFolderDataset, read_video, write_video
from pipelines.cli import main


def test_cli_shapes_writes_a_videofolder(tmp_path, capsys):
    assert main(["shapes", "--out", str(tmp_path / "s"), "--num", "2", "--size", "32", "--gif"]) == 0
    assert "wrote 2 clips" in capsys.readouterr().out
    rows = [json.loads(line) for line in (tmp_path / "s" / "metadata.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and (tmp_path / "s" / "clip_00000.gif").is_file()
    assert VideoFolderDataset(tmp_path / "s", num_frames=16)[1]["label"] == rows[1]["label"]


@pytest.fixture
def tiny_checkpoint(tiny_pipeline, tmp_path):
    """The tiny pipeline (woken up, so every setting changes its output) and a tiny diffusion-decoder tokenizer."""
    from hivae import HiVAE

    from .conftest import TINY_HIVAE

    dit = tiny_pipeline.transformer
    for layer in [b.modulation[-1] for b in dit.blocks] + [dit.structure_out.linear, dit.dynamics_out.linear]:
        torch.nn.init.normal_(layer.weight, std=0.1)
    tiny_pipeline.save_pretrained(tmp_path / "pipe")
    torch.manual_seed(1)
    vae = HiVAE(**TINY_HIVAE, decoder_type="diffusion", diffusion_channels=8)
    torch.nn.init.normal_(vae.diffusion_decoder.conv_out[-1].weight, std=0.05)
    vae.save_pretrained(tmp_path / "vae-diffusion")
    return tmp_path


@pytest.fixture
def one_thread():
    """Multithreaded CPU kernels may round differently from run to run, and x264 turns a last-bit change into a
    different block: exact comparisons of written videos run on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _generate(root, out, *extra):
    argv = ["generate", "--checkpoint", str(root / "pipe"), "--steps", "2", "--no-gif", "--out", str(out), *extra]
    assert main(argv) == 0
    return {p.name: read_video(p, 8) for p in sorted(Path(out).glob("*.mp4"))}


@pytest.mark.parametrize(
    "base,changed",
    [
        (["--seed", "1"], ["--seed", "2"]),
        (["--steps", "2"], ["--steps", "4"]),
        (["--guidance", "1"], ["--guidance", "6"]),
        (["--prompt", "a red circle moving left"], ["--prompt", "a blue square moving up"]),
        (["--class", "3"], ["--class", "40"]),
        (["--negative-prompt", "blurry"], ["--negative-prompt", "a green triangle"]),
        (
            ["--vae", "{root}/vae-diffusion", "--decoder-steps", "1"],
            ["--vae", "{root}/vae-diffusion", "--decoder-steps", "8"],
        ),
        ([], ["--vae", "{root}/vae-diffusion", "--decoder-steps", "1"]),
        (["--dtype", "float32"], ["--dtype", "bfloat16"]),
    ],
)
def test_cli_generate_every_option_reaches_the_video(tiny_checkpoint, tmp_path, base, changed, one_thread):
    """Same options = the same video; changing one option changes it (so it reached the code it names)."""
    fill = lambda args: [a.format(root=tiny_checkpoint) for a in args]  # noqa: E731
    first = _generate(tiny_checkpoint, tmp_path / "a", *fill(base))
    again = _generate(tiny_checkpoint, tmp_path / "b", *fill(base))
    other = _generate(tiny_checkpoint, tmp_path / "c", *fill(changed))
    assert len(first) == len(again) == len(other) == 1
    (a,), (b,), (c,) = first.values(), again.values(), other.values()
    assert torch.equal(a, b)
    assert (a - c).abs().mean() > 1e-2


def test_cli_generate_num_fps_device_and_gif(tiny_checkpoint, tmp_path):
    from hivae.data import video_info

    argv = [
        "generate",
        "--checkpoint",
        str(tiny_checkpoint / "pipe"),
        "--steps",
        "2",
        "--num",
        "2",
        "--fps",
        "5",
        "--device",
        "cpu",
        "--prompt",
        "a red circle moving left",
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 0
    mp4s = sorted(tmp_path.glob("*.mp4"))
    assert [p.name for p in mp4s] == ["a_red_circle_moving_left_seed0_0.mp4", "a_red_circle_moving_left_seed0_1.mp4"]
    assert len(list(tmp_path.glob("*.gif"))) == 2
    assert video_info(mp4s[0]).fps == pytest.approx(5) and video_info(mp4s[0]).num_frames == 8
    assert not torch.equal(read_video(mp4s[0], 8), read_video(mp4s[1], 8))  # two samples, not one twice


def test_cli_generate_with_the_shipped_checkpoint_follows_the_prompt(tmp_path):
    from hivae.shape_detector import detect_attributes

    argv = ["generate", "--prompt", "a green square moving right", "--steps", "10", "--no-gif", "--out", str(tmp_path)]
    assert main(argv) == 0
    found = detect_attributes(read_video(tmp_path / "a_green_square_moving_right_seed0_0.mp4", 16))
    assert (found.colour, found.motion) == ("green", "right")


def test_shipped_diffusion_decoder_swaps_in():
    """vae-diffusion is a stage 2 on the shipped tokenizer: with 0 decoder steps it decodes exactly like it."""
    from hivae.loading import default_checkpoint
    from pipelines.cli import load_pipeline

    checkpoint = str(default_checkpoint())
    plain = load_pipeline(checkpoint)
    pipe = load_pipeline(checkpoint, vae=f"{checkpoint}/vae-diffusion")
    assert pipe.vae.config.decoder_type == "diffusion"
    assert {k: v for k, v in pipe.vae.config.items() if k.endswith(("_shift", "_scale"))} == {
        k: v for k, v in plain.vae.config.items() if k.endswith(("_shift", "_scale"))
    }
    run = lambda p, steps: (
        p(  # noqa: E731
            "a red circle moving left",
            num_inference_steps=2,
            decoder_steps=steps,
            output_type="pt",
            generator=torch.Generator().manual_seed(0),
        ).frames
    )
    torch.testing.assert_close(run(pipe, 0), run(plain, None))
    assert not torch.equal(run(pipe, 2), run(plain, None))


def test_default_checkpoint_error_says_where_to_point(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HIVAE_CHECKPOINT", str(tmp_path / "nowhere"))
    assert main(["generate", "--steps", "1"]) == 2
    assert "set HIVAE_CHECKPOINT=PATH" in capsys.readouterr().err


def test_cli_reconstruct_and_eval(tmp_path, capsys):
    from hivae.metrics import psnr

    video = MovingShapes(1, 16, 64, seed=3)[0]["video"]
    write_video(tmp_path / "in.mp4", video)
    argv = ["reconstruct", "--input", str(tmp_path / "in.mp4"), "--tokenizer", "shapes", "--out", str(tmp_path / "r")]
    assert main(argv) == 0
    side_by_side = read_video(tmp_path / "r" / "in_recon.mp4", 16)  # left: input, right: reconstruction
    left, right = side_by_side[..., :64], side_by_side[..., 64:]
    printed = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert psnr(right[None], left[None]).item() > 28 and printed["psnr"] > 28
    assert main(["eval", "--num", "2", "--out", str(tmp_path / "e")]) == 0
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["compression_ratio"] > 500 and metrics["psnr"] > metrics["psnr_background"] + 10
    assert metrics["num_clips"] == 2 and "psnr_foreground" in capsys.readouterr().out
    assert main(["eval", "--num", "2", "--seed", "5", "--out", str(tmp_path / "f")]) == 0
    assert json.loads((tmp_path / "f" / "metrics.json").read_text())["psnr"] != metrics["psnr"]  # --seed: other clips


def test_cli_interpolate_and_edit(tmp_path):
    from hivae.metrics import psnr

    data = MovingShapes(2, 16, 64, seed=4)
    videos = [data[i]["video"] for i in range(2)]
    for i in range(2):
        write_video(tmp_path / f"v{i}.mp4", videos[i])
    v0, v1 = (str(tmp_path / f"v{i}.mp4") for i in range(2))
    argv = ["interpolate", "--video-a", v0, "--video-b", v1, "--num-steps", "3", "--checkpoint", "shapes"]
    argv += ["--out", str(tmp_path)]
    assert main(argv) == 0
    grid = read_video(tmp_path / "interpolation_both_slerp.mp4", 16)  # 3 panels, A to B
    first, last = grid[..., :64][None], grid[..., 128:][None]
    a, b = videos[0][None], videos[1][None]
    assert psnr(first, a) > psnr(first, b) + 5 and psnr(last, b) > psnr(last, a) + 5
    assert main(["edit", "--video", v0, "--motion-from", v1, "--checkpoint", "shapes", "--out", str(tmp_path)]) == 0
    transfer = read_video(tmp_path / "v0_motion_from_v1.mp4", 16)
    assert psnr(transfer[..., :64][None], a) > 30  # left: the source
    assert psnr(transfer[..., 64:][None], a) > 25  # on linear motions the structure of A carries its motion
    edit = ["edit", "--video", v0, "--prompt", "a blue square moving up", "--part", "structure", "--steps", "20"]
    assert main([*edit, "--strength", "1.0", "--out", str(tmp_path / "e1")]) == 0
    edited = read_video(tmp_path / "e1" / "v0_edit_structure.mp4", 16)[..., 64:]
    assert psnr(edited[None], a) < 25  # the structure (shape, colour) was regenerated under the new prompt
    from hivae.shape_detector import detect_attributes

    assert detect_attributes(edited).colour == "blue"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["shapes", "--out", "/tmp/x", "--size", "2"], "size must be at least 8"),
        (["generate", "--class", "pink blob", "--steps", "1"], "unknown class 'pink blob'"),
        (["generate", "--checkpoint", "/nonexistent", "--steps", "1"], "no model_index.json"),
        (["reconstruct", "--input", "/nonexistent.mp4"], "no such video file"),
        (["reconstruct", "--input", "/nonexistent.mp4", "--tokenizer", "shapes"], "no such video file"),
        (["edit", "--video", "/x.mp4"], "exactly one of --motion-from"),
        (["interpolate"], "give --video-a/--video-b or --prompt-a/--prompt-b"),
    ],
)
def test_cli_reports_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.fixture
def frame_tokenizer(tmp_path):
    """A small untrained frame-backbone HiVAE saved as a tokenizer-only folder (like the shipped natural one)."""
    from hivae import HiVAE

    torch.manual_seed(0)
    model = HiVAE(
        backbone="frame", sample_size=32, num_frames=8, base_channels=8, channel_mults=(1, 2), width=16,
        structure_channels=2, num_queries=2, structure_window=4, structure_downsample=0, structure_pool="mean",
        dynamics_channels=2, dynamics_width=8, dynamics_patch=8, dynamics_lowpass=2,
    )
    model.save_pretrained(tmp_path / "tok")
    return tmp_path / "tok"


def test_cli_reconstruct_any_length_and_size(frame_tokenizer, tmp_path, capsys):
    """A 20-frame 72x40 clip: tiled over time, shorter side to 32, width cut to a multiple of 8 (72*32/40 = 57.6
    -> 58 -> 56); the written side-by-side keeps all 20 frames. A 5-frame clip is padded, then cut back."""
    from hivae.data import video_info

    frames = np.random.default_rng(0).integers(0, 255, (20, 40, 72, 3), dtype=np.uint8)
    write_video(tmp_path / "long.mp4", frames)
    write_video(tmp_path / "short.mp4", frames[:5])
    for name, length in (("long", 20), ("short", 5)):
        argv = ["reconstruct", "--input", str(tmp_path / f"{name}.mp4"), "--tokenizer", str(frame_tokenizer)]
        assert main([*argv, "--out", str(tmp_path / name)]) == 0
        info = video_info(tmp_path / name / f"{name}_recon.mp4")
        assert (info.num_frames, info.height, info.width) == (length, 32, 2 * 56)
    out = capsys.readouterr().out
    assert "72x40, 20 of 20 frames -> 56x32" in out and "tiled in windows of 8 frames" in out
    argv = ["reconstruct", "--input", str(tmp_path / "long.mp4"), "--tokenizer", str(frame_tokenizer), "--square"]
    assert main([*argv, "--out", str(tmp_path / "sq")]) == 0
    assert video_info(tmp_path / "sq" / "long_recon.mp4").width == 64


def test_cli_reconstruct_warns_out_of_domain(frame_tokenizer, tmp_path, capsys):
    frames = np.random.default_rng(0).integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
    write_video(tmp_path / "clip.mp4", frames)
    argv = ["reconstruct", "--input", str(tmp_path / "clip.mp4"), "--tokenizer", str(frame_tokenizer), "--out"]
    for recorded, warned in ((60.0, True), (0.0, False)):
        (frame_tokenizer / "evaluation.json").write_text(json.dumps({"psnr": recorded, "dataset": "test clips"}))
        assert main([*argv, str(tmp_path / "out")]) == 0
        err = capsys.readouterr().err
        assert ("far below the 60.0 dB this tokenizer scores on test clips" in err) == warned, err


def test_cli_video_commands_with_a_tokenizer_only_checkpoint(frame_tokenizer, tmp_path, capsys):
    """interpolate / edit --motion-from need no generator; prompts with a tokenizer-only checkpoint say so."""
    rng = np.random.default_rng(1)
    write_video(tmp_path / "a.mp4", rng.integers(0, 255, (12, 32, 48, 3), dtype=np.uint8))
    write_video(tmp_path / "b.mp4", rng.integers(0, 255, (10, 40, 40, 3), dtype=np.uint8))
    a, b, tok = str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4"), str(frame_tokenizer)
    argv = ["interpolate", "--video-a", a, "--video-b", b, "--num-steps", "3", "--checkpoint", tok]
    assert main([*argv, "--out", str(tmp_path / "i")]) == 0
    from hivae.data import video_info

    grid = video_info(tmp_path / "i" / "interpolation_both_slerp.mp4")
    assert (grid.num_frames, grid.height, grid.width) == (10, 32, 3 * 48)  # B cut to 10 frames, fitted to A's size
    assert main(["edit", "--video", a, "--motion-from", b, "--checkpoint", tok, "--out", str(tmp_path / "e")]) == 0
    edit = video_info(tmp_path / "e" / "a_motion_from_b.mp4")
    assert (edit.num_frames, edit.height, edit.width) == (10, 32, 2 * 48)
    assert main(["interpolate", "--prompt-a", "x", "--prompt-b", "y", "--checkpoint", tok]) == 2
    assert "needs a generator" in capsys.readouterr().err
