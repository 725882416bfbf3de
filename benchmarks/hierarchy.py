"""Does the hierarchy hold? Structure = content + slow path, dynamics = fast pattern, measured on held-out clips.

    python benchmarks/hierarchy.py                                    # the shipped tokenizer
    python benchmarks/hierarchy.py --tokenizer runs/tokenizer-shapes2-64/model --clips 64
    python benchmarks/hierarchy.py --tokenizer checkpoints/hivae-shapes-64/vae-diffusion --decoder-steps 4

On held-out two-timescale clips of every pattern (seed never used in training):
(a) the attributes (shape, colour, path, pattern) the frozen detector reads from the reconstructions;
(b) the PSNR lost when the dynamics latent is replaced by its mean over clips (on clips with a fast pattern and on
    steady ones) and when the structure latent is;
(c) motion transfer: decode(structure of A, dynamics of B) for pairs whose patterns differ, scored right when the
    detector reads A's shape, colour and path with B's pattern.
Every decode uses the deterministic decoder unless --decoder-steps N > 0 (a tokenizer with the stage-2 diffusion
decoder, N sampling steps, noise seeded per batch). Writes benchmarks/results/hierarchy.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_table, write_json  # noqa: E402
from hivae import HierarchicalLatent  # noqa: E402
from hivae.data import PATTERNS, MovingShapes  # noqa: E402
from hivae.evaluation import reconstruction_metrics  # noqa: E402
from hivae.loading import default_checkpoint, load_tokenizer  # noqa: E402
from hivae.metrics import psnr  # noqa: E402
from hivae.shape_detector import ATTRIBUTES, attribute_accuracy, detect_attributes  # noqa: E402

EVAL_SEED = 4242  # held out: training uses seeds 0 (train) and 1 (eval split)


@torch.no_grad()
def decode(vae, latent, steps: int = 0, batch: int = 16) -> torch.Tensor:
    """Videos (N, 3, T, H, W) in [-1, 1] of latents, with `steps` diffusion-decoder steps (0 = deterministic)."""
    parts = [
        vae.decode(
            latent[i : i + batch],
            num_inference_steps=steps,
            generator=torch.Generator().manual_seed(i) if steps else None,
        ).sample
        for i in range(0, latent.batch_size, batch)
    ]
    return torch.cat(parts).float().clamp(-1, 1)


def held_out_clips(num_frames: int, size: int, clips_per_pattern: int, seed: int = EVAL_SEED):
    """Held-out clips of every pattern -> videos (N, 3, T, H, W), attribute tuples, pattern names."""
    videos, targets, patterns = [], [], []
    for pattern in PATTERNS:
        data = MovingShapes(clips_per_pattern, num_frames, size, seed=seed, patterns=(pattern,), path_variation=1.0)
        for i in range(len(data)):
            item = data[i]
            videos.append(item["video"])
            targets.append(tuple(item[k] for k in ATTRIBUTES))
            patterns.append(pattern)
    return torch.stack(videos), targets, patterns


@torch.no_grad()
def encode_decode(vae, videos: torch.Tensor, steps: int = 0) -> tuple[HierarchicalLatent, torch.Tensor]:
    """Posterior-mean latents and reconstructions of (N, 3, T, H, W) clips (`steps` as in `decode`)."""
    latent = HierarchicalLatent.cat([vae.encode(v).latent_dist.mode() for v in videos.split(16)])
    return latent, decode(vae, latent, steps)


def metrics_by_pattern(recon: torch.Tensor, videos: torch.Tensor, patterns: list[str]) -> dict:
    """Reconstruction metrics (PSNR, foreground PSNR, SSIM, ...) on steady clips and on clips with a fast pattern."""
    fast = torch.tensor([p != "steady" for p in patterns])
    return {name: reconstruction_metrics(recon[m], videos[m]) for name, m in (("steady", ~fast), ("fast", fast))}


def measure(vae, clips_per_pattern: int, seed: int = EVAL_SEED, decoder_steps: int = 0) -> dict:
    c = vae.config
    videos, targets, patterns = held_out_clips(c.num_frames, c.sample_size, clips_per_pattern, seed)
    latent, recon = encode_decode(vae, videos, decoder_steps)
    fast = torch.tensor([p != "steady" for p in patterns])
    rows = {"compression_ratio": float(vae.compression_ratio)}
    rows["reconstruction"] = metrics_by_pattern(recon, videos, patterns)
    # (a) attributes read from reconstructions
    rows["attributes"] = {"all patterns": attribute_accuracy(recon, targets)}
    for pattern in PATTERNS:
        chosen = [i for i, p in enumerate(patterns) if p == pattern]
        rows["attributes"][pattern] = attribute_accuracy(recon[chosen], [targets[i] for i in chosen])
    # (b) PSNR cost of replacing a part by its mean over clips
    base = psnr(recon, videos)
    costs = {}
    for part in ("dynamics", "structure"):
        tensor = getattr(latent, part)
        mean = tensor.mean(dim=0, keepdim=True).expand_as(tensor)
        swapped = psnr(decode(vae, latent.replace(**{part: mean.contiguous()}), decoder_steps), videos)
        drop = base - swapped
        costs[part] = {"fast patterns": drop[fast].mean().item(), "steady": drop[~fast].mean().item()}
    rows["mean_replacement_cost_dB"] = costs
    rows["psnr"] = {"fast patterns": base[fast].mean().item(), "steady": base[~fast].mean().item()}
    # (c) motion transfer between clips whose patterns differ
    generator = torch.Generator().manual_seed(seed)
    n = len(patterns)
    a_index = torch.randint(0, n, (n,), generator=generator)
    b_index = torch.randint(0, n, (n,), generator=generator)
    pairs = [(a, b) for a, b in zip(a_index.tolist(), b_index.tolist()) if patterns[a] != patterns[b]]
    a_idx, b_idx = [a for a, _ in pairs], [b for _, b in pairs]
    mixed = latent[a_idx].replace(dynamics=latent[b_idx].dynamics)
    transferred = decode(vae, mixed, decoder_steps)
    hits = {"content and path of A": 0, "pattern of B": 0, "both": 0}
    for video, (a, b) in zip(transferred, pairs):
        found = detect_attributes(video).as_tuple()
        keep = found[:3] == targets[a][:3]
        moved = found[3] == targets[b][3]
        hits["content and path of A"] += keep
        hits["pattern of B"] += moved
        hits["both"] += keep and moved
    rows["motion_transfer"] = {k: v / len(pairs) for k, v in hits.items()} | {"pairs": len(pairs)}
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", default=None, help="tokenizer or pipeline folder (default: shipped)")
    parser.add_argument("--clips", type=int, default=48, help="held-out clips per pattern")
    parser.add_argument(
        "--reference", default=None, help="a second tokenizer scored on the same clips (e.g. the previous shipped one)"
    )
    parser.add_argument("--decoder-steps", type=int, default=0, help="diffusion-decoder steps (0 = deterministic)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "hierarchy.json"))
    args = parser.parse_args(argv)
    vae = load_tokenizer(args.tokenizer or default_checkpoint())
    if args.decoder_steps and vae.config.decoder_type != "diffusion":
        raise SystemExit(f"--decoder-steps {args.decoder_steps}: {args.tokenizer} has no diffusion decoder")
    rows = measure(vae, args.clips, decoder_steps=args.decoder_steps)
    if args.reference:
        ref = load_tokenizer(args.reference)
        videos, _, patterns = held_out_clips(ref.config.num_frames, ref.config.sample_size, args.clips)
        rows["reference"] = {
            "tokenizer": str(args.reference),
            "compression_ratio": float(ref.compression_ratio),
            "reconstruction": metrics_by_pattern(encode_decode(ref, videos)[1], videos, patterns),
        }
    recon_rows = [
        {"tokenizer": name, "clips": kind, **{k: round(r[kind][k], 2) for k in ("psnr", "psnr_foreground", "ssim")}}
        for name, r in [("this", rows["reconstruction"])]
        + ([("reference", rows["reference"]["reconstruction"])] if args.reference else [])
        for kind in ("steady", "fast")
    ]
    print("reconstruction on held-out clips")
    print_table(recon_rows, ["tokenizer", "clips", "psnr", "psnr_foreground", "ssim"])
    table = [{"clips": p, **{k: round(100 * v, 1) for k, v in acc.items()}} for p, acc in rows["attributes"].items()]
    print("(a) attributes read from reconstructions, %")
    print_table(table, ["clips", *ATTRIBUTES, "all"])
    print("\n(b) PSNR lost by replacing a part with its mean over clips, dB")
    cost = [
        {"part": part, **{k: round(v, 2) for k, v in c.items()}}
        for part, c in rows["mean_replacement_cost_dB"].items()
    ]
    print_table(cost, ["part", "fast patterns", "steady"])
    print(
        f"\n(c) motion transfer over {rows['motion_transfer']['pairs']} pairs with different patterns: "
        + ", ".join(f"{k} {100 * v:.1f}%" for k, v in rows["motion_transfer"].items() if k != "pairs")
    )
    write_json(
        args.out,
        {
            "tokenizer": str(args.tokenizer or default_checkpoint()),
            "clips_per_pattern": args.clips,
            "decoder_steps": args.decoder_steps,
            **rows,
        },
    )
    return rows


if __name__ == "__main__":
    main()
