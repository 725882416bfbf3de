"""The benchmark suite: what a user choosing between HiVAE and a 48x / 192x video-VAE stack wants to know.

    python benchmarks/run_all.py --quick                       # CPU quick mode (~4 min on 2 cores)
    python benchmarks/run_all.py --dtype bf16 --compile        # full, on a GPU: frames 16/32/64 x 64/128/256 px

Sections (printed as tables; one JSON + one SVG plot per machine in benchmarks/results/run_all-<machine>.*):
  rate_distortion  the shipped tokenizer's PSNR / SSIM at its compression on held-out clips, measured now; the
                   equal-budget comparison against the 3D-VAE at 48x and at HiVAE's ratio is trained by
                   benchmarks/rate_distortion.py (full mode with --rd-minutes runs it; otherwise its last JSONs are read);
  tokenizers       encode / decode clips/s and peak memory on one equal-size clip: HiVAE, the 3D-conv VAE at 48x and
                   at HiVAE's ratio, diffusers' AutoencoderKLCogVideoX and AutoencoderKLLTXVideo (random init);
  scaling          per (frames, size): HiVAE and 48x encode / decode, DiT tokens and training-step time on HiVAE vs
                   48x latents (benchmarks/dit_tokens.py), generation seconds per clip;
  dit_efficiency   FLOPs, achieved TFLOP/s and MFU of DiT training per SDPA kernel, eager vs torch.compile.
Every measurement runs in its own subprocess, so peak memory (CUDA max allocated, or the process's peak RSS on CPU)
is its own. Models other than the shipped checkpoint are randomly initialised: their rows measure speed only.
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

from benchmarks.common import (  # noqa: E402
    machine,
    peak_memory_mib,
    print_table,
    run_isolated,
    shipped_config,
    timed,
    write_json,
)
from benchmarks.svg_plot import Panel, write_svg  # noqa: E402


def shipped_hivae(size: int, frames: int):
    """A random HiVAE with the shipped checkpoint's architecture for size x size clips; tiled past 16 frames."""
    from hivae import HiVAE
    from hivae.model import LATENT_STATISTICS

    config = {k: v for k, v in shipped_config("vae").items() if k not in LATENT_STATISTICS}
    model = HiVAE(**(config | {"sample_size": size}))
    if frames > model.config.num_frames:
        model.enable_tiling(overlap=0)
    return model


TOKENIZERS = ["HiVAE", "3D-VAE 48x", "3D-VAE 512x", "CogVideoX VAE", "LTX-Video VAE"]


# ---------------------------------------------------------------------------------------------- measurements
def build_tokenizer(name: str, frames: int, size: int):
    """(model, frames it takes): CogVideoX / LTX-Video VAEs take 8k+1 frames."""
    from diffusers import AutoencoderKLCogVideoX, AutoencoderKLLTXVideo

    from hivae import VideoVAE3D

    if name == "HiVAE":
        return shipped_hivae(size, frames), frames
    if name.startswith("3D-VAE"):
        ratio48 = name.endswith("48x")  # 16 ch on 4x8x8 cells = 48x; 3 ch on 8x8x8 cells = 512x
        model = VideoVAE3D(
            sample_size=size,
            num_frames=frames,
            base_channels=32,
            latent_channels=16 if ratio48 else 3,
            temporal_downsample=2 if ratio48 else 3,
        )
        return model, frames
    cls = {"CogVideoX VAE": AutoencoderKLCogVideoX, "LTX-Video VAE": AutoencoderKLLTXVideo}[name]
    return cls(), frames + 1


