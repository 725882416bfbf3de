"""DiT cost on HiVAE latents vs on 48x 3D-VAE latents, for the same clip size and the same DiT width/depth.

    python benchmarks/dit_tokens.py                 # 16 x 64 x 64 clips, the shipped checkpoint's geometry
    python benchmarks/dit_tokens.py --size 128 --batch 8

For each latent space it reports latent numbers per clip, tokens per clip, and the time and peak memory of one
training step (forward, backward, AdamW) of the same HiVAEDiT. The 48x latent (16 channels on a 4x8x8-downsampled
grid) is fed through the same model as one "structure" grid patchified 2x2 (CogVideoX style) or 1x1. Each case runs
in a fresh subprocess so that peak memory (CUDA max allocated, or the process's RSS high-water mark on CPU) is
its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cases(size: int, frames: int) -> dict[str, dict]:
    hivae = {  # the shipped shapes-64 HiVAE geometry, scaled with the clip size (8x base, 2x structure downsample)
        "structure_channels": 4,
        "num_queries": 4,
        "structure_size": (size // 16, size // 16),
        "dynamics_channels": 4,
        "num_frames": frames,
        "dynamics_pool": (1, 1),
        "patch_size": 1,
    }
    vae48 = {
        "structure_channels": 16,
        "num_queries": frames // 4,
        "structure_size": (size // 8, size // 8),
        "dynamics_channels": 1,
        "num_frames": 1,
        "dynamics_pool": (1, 1),
    }
    return {
        "hivae (614x)": hivae,
        "3d-vae 48x, patch 2": vae48 | {"patch_size": 2},
        "3d-vae 48x, patch 1": vae48 | {"patch_size": 1},
    }


def peak_rss_mib() -> float:
    """This process's resident-memory high-water mark (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(geometry: dict, batch: int, hidden: int, depth: int, heads: int, steps: int) -> dict:
    import torch

    from benchmarks.common import timed
    from gen.dit import HiVAEDiT
    from gen.flow_matching import FlowConfig, flow_matching_loss
    from hivae import HierarchicalLatent

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = HiVAEDiT(**geometry, hidden_size=hidden, depth=depth, heads=heads, num_classes=90, text_dim=384).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    shapes = model.latent_shapes()
    latent = HierarchicalLatent(*(torch.randn(batch, *s, device=device) for s in shapes))
    labels = torch.randint(0, 90, (batch,), device=device)
    text = torch.randn(batch, 24, 384, device=device)
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda")

    def step():
        with autocast:
            loss, _ = flow_matching_loss(model, latent, FlowConfig(), class_labels=labels, encoder_hidden_states=text)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    seconds = timed(step, repeats=steps, warmup=2)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = peak_rss_mib()
    numel = sum(torch.Size(s).numel() for s in shapes)
    return {
        "latent_numbers": numel,
        "tokens": model.num_tokens(),
        "step_ms": 1000 * seconds,
        "peak_mem_MiB": peak,
        "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=192)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--heads", type=int, default=6)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per case")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case in this process
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dit_tokens.json"))
    args = parser.parse_args(argv)
    all_cases = cases(args.size, args.frames)
    if args.case:
        result = run_case(all_cases[args.case], args.batch, args.hidden, args.depth, args.heads, args.steps)
        print(json.dumps(result))
        return [result]

    from benchmarks.common import print_table, write_json

    rows = []
    pixels = 3 * args.frames * args.size**2
    for name in all_cases:
        command = [sys.executable, __file__, "--case", name] + sum(
            (
                [f"--{k}", str(getattr(args, k))]
                for k in ("size", "frames", "batch", "hidden", "depth", "heads", "steps")
            ),
            [],
        )
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        result = json.loads(output)
        rows.append({"latent": name, "compression": pixels / result["latent_numbers"], **result})
    print(f"DiT {args.hidden}x{args.depth}, batch {args.batch}, clips {args.frames}x{args.size}x{args.size}")
    print_table(rows, ["latent", "compression", "latent_numbers", "tokens", "step_ms", "peak_mem_MiB", "params_M"])
    write_json(
        args.out,
        {"settings": {k: getattr(args, k) for k in ("size", "frames", "batch", "hidden", "depth")}, "rows": rows},
    )
    return rows


if __name__ == "__main__":
    main()
