"""The benchmark suite: tokenizer throughput and memory against other video VAEs, scaling, DiT cost, generation time.

    python benchmarks/run_all.py --quick          # CPU quick mode (a few minutes on 2 cores): 64x64, 16 frames
    python benchmarks/run_all.py                  # full: frames 16/32/64 x resolution 64/128/256 (GPU advised)
    python benchmarks/run_all.py --dtype bf16     # on a GPU

Sections (one JSON per run in benchmarks/results/run_all-<machine>.json, plus a PNG plot when matplotlib exists):
  tokenizers  encode and decode clips/s and peak memory of HiVAE, the 3D-conv baseline at 48x and at HiVAE's ratio,
              and diffusers' AutoencoderKLCogVideoX and AutoencoderKLLTXVideo (random init: speed only);
  scaling     the same for HiVAE across frames and resolutions (long clips through tiling);
  generation  seconds per generated clip with the shipped pipeline (20 steps, guidance 4);
  dit         tokens and training-step time of the DiT on HiVAE vs 48x latents (benchmarks/dit_tokens.py).
Rate-distortion needs training and lives in benchmarks/rate_distortion.py (its latest JSON is copied in).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, print_table, timed, write_json  # noqa: E402

HIVAE_64 = dict(  # the shipped checkpoint's geometry
    base_channels=32, channel_mults=(1, 2, 2, 2), width=128, encoder_depth=2, decoder_depth=3, heads=4,
    structure_channels=4, num_queries=4, structure_downsample=1, qformer_depth=2, dynamics_channels=4,
)


def peak_memory_mib(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None


def tokenizer_row(name: str, model, frames: int, size: int, device: str, dtype, repeats: int) -> dict:
    """Encode/decode clips per second for one clip (B=1) of `frames` x `size` x `size`."""
    model = model.to(device).eval()
    if dtype != torch.float32:
        model = model.to(dtype)
    video = torch.rand(1, 3, frames, size, size, device=device, dtype=dtype) * 2 - 1
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with torch.no_grad():
        latent = model.encode(video).latent_dist.mode()
        encode_s = timed(lambda: model.encode(video).latent_dist.mode(), repeats=repeats)
        decode_s = timed(lambda: model.decode(latent), repeats=repeats)
    numel = latent.numel_per_clip() if hasattr(latent, "numel_per_clip") else latent[0].numel()
    return {
        "model": name, "frames": frames, "size": size, "compression": 3 * frames * size * size / numel,
        "encode_clips_per_s": 1 / encode_s, "decode_clips_per_s": 1 / decode_s, "peak_mem_MiB": peak_memory_mib(device),
        "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
    }


def tokenizers(frames: int, size: int, device: str, dtype, repeats: int) -> list[dict]:
    from diffusers import AutoencoderKLCogVideoX, AutoencoderKLLTXVideo

    from hivae import HiVAE, VideoVAE3D

    hivae = HiVAE(sample_size=size, num_frames=16, **HIVAE_64)
    if frames > 16:
        hivae.enable_tiling(overlap=0)
    rows = [tokenizer_row("HiVAE", hivae, frames, size, device, dtype, repeats)]
    for label, channels in (("3D-VAE 48x", 16), ("3D-VAE 8x8x8, 3 ch", 3)):
        base = VideoVAE3D(sample_size=size, num_frames=frames, base_channels=32, latent_channels=channels,
                          temporal_downsample=2 if channels == 16 else 3)
        rows.append(tokenizer_row(label, base, frames, size, device, dtype, repeats))
    for label, cls in (("CogVideoX VAE (random)", AutoencoderKLCogVideoX), ("LTX-Video VAE (random)", AutoencoderKLLTXVideo)):
        rows.append(tokenizer_row(label, cls(), frames + 1, size, device, dtype, repeats))  # they take 8k+1 frames
    return rows


def generation(device: str, repeats: int) -> list[dict]:
    from hivae.cli import DEFAULT_CHECKPOINT
    from pipelines import HiVAEVideoPipeline

    pipe = HiVAEVideoPipeline.from_pretrained(DEFAULT_CHECKPOINT).to(device)
    pipe.set_progress_bar_config(disable=True)
    rows = []
    for batch in (1, 8):
        seconds = timed(lambda b=batch: pipe(["a red circle moving left"] * b, num_inference_steps=20), repeats=repeats)
        rows.append({"batch": batch, "steps": 20, "s_per_clip": seconds / batch})
    return rows


def plot(results: dict, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot (pip install matplotlib)")
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for size in sorted({r["size"] for r in results["scaling"]}):
        rows = [r for r in results["scaling"] if r["size"] == size]
        axes[0].plot([r["frames"] for r in rows], [r["encode_clips_per_s"] for r in rows], marker="o", label=f"{size}px")
        axes[1].plot([r["frames"] for r in rows], [r["decode_clips_per_s"] for r in rows], marker="o", label=f"{size}px")
    for ax, title in zip(axes, ("HiVAE encode", "HiVAE decode")):
        ax.set(title=title, xlabel="frames", ylabel="clips/s", yscale="log")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    print(f"wrote {path}")
    return path


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CPU quick mode: one size, few repeats")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    repeats = args.repeats or (1 if args.quick else 3)
    frame_grid, size_grid = ((16, 32), (64,)) if args.quick else ((16, 32, 64), (64, 128, 256))

    results: dict = {"device": machine(), "dtype": args.dtype, "quick": args.quick}
    print("== tokenizers (one 16x64x64 clip)")
    results["tokenizers"] = tokenizers(16, 64, device, dtype, repeats)
    print_table(results["tokenizers"], ["model", "compression", "encode_clips_per_s", "decode_clips_per_s", "peak_mem_MiB", "params_M"])

    print("== HiVAE scaling")
    from hivae import HiVAE

    results["scaling"] = []
    for size in size_grid:
        for frames in frame_grid:
            model = HiVAE(sample_size=size, num_frames=16, **HIVAE_64)
            if frames > 16:
                model.enable_tiling(overlap=0)
            results["scaling"].append(tokenizer_row("HiVAE", model, frames, size, device, dtype, repeats))
    print_table(results["scaling"], ["frames", "size", "encode_clips_per_s", "decode_clips_per_s", "peak_mem_MiB"])

    print("== generation (shipped pipeline)")
    results["generation"] = generation(device, repeats)
    print_table(results["generation"], ["batch", "steps", "s_per_clip"])

    print("== DiT on HiVAE vs 48x latents")
    from benchmarks.dit_tokens import main as dit_tokens

    results["dit"] = dit_tokens(["--batch", "8" if args.quick else "32", "--steps", str(repeats),
                                 "--out", str(ROOT / "benchmarks" / "results" / "dit_tokens-run_all.json")])
    rd = ROOT / "benchmarks" / "results" / "rate_distortion.json"
    results["rate_distortion"] = json.loads(rd.read_text()) if rd.is_file() else None

    stem = "run_all-" + re.sub(r"[^A-Za-z0-9]+", "_", machine()).strip("_").lower()[:40]
    write_json(ROOT / "benchmarks" / "results" / f"{stem}.json", results)
    plot(results, ROOT / "benchmarks" / "results" / f"{stem}.png")
    return results


if __name__ == "__main__":
    main()