def measure_tokenizer(name: str, frames: int, size: int, dtype: str, repeats: int) -> dict:
    """Encode / decode clips per second and peak memory for one clip (B=1) of frames x size x size."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch_dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
    model, clip_frames = build_tokenizer(name, frames, size)
    model = model.to(device, torch_dtype).eval()
    video = torch.rand(1, 3, clip_frames, size, size, device=device, dtype=torch_dtype) * 2 - 1
    with torch.no_grad():
        latent = model.encode(video).latent_dist.mode()
        encode_s = timed(lambda: model.encode(video).latent_dist.mode(), repeats=repeats)
        decode_s = timed(lambda: model.decode(latent), repeats=repeats)
    from hivae import VideoVAE3D

    if isinstance(model, VideoVAE3D):
        numel = latent.structure[0].numel()  # the grid: the constant dynamics slot carries nothing
    else:
        numel = latent.numel_per_clip() if hasattr(latent, "numel_per_clip") else latent[0].numel()
    return {
        "model": name,
        "frames": frames,
        "size": size,
        "compression": 3 * clip_frames * size * size / numel,
        "encode_clips_per_s": 1 / encode_s,
        "decode_clips_per_s": 1 / decode_s,
        "peak_mem_MiB": peak_memory_mib(),
        "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
    }


def measure_generation(frames: int, size: int, steps: int, repeats: int) -> dict:
    """Seconds per generated clip (batch 1, CFG) of the shipped DiT + HiVAE geometry at frames x size x size."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from gen.dit import HiVAEDiT
    from gen.text_encoder import load_text_encoder
    from pipelines import HiVAEVideoPipeline

    device = "cuda" if torch.cuda.is_available() else "cpu"
    vae = shipped_hivae(size, frames)
    (_, n_q, *_), (_, t, *_) = vae.latent_shapes(frames)
    dit_size = {
        k: shipped_config("transformer")[k] for k in ("hidden_size", "depth", "heads", "num_classes", "text_dim")
    }
    dit = HiVAEDiT.from_tokenizer(vae, num_queries=n_q, num_frames=t, **dit_size)
    tokenizer, encoder = load_text_encoder()
    pipe = HiVAEVideoPipeline(vae.eval(), dit.eval(), FlowMatchEulerDiscreteScheduler(), encoder, tokenizer)
    pipe.to(device).set_progress_bar_config(disable=True)
    seconds = timed(lambda: pipe("a red circle moving left", num_inference_steps=steps), repeats=repeats)
    return {"frames": frames, "size": size, "steps": steps, "s_per_clip": seconds, "peak_mem_MiB": peak_memory_mib()}


def isolated(kind: str, **kwargs) -> dict:
    """Run one measurement in a fresh Python process (own peak memory); returns its row."""
    return run_isolated([__file__, "--measure", json.dumps({"kind": kind, **kwargs})])


MEASUREMENTS = {"tokenizer": measure_tokenizer, "generation": measure_generation}


# ---------------------------------------------------------------------------------------------- sections
def rate_distortion(args) -> dict:
    from hivae.data import MovingShapes
    from hivae.evaluation import evaluate_tokenizer
    from hivae.loading import default_checkpoint, load_tokenizer

    result: dict = {}
    vae = load_tokenizer(default_checkpoint() / "vae").eval()
    clips = 16 if args.quick else 64
    data = MovingShapes(clips, vae.config.num_frames, vae.config.sample_size, seed=1234)
    metrics = evaluate_tokenizer(vae, torch.stack([data[i]["video"] for i in range(clips)]))
    result["shipped"] = {"tokenizer": "checkpoints/hivae-shapes-64", **metrics}
    print_table([result["shipped"]], ["tokenizer", "compression_ratio", "psnr", "ssim", "psnr_foreground"])
    if not args.quick and args.rd_minutes:
        from benchmarks.rate_distortion import main as train_and_compare

        train_and_compare(["--minutes", str(args.rd_minutes)])
    for path in sorted((ROOT / "benchmarks" / "results").glob("rate_distortion-*.json")):
        record = json.loads(path.read_text())
        result[path.stem] = record
        print(f"equal-compute rate-distortion ({path.name}, {record.get('machine')}):")
        print_table(record["rows"], ["model", "compression_ratio", "psnr", "ssim", "minutes", "steps"])
    return result


def tokenizers(args, size: int, frames: int) -> list[dict]:
    rows = [
        isolated("tokenizer", name=n, frames=frames, size=size, dtype=args.dtype, repeats=args.repeats)
        for n in TOKENIZERS
    ]
    print_table(rows, ["model", "compression", "encode_clips_per_s", "decode_clips_per_s", "peak_mem_MiB", "params_M"])
    return rows


