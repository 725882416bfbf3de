"""DiT cost on HiVAE latents vs on 48x 3D-VAE latents, for the same clip size and the same DiT width/depth.

    python benchmarks/dit_tokens.py                 # 16 x 64 x 64 clips: two-timescale and first-design geometries
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
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cases(size: int, frames: int) -> dict[str, dict]:
    """Latent geometries of one clip; HiVAE encodes clips longer than 16 frames as 16-frame windows (tiling)."""
    hivae = {  # the shipped shapes-64 HiVAE geometry, scaled with the clip size (8x base, 2x structure downsample)
        "structure_channels": 4,
        "num_queries": 4 * max(1, frames // 16),
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
    two_timescale = {  # shapes2-64: one token per structure query (its 4x4 grid), dynamics in groups of 4 frames
        "structure_channels": 4,
        "num_queries": frames // 4,
        "structure_size": (size // 16, size // 16),
        "dynamics_channels": 2,
        "num_frames": frames,
        "dynamics_pool": (1, 1),
        "token_layout": "query",
        "dynamics_group": 4,
    }
    return {
        "hivae two-timescale (683x, query tokens)": two_timescale,
        "hivae (614x)": hivae,
        "3d-vae 48x, patch 2": vae48 | {"patch_size": 2},
        "3d-vae 48x, patch 1": vae48 | {"patch_size": 1},
    }


def dit_training_step(model, batch: int, device: str, autocast_dtype=None):
    """A closure running one training step (flow-matching loss, backward, AdamW) of `model` on a random batch."""
    import torch

    from gen.flow_matching import FlowConfig, flow_matching_loss
    from hivae import HierarchicalLatent

    base = getattr(model, "_orig_mod", model)  # the module behind torch.compile
    config = base.config
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    latent = HierarchicalLatent(*(torch.randn(batch, *shape, device=device) for shape in base.latent_shapes()))
    labels = torch.randint(0, config.num_classes, (batch,), device=device)
    text = torch.randn(batch, 24, config.text_dim, device=device)

    def step():
        with torch.autocast(device, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            loss, _ = flow_matching_loss(model, latent, FlowConfig(), class_labels=labels, encoder_hidden_states=text)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def run_case(geometry: dict, batch: int, hidden: int, depth: int, heads: int, steps: int) -> dict:
    import torch

    from benchmarks.common import peak_memory_mib, timed
    from gen.dit import HiVAEDiT

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = HiVAEDiT(**geometry, hidden_size=hidden, depth=depth, heads=heads, num_classes=90, text_dim=384).to(device)
    shapes = model.latent_shapes()
    step = dit_training_step(model, batch, device, torch.bfloat16 if device == "cuda" else None)
    seconds = timed(step, repeats=steps, warmup=2)
    peak = peak_memory_mib()
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
    parser.add_argument("--cases", nargs="+", default=None, help="latent cases to run (default: all)")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case in this process
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dit_tokens.json"))
    args = parser.parse_args(argv)
    all_cases = cases(args.size, args.frames)
    if args.case:
        result = run_case(all_cases[args.case], args.batch, args.hidden, args.depth, args.heads, args.steps)
        print(json.dumps(result))
        return [result]

    from benchmarks.common import print_table, run_isolated, write_json

    rows = []
    pixels = 3 * args.frames * args.size**2
    for name in args.cases or all_cases:
        if name not in all_cases:
            raise SystemExit(f"--cases: unknown case {name!r} (known: {', '.join(all_cases)})")
        command = [__file__, "--case", name] + sum(
            (
                [f"--{k}", str(getattr(args, k))]
                for k in ("size", "frames", "batch", "hidden", "depth", "heads", "steps")
            ),
            [],
        )
        result = run_isolated(command)
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
