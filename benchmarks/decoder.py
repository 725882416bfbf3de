"""Diffusion decoder vs deterministic decoder: PSNR / SSIM and decode time against the number of steps.

    python benchmarks/decoder.py --tokenizer runs/tokenizer-shapes-64-diffusion/model
    python benchmarks/decoder.py --tokenizer ... --steps 1 2 4 8 50 --clips 32

The tokenizer must have decoder_type="diffusion" (train one with configs/tokenizer/shapes-64-diffusion.yaml).
All rows decode the same posterior-mean latents of the same held-out shapes clips with the same noise seed.
detail_ratio (hivae.metrics) is the fine-detail energy of the decode over that of the clip: 1 = as detailed as the
input, < 1 = blurred. A generative decoder restores detail the latent does not pin down, so its PSNR can drop while
the detail ratio approaches 1: read the two together.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import print_table, timed, write_json  # noqa: E402
from hivae.data import MovingShapes  # noqa: E402
from hivae.evaluation import reconstruction_metrics  # noqa: E402
from hivae.loading import load_tokenizer  # noqa: E402


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", required=True, help="save_pretrained folder of a diffusion-decoder HiVAE")
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 8, 50])
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "decoder.json"))
    args = parser.parse_args(argv)

    model = load_tokenizer(args.tokenizer)
    if model.config.decoder_type != "diffusion":
        raise SystemExit(f"{args.tokenizer}: decoder_type is {model.config.decoder_type!r}, need 'diffusion'")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    c = model.config
    data = MovingShapes(args.clips, c.num_frames, c.sample_size, seed=777)
    videos = torch.stack([data[i]["video"] for i in range(args.clips)])
    with torch.no_grad():
        latent = model.encode(videos.to(device)).latent_dist.mode()
    rows = []
    for steps in [0, *args.steps]:

        def decode(steps=steps):
            with torch.no_grad():
                return model.decode(
                    latent, num_inference_steps=steps, generator=torch.Generator(device).manual_seed(0)
                ).sample

        seconds = timed(decode, repeats=1, warmup=0)
        metrics = reconstruction_metrics(decode().float().clamp(-1, 1).cpu(), videos)
        rows.append(
            {
                "decoder": "deterministic" if steps == 0 else f"diffusion, {steps} steps",
                "steps": steps,
                "psnr": metrics["psnr"],
                "ssim": metrics["ssim"],
                "psnr_foreground": metrics["psnr_foreground"],
                "detail_ratio": metrics["detail_ratio"],
                "decode_s_per_clip": seconds / args.clips,
            }
        )
    reference = next((r["psnr"] for r in rows if r["steps"] == max(args.steps)), None)
    for row in rows:
        row["psnr_vs_most_steps"] = row["psnr"] - reference if reference is not None else None
    print_table(
        rows, ["decoder", "psnr", "psnr_vs_most_steps", "ssim", "psnr_foreground", "detail_ratio", "decode_s_per_clip"]
    )
    write_json(args.out, {"tokenizer": args.tokenizer, "clips": args.clips, "rows": rows})
    return rows


if __name__ == "__main__":
    main()