def scaling(args, frame_grid, size_grid) -> dict:
    from benchmarks.dit_tokens import main as dit_tokens

    result: dict = {"tokenizer": [], "dit": [], "generation": []}
    for size in size_grid:
        for frames in frame_grid:
            for name in ("HiVAE", "3D-VAE 48x"):
                row = isolated(
                    "tokenizer", name=name, frames=frames, size=size, dtype=args.dtype, repeats=args.repeats
                )
                result["tokenizer"].append(row)
            dit_args = ["--size", str(size), "--frames", str(frames), "--batch", str(args.dit_batch)]
            dit_args += ["--steps", str(args.repeats), "--cases", "hivae (614x)", "3d-vae 48x, patch 2"]
            for row in dit_tokens(
                dit_args + ["--out", str(ROOT / "benchmarks" / "results" / "dit_tokens-scaling.json")]
            ):
                result["dit"].append({"frames": frames, "size": size, **row})
            gen_steps = 20
            result["generation"].append(
                isolated("generation", frames=frames, size=size, steps=gen_steps, repeats=args.repeats)
            )
    print_table(
        result["tokenizer"], ["model", "frames", "size", "encode_clips_per_s", "decode_clips_per_s", "peak_mem_MiB"]
    )
    print_table(result["dit"], ["latent", "frames", "size", "tokens", "step_ms", "peak_mem_MiB"])
    print_table(result["generation"], ["frames", "size", "steps", "s_per_clip", "peak_mem_MiB"])
    return result


def dit_efficiency(args) -> dict:
    from benchmarks.dit_efficiency import main as efficiency

    out = ROOT / "benchmarks" / "results" / "dit_efficiency-run_all.json"
    # batch 8 in both modes: in full mode that is 8 x 4160 tokens through DiT-B
    cli = ["--dtype", args.dtype, "--batch", "8", "--steps", str(max(2, args.repeats)), "--out", str(out)]
    if args.quick:
        cli += ["--kernels", "sdpa (auto)", "sdpa math"]
    else:
        cli += ["--size", "256", "--frames", "64", "--dit", "DiT-B"]
    if args.compile:
        cli.append("--compile")
    rows = efficiency(cli)
    return {"settings": json.loads(out.read_text())["settings"], "rows": rows}


def plot(results: dict, path: Path) -> Path:
    scaling = results["scaling"]
    panels = [Panel("Tokenizer encode", "frames", "clips/s"), Panel("Tokenizer decode", "frames", "clips/s")]
    panels += [Panel("DiT training step", "frames", "ms"), Panel("Generation (20 steps)", "frames", "s / clip")]
    for row in scaling["tokenizer"]:
        label = f"{'HiVAE' if row['model'] == 'HiVAE' else '48x'} {row['size']}px"
        panels[0].series.setdefault(label, []).append((row["frames"], row["encode_clips_per_s"]))
        panels[1].series.setdefault(label, []).append((row["frames"], row["decode_clips_per_s"]))
    for row in scaling["dit"]:
        label = f"{'HiVAE' if row['latent'].startswith('hivae') else '48x p2'} {row['size']}px"
        panels[2].series.setdefault(label, []).append((row["frames"], row["step_ms"]))
    for row in scaling["generation"]:
        panels[3].series.setdefault(f"HiVAE {row['size']}px", []).append((row["frames"], row["s_per_clip"]))
    return write_svg(panels, path)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CPU quick mode: small grid, one repeat")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help="tokenizer and DiT precision")
    parser.add_argument("--compile", action="store_true", help="also time the DiT under torch.compile")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per row (default 1 quick, 3 full)")
    parser.add_argument(
        "--rd-minutes", type=float, default=0, help="full mode: train the rate-distortion models for this many minutes each (hours in all; 0 reads their last JSONs)"
    )
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one isolated measurement (JSON spec)
    args = parser.parse_args(argv)
    if args.measure:
        spec = json.loads(args.measure)
        row = MEASUREMENTS[spec.pop("kind")](**spec)
        print(json.dumps(row))
        return row
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.dit_batch = 8 if args.quick else 32
    frame_grid, size_grid = ((16, 32), (64, 128)) if args.quick else ((16, 32, 64), (64, 128, 256))

    results: dict = {"device": machine(), "dtype": args.dtype, "quick": args.quick}
    print("== rate-distortion")
    results["rate_distortion"] = rate_distortion(args)
    print("== tokenizers (one 16-frame clip, 64x64)")
    results["tokenizers"] = tokenizers(args, 64, 16)
    print("== scaling with frames and resolution")
    results["scaling"] = scaling(args, frame_grid, size_grid)
    print("== DiT training efficiency")
    results["dit_efficiency"] = dit_efficiency(args)

    stem = "run_all-" + re.sub(r"[^A-Za-z0-9]+", "_", machine()).strip("_").lower()[:40]
    write_json(ROOT / "benchmarks" / "results" / f"{stem}.json", results)
    plot(results, ROOT / "benchmarks" / "results" / f"{stem}.svg")
    return results


if __name__ == "__main__":
    main()
