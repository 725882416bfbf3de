import json

import pytest

from pipelines.cli import main
from hivae.data import MovingShapes, VideoFolderDataset, write_video


def test_cli_shapes_writes_a_videofolder(tmp_path, capsys):
    assert main(["shapes", "--out", str(tmp_path / "s"), "--num", "2", "--size", "32", "--gif"]) == 0
    assert "wrote 2 clips" in capsys.readouterr().out
    rows = [json.loads(line) for line in (tmp_path / "s" / "metadata.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and (tmp_path / "s" / "clip_00000.gif").is_file()
    assert VideoFolderDataset(tmp_path / "s", num_frames=16)[1]["label"] == rows[1]["label"]


def test_cli_generate_with_shipped_checkpoint(tmp_path, capsys):
    assert main(["generate", "--prompt", "a red circle moving left", "--steps", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert (
        "a_red_circle_moving_left_seed0_0.mp4" in out and (tmp_path / "a_red_circle_moving_left_seed0_0.gif").is_file()
    )
    assert main(["generate", "--class", "blue square up", "--steps", "2", "--no-gif", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "class42_seed0_0.mp4").is_file()


def test_shipped_diffusion_decoder_swaps_in(tmp_path):
    """vae-diffusion is a stage 2 on the shipped tokenizer: with 0 decoder steps it decodes exactly like it."""
    import torch

    from hivae.loading import default_checkpoint
    from pipelines.cli import load_pipeline

    DEFAULT_CHECKPOINT = str(default_checkpoint())

    plain = load_pipeline(DEFAULT_CHECKPOINT)
    pipe = load_pipeline(DEFAULT_CHECKPOINT, vae=f"{DEFAULT_CHECKPOINT}/vae-diffusion")
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
    assert (
        main(
            [
                "generate",
                "--prompt",
                "a blue square moving up",
                "--steps",
                "2",
                "--no-gif",
                "--out",
                str(tmp_path),
                "--vae",
                f"{DEFAULT_CHECKPOINT}/vae-diffusion",
                "--decoder-steps",
                "1",
            ]
        )
        == 0
    )
    assert (tmp_path / "a_blue_square_moving_up_seed0_0.mp4").is_file()


def test_cli_reconstruct_and_eval(tmp_path, capsys):
    video = MovingShapes(1, 16, 64, seed=3)[0]["video"]
    write_video(tmp_path / "in.mp4", video)
    assert main(["reconstruct", "--input", str(tmp_path / "in.mp4"), "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "in_recon.mp4").is_file()
    assert main(["eval", "--num", "2", "--out", str(tmp_path / "e")]) == 0
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["compression_ratio"] > 500 and metrics["psnr"] > metrics["psnr_background"]
    assert "psnr_foreground" in capsys.readouterr().out


def test_cli_interpolate_and_edit(tmp_path):
    data = MovingShapes(2, 16, 64, seed=4)
    for i in range(2):
        write_video(tmp_path / f"v{i}.mp4", data[i]["video"])
    assert (
        main(
            [
                "interpolate",
                "--video-a",
                str(tmp_path / "v0.mp4"),
                "--video-b",
                str(tmp_path / "v1.mp4"),
                "--num-steps",
                "3",
                "--part",
                "structure",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert (tmp_path / "interpolation_structure_slerp.mp4").is_file()
    assert (
        main(
            [
                "edit",
                "--video",
                str(tmp_path / "v0.mp4"),
                "--motion-from",
                str(tmp_path / "v1.mp4"),
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert (tmp_path / "v0_motion_from_v1.gif").is_file()
    assert (
        main(
            [
                "edit",
                "--video",
                str(tmp_path / "v0.mp4"),
                "--prompt",
                "a red circle moving right",
                "--steps",
                "2",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )


@pytest.mark.parametrize(
    "argv,message",
    [
        (["shapes", "--out", "/tmp/x", "--size", "2"], "size must be at least 8"),
        (["generate", "--class", "pink blob", "--steps", "1"], "unknown class 'pink blob'"),
        (["generate", "--checkpoint", "/nonexistent", "--steps", "1"], "no model_index.json"),
        (["reconstruct", "--input", "/nonexistent.mp4"], "no such video file"),
        (["edit", "--video", "/x.mp4"], "exactly one of --motion-from"),
        (["interpolate"], "give --video-a/--video-b or --prompt-a/--prompt-b"),
    ],
)
def test_cli_reports_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
