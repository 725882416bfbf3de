"""Soak: encode/decode and generate in a loop and show that process memory stays flat.

    python benchmarks/soak.py --iterations 200        # shipped checkpoint, about 5 minutes on 2 CPU cores

Prints resident memory (RSS) every `--report` iterations and writes JSON; exits 1 if memory after the warm-up grows
by more than `--tolerance-mib`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import print_table, write_json  # noqa: E402
from hivae.data import MovingShapes  # noqa: E402
from hivae.loading import default_checkpoint  # noqa: E402
from pipelines import HiVAEVideoPipeline  # noqa: E402


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="pipeline folder (default: the shipped checkpoint)")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--report", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--tolerance-mib", type=float, default=50.0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "soak.json"))
    args = parser.parse_args(argv)

    pipe = HiVAEVideoPipeline.from_pretrained(args.checkpoint or default_checkpoint())
    pipe.set_progress_bar_config(disable=True)
    c = pipe.vae.config
    data = MovingShapes(args.iterations, c.num_frames, c.sample_size, seed=99)
    rows, baseline = [], None
    for i in range(args.iterations):
        with torch.no_grad():
            pipe.vae(data[i]["video"][None])
        pipe("a red circle moving left", num_inference_steps=4, generator=torch.Generator().manual_seed(i))
        if i + 1 == args.warmup:
            baseline = rss_mib()
        if (i + 1) % args.report == 0 or i + 1 == args.iterations:
            rows.append({"iteration": i + 1, "rss_MiB": rss_mib()})
    print_table(rows, ["iteration", "rss_MiB"])
    growth = rows[-1]["rss_MiB"] - (baseline or rows[0]["rss_MiB"])
    print(f"growth after warm-up: {growth:.1f} MiB (tolerance {args.tolerance_mib} MiB)")
    write_json(args.out, {"iterations": args.iterations, "rows": rows, "growth_MiB": growth})
    return 0 if growth <= args.tolerance_mib else 1


if __name__ == "__main__":
    sys.exit(main())
