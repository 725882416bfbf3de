"""The efficient `frame` backbone against the first (`spacetime`) design and diffusers' LTX-Video VAE.

    python benchmarks/backbone.py                       # speed: training step + encode/decode, 64/128/256 px
    python benchmarks/backbone.py --train-minutes 60    # + quality after 60 min of training each (2 h on 2 cores)

Speed, side by side in one run, each row in its own process: the training step (forward + backward + AdamW, batch 4,
16x64x64, fp32, MSE loss so that only the model is timed) and encode + decode of one clip at 64, 128 and 256 px.
Models: the shipped two-timescale config (configs/tokenizer/shapes2-64.yaml), the first design with the shapes-64
config (the architecture at commit 0e45aa8, `backbone: spacetime`), and `AutoencoderKLLTXVideo` (random init, default
config, 17 frames). Quality: both HiVAE designs trained by gen/train_tokenizer.py for the same wall time
(`train.budget_minutes`, resumable) on the same two-timescale data at the same ratio (683x), evaluated on the same
held-out clips. Writes benchmarks/results/backbone.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, peak_memory_mib, print_table, run_isolated, timed, write_json  # noqa: E402

NEW_CONFIG = ROOT / "configs" / "tokenizer" / "shapes2-64.yaml"
OLD_CONFIG = ROOT / "configs" / "tokenizer" / "shapes2-64-spacetime.yaml"  # first design at the same ratio
MODELS = ["HiVAE frame (shipped)", "HiVAE spacetime (first design)", "LTX-Video VAE"]


def model_kwargs(config_file: Path, size: int) -> dict:
    from gen.train_tokenizer import TokenizerConfig
    from hivae.config import load_config

    return dict(load_config(config_file, TokenizerConfig).model) | {"sample_size": size}


def build(name: str, size: int):
    """(model, frames per clip)."""
    from diffusers import AutoencoderKLLTXVideo

    from hivae import HiVAE

    if name == "LTX-Video VAE":
        return AutoencoderKLLTXVideo(), 17
    if name.startswith("HiVAE frame"):
        return HiVAE(**model_kwargs(NEW_CONFIG, size)), 16
    return HiVAE(**model_kwargs(ROOT / "configs" / "tokenizer" / "shapes-64.yaml", size)), 16


def _sample(out):
    return out.sample if hasattr(out, "sample") else out[0]


def measure(name: str, size: int, train_step: bool, repeats: int) -> dict:
    torch.manual_seed(0)
    model, frames = build(name, size)
    row = {"model": name, "size": size, "frames": frames, "params_M": sum(p.numel() for p in model.parameters()) / 1e6}
    if train_step:
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        batch = torch.rand(4, 3, frames, size, size) * 2 - 1

        def step():
            latent = model.encode(batch).latent_dist.sample()
            loss = (_sample(model.decode(latent)) - batch).pow(2).mean()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        row["train_step_s"] = timed(step, repeats=repeats)
    model.eval()
    clip = torch.rand(1, 3, frames, size, size) * 2 - 1
    with torch.no_grad():
        latent = model.encode(clip).latent_dist.mode()
        row["encode_s"] = timed(lambda: model.encode(clip).latent_dist.mode(), repeats=repeats)
        row["decode_s"] = timed(lambda: model.decode(latent), repeats=repeats)
    row["encode_decode_s"] = row["encode_s"] + row["decode_s"]
    row["peak_mem_MiB"] = peak_memory_mib()
    return row


def train_and_evaluate(config: Path, output_dir: Path, minutes: float) -> dict:
    """Train with gen/train_tokenizer.py for `minutes` of wall time in total (resumes), return its eval.json."""
    command = [
        sys.executable,
        str(ROOT / "gen" / "train_tokenizer.py"),
        "--config",
        str(config),
        f"train.output_dir={output_dir}",
        f"train.budget_minutes={minutes}",
        "train.max_steps=1000000",
        "train.sample_every=0",
    ]
    subprocess.run(command, check=True)
    metrics = json.loads((output_dir / "model" / "eval.json").read_text())
    state = sorted((output_dir / "checkpoints").glob("step-*"))[-1] / "trainer_state.json"
    metrics |= json.loads(state.read_text())
    return metrics


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-minutes", type=float, default=0.0, help="also train both designs this long each")
    parser.add_argument("--runs", default=str(ROOT / "runs" / "backbone"), help="training output folder")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one row, printed as JSON
    args = parser.parse_args(argv)
    if args.measure:
        spec = json.loads(args.measure)
        row = measure(**spec)
        print(json.dumps(row))
        return row

    rows = []
    for size in args.sizes:
        for name in MODELS:
            train_step = size == 64 and name != "LTX-Video VAE"  # the LTX row is an encode/decode reference
            spec = {"name": name, "size": size, "train_step": train_step, "repeats": args.repeats}
            rows.append(run_isolated([__file__, "--measure", json.dumps(spec)]))
            print(f"measured {name} at {size} px", flush=True)
    by = {(r["model"], r["size"]): r for r in rows}
    for row in rows:
        old, ltx = by[(MODELS[1], row["size"])], by[(MODELS[2], row["size"])]
        row["encode_decode_speedup_vs_ltx"] = ltx["encode_decode_s"] / row["encode_decode_s"]
        if "train_step_s" in row:
            row["train_step_speedup_vs_first_design"] = old["train_step_s"] / row["train_step_s"]
    print_table(
        rows,
        [
            "model",
            "size",
            "params_M",
            "train_step_s",
            "encode_s",
            "decode_s",
            "encode_decode_speedup_vs_ltx",
            "train_step_speedup_vs_first_design",
            "peak_mem_MiB",
        ],
    )
    payload = {"args": {k: v for k, v in vars(args).items() if k != "measure"}, "speed": rows}

    if args.train_minutes > 0:
        quality = []
        for name, config in ((MODELS[0], NEW_CONFIG), (MODELS[1], OLD_CONFIG)):
            metrics = train_and_evaluate(config, Path(args.runs) / config.stem, args.train_minutes)
            quality.append({"model": name, "config": str(config.relative_to(ROOT))} | metrics)
        print_table(
            quality,
            [
                "model",
                "step",
                "train_seconds",
                "compression_ratio",
                "psnr",
                "psnr_foreground",
                "ssim",
                "psnr_background",
            ],
        )
        payload["quality"] = quality
    write_json(Path(__file__).parent / "results" / f"backbone-{machine_slug()}.json", payload)
    return payload


def machine_slug() -> str:
    return "".join(c if c.isalnum() else "_" for c in machine()).strip("_").lower()


if __name__ == "__main__":
    main()
