"""Mode collapse check: across seeds of one prompt, do start position, size and pattern phase vary like the data?

    python benchmarks/diversity.py                      # shipped pipeline, 12 classes x 16 seeds

For each class (spread over the table), the standard deviation across seeds of the generated clips' start x, start y,
size and pattern phase (`hivae.shape_detector.clip_statistics`) is compared with the same over rendered data clips
of that class; a ratio of 1 is the data's variety, 0 a collapse to one clip. Writes
benchmarks/results/diversity.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_table, write_json  # noqa: E402
from hivae.data import MovingShapes  # noqa: E402
from hivae.loading import default_checkpoint  # noqa: E402
from hivae.shape_detector import clip_statistics  # noqa: E402
from pipelines import HiVAEVideoPipeline, frames_to_video  # noqa: E402
from pipelines.evaluation import class_table  # noqa: E402

KEYS = ("start_x", "start_y", "size", "phase")


def spread(videos: torch.Tensor) -> dict[str, float]:
    """Std over clips of each statistic (clips without a readable object are skipped)."""
    stats = [s for s in (clip_statistics(v) for v in videos) if s is not None]
    out = {}
    for key in KEYS:
        values = [s[key] for s in stats if s[key] is not None]
        out[key] = float(np.std(values)) if len(values) >= 2 else float("nan")
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="pipeline folder (default: shipped)")
    parser.add_argument("--classes", type=int, default=12, help="classes spread over the table")
    parser.add_argument("--seeds", type=int, default=16, help="generated clips per class")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance", type=float, default=3.0)
    args = parser.parse_args(argv)
    pipe = HiVAEVideoPipeline.from_pretrained(args.checkpoint or default_checkpoint())
    pipe.set_progress_bar_config(disable=True)
    table = class_table(pipe)
    vae = pipe.vae.config
    labels = np.linspace(0, len(table) - 1, args.classes).round().astype(int).tolist()
    rows = []
    for label in labels:
        shape, colour, motion, pattern = table.attributes(label)
        frames = pipe(
            table.caption(label),
            num_inference_steps=args.steps,
            guidance_scale=args.guidance,
            num_videos_per_prompt=args.seeds,
            generator=[torch.Generator().manual_seed(s) for s in range(args.seeds)],
            output_type="pt",
        ).frames
        generated = spread(frames_to_video(frames))
        data = MovingShapes(
            args.seeds,
            vae.num_frames,
            vae.sample_size,
            seed=777,
            shapes=(shape,),
            colours=(colour,),
            motions=(motion,),
            patterns=(pattern,),
            path_variation=1.0,
        )
        reference = spread(torch.stack([data[i]["video"] for i in range(len(data))]))
        row = {"class": table.name(label)}
        for key in KEYS:
            row[key] = generated[key] / reference[key] if reference[key] > 0 else float("nan")
        rows.append(row)
    mean = {key: float(np.nanmean([r[key] for r in rows])) for key in KEYS}
    rows.append({"class": "mean", **mean})
    print("std across seeds, generated / data (1 = the data's variety)")
    print_table(rows, ["class", *KEYS])
    write_json(Path(__file__).parent / "results" / "diversity.json", {"args": vars(args), "rows": rows})
    return {"rows": rows, "mean": mean}


if __name__ == "__main__":
    main()
