"""Confusion matrices of the analytic attribute detector on rendered two-timescale shapes clips.

    python benchmarks/detector.py                 # 1000 clips at 32 px and 1000 at 64 px, all four patterns

The detector (`hivae.shape_detector`) judges generated and reconstructed clips; it is only worth what it reads from
clips whose attributes are known. Prints per-attribute accuracy and the confusions, writes
benchmarks/results/detector.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_table, write_json  # noqa: E402
from hivae.data import PATTERNS, MovingShapes  # noqa: E402
from hivae.shape_detector import ATTRIBUTES, attribute_accuracy, confusion_matrices  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=1000, help="clips per size")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--seed", type=int, default=2024, help="seed of the rendered clips (not a training seed)")
    args = parser.parse_args(argv)
    rows, matrices = [], {}
    for size in args.sizes:
        data = MovingShapes(args.clips, 16, size, seed=args.seed, patterns=PATTERNS, path_variation=1.0)
        items = [data[i] for i in range(len(data))]
        videos = torch.stack([item["video"] for item in items])
        targets = [tuple(item[key] for key in ATTRIBUTES) for item in items]
        accuracy = attribute_accuracy(videos, targets)
        rows.append({"size": size, "clips": len(items), **{k: round(100 * v, 2) for k, v in accuracy.items()}})
        matrices[str(size)] = confusion_matrices(videos, targets)
    print_table(rows, ["size", "clips", *ATTRIBUTES, "all"])
    for size, tables in matrices.items():
        for key, table in tables.items():
            errors = {t: {s: n for s, n in row.items() if s != t} for t, row in table.items()}
            errors = {t: r for t, r in errors.items() if r}
            if errors:
                print(f"{size} px {key} confusions (true: {{detected: count}}): {errors}")
    payload = {"args": vars(args), "patterns": list(PATTERNS), "accuracy_percent": rows, "confusion": matrices}
    write_json(Path(__file__).parent / "results" / "detector.json", payload)
    return payload


if __name__ == "__main__":
    main()
