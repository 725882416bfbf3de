"""Render the README gallery (docs/gallery/*.gif) with the shipped checkpoint. Run: .venv/bin/python scripts/make_gallery.py"""

from pathlib import Path

import torch
from einops import rearrange

from hivae.data import MovingShapes, write_video
from hivae.loading import default_checkpoint
from pipelines import HiVAEEditPipeline, HiVAEInterpolationPipeline, HiVAEVideoPipeline, frames_to_video

OUT = Path(__file__).resolve().parents[1] / "docs" / "gallery"


def side_by_side(frames_pt: torch.Tensor) -> torch.Tensor:
    """(B, T, 3, H, W) in [0, 1] -> (3, T, H, B*W) in [-1, 1]."""
    return rearrange(frames_to_video(frames_pt), "b c t h w -> c t h (b w)")


def main() -> None:
    pipe = HiVAEVideoPipeline.from_pretrained(default_checkpoint())
    pipe.set_progress_bar_config(disable=True)
    prompts = [
        "a red circle moving left",
        "a blue square moving up",
        "a green triangle moving right",
        "a yellow circle staying still",
        "a magenta square moving down",
        "a cyan triangle moving left",
    ]
    frames = pipe(prompts, num_inference_steps=20, generator=torch.Generator().manual_seed(0), output_type="pt").frames
    write_video(OUT / "generated.gif", side_by_side(frames))

    interp = HiVAEInterpolationPipeline.from_pipe(pipe)
    result = interp(
        prompt_a="a red circle moving left",
        prompt_b="a blue square moving up",
        num_steps=5,
        generator=torch.Generator().manual_seed(0),
        output_type="pt",
    )
    write_video(OUT / "interpolation.gif", result.grid[0])

    edit = HiVAEEditPipeline.from_pipe(pipe)
    data = MovingShapes(64, 16, 64, seed=21)
    first = {m: next(i for i in range(len(data)) if data[i]["motion"] == m) for m in ("right", "up")}
    a, b = data[first["right"]]["video"][None], data[first["up"]]["video"][None]
    moved = edit.motion_transfer(a, b, output_type="pt").frames
    write_video(OUT / "motion_transfer.gif", torch.cat([a[0], b[0], side_by_side(moved)], dim=3))
    edited = edit(
        a,
        prompt="a red square moving right",
        part="structure",
        strength=0.9,
        generator=torch.Generator().manual_seed(0),
        output_type="pt",
    ).frames
    write_video(OUT / "prompt_edit.gif", torch.cat([a[0], side_by_side(edited)], dim=3))

    clips = torch.stack([data[i]["video"] for i in range(4)])
    with torch.no_grad():
        recon = pipe.vae(clips).sample.clamp(-1, 1)
    write_video(
        OUT / "reconstruction.gif",
        torch.cat([rearrange(clips, "b c t h w -> c t h (b w)"), rearrange(recon, "b c t h w -> c t h (b w)")], dim=2),
    )
    print("motion transfer:", data[first["right"]]["text"], "<- motion of", data[first["up"]]["text"])
    print(f"wrote gallery to {OUT}")


if __name__ == "__main__":
    main()
