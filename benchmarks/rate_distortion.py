"""Rate-distortion: HiVAE vs the plain 3D-conv VAE at equal compression, same data, same training budget.

    python benchmarks/rate_distortion.py                       # shapes-32 presets, 1500 steps each (CPU: ~40 min)
    python benchmarks/rate_distortion.py --steps 200 --quick   # smoke run

Each model is trained with gen/train_tokenizer.py under runs/rate_distortion/<name> (or loaded when its model/
folder exists), then all are evaluated on the same held-out clips. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import print_table, write_json  # noqa: E402
from gen.train_tokenizer import main as train_tokenizer  # noqa: E402
from hivae.data import MovingShapes  # noqa: E402
from hivae.evaluation import evaluate_tokenizer  # noqa: E402
from hivae.loading import load_tokenizer  # noqa: E402

PRESETS = {  # name -> tokenizer preset
    "hivae-512x": "configs/tokenizer/shapes-32.yaml",
    "baseline-512x": "configs/tokenizer/baseline-512x-32.yaml",
    "baseline-48x": "configs/tokenizer/baseline-48x-32.yaml",
}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500, help="training steps per model (same budget for all)")
    parser.add_argument("--clips", type=int, default=64, help="held-out evaluation clips")
    parser.add_argument("--runs", default=str(ROOT / "runs" / "rate_distortion"))
    parser.add_argument("--quick", action="store_true", help="tiny eval set, for a smoke run")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "rate_distortion.json"))
    args = parser.parse_args(argv)

    clips = torch.stack([MovingShapes(args.clips, 16, 32, seed=12345)[i]["video"] for i in range(args.clips)])
    if args.quick:
        clips = clips[:8]
    rows = []
    for name, preset in PRESETS.items():
        run = Path(args.runs) / f"{name}-{args.steps}"
        if not (run / "model" / "config.json").is_file():
            train_tokenizer(
                [
                    "--config",
                    preset,
                    f"train.output_dir={run}",
                    f"train.max_steps={args.steps}",
                    "train.sample_every=0",
                    "eval_clips=8",
                ]
            )
        model = load_tokenizer(str(run / "model"))
        metrics = evaluate_tokenizer(model, clips)
        rows.append(
            {
                "model": name,
                "steps": args.steps,
                "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
                **{k: v for k, v in metrics.items() if k != "num_clips"},
            }
        )
    print_table(
        rows,
        [
            "model",
            "compression_ratio",
            "compression_percent",
            "psnr",
            "psnr_foreground",
            "psnr_background",
            "ssim",
            "temporal_consistency",
            "params_M",
        ],
    )
    return {"rows": rows, "path": str(write_json(args.out, {"clips": len(clips), "rows": rows}))}


if __name__ == "__main__":
    main()
