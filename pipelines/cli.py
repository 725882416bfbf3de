"""The `hivae` command line: generate, reconstruct, eval, interpolate, edit, eval-generation, shapes.

Each subcommand is a `_add_*` function registering its arguments and a `_run_*` function doing the work. Results and
output paths are printed; errors in inputs exit with status 2 and a one-line message.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .pipeline_hivae_video import frames_to_video

# ---------------------------------------------------------------------------- helpers
DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16", "float16": "float16"}


def _device(args) -> str:
    import torch

    return args.device or ("cuda" if torch.cuda.is_available() else "cpu")


def _dtype(args):
    import torch

    return getattr(torch, DTYPES[args.dtype])


def _checkpoint(args) -> str:
    from hivae.loading import default_checkpoint

    return str(args.checkpoint or default_checkpoint())


def load_clips(args, model) -> tuple[list, list[str]]:
    """Clips (3, T, H, W) from --input (file or videofolder) or synthetic shapes (--num, --seed), at the model's size."""
    from hivae.data import MovingShapes, VideoFolderDataset, read_video

    frames, size = model.config.num_frames, model.config.sample_size
    if args.input:
        path = Path(args.input)
        if path.is_dir():
            dataset = VideoFolderDataset(path, num_frames=frames, size=size, sampling="center", strict=True)
            count = min(len(dataset), args.num)
            return [dataset[i]["video"] for i in range(count)], [dataset[i]["file_name"] for i in range(count)]
        return [read_video(path, frames, size=size)], [path.name]
    dataset = MovingShapes(args.num, frames, size, seed=args.seed)
    return [dataset[i]["video"] for i in range(len(dataset))], [f"shapes_{i:04d}" for i in range(len(dataset))]


def load_pipeline(path: str, cls_name: str = "HiVAEVideoPipeline", vae: str | None = None, device=None, dtype=None):
    """A pipeline folder, optionally with another trained tokenizer (e.g. one with a diffusion decoder) as its vae,
    moved to `device` in `dtype`."""
    import pipelines
    from hivae.loading import load_tokenizer

    kwargs = {} if dtype is None else {"torch_dtype": dtype}
    components = {"vae": load_tokenizer(vae, **kwargs)} if vae else {}
    pipe = getattr(pipelines, cls_name).from_pretrained(path, **components, **kwargs)
    return pipe.to(device) if device is not None else pipe


def _pipeline(args, cls_name: str = "HiVAEVideoPipeline"):
    return load_pipeline(_checkpoint(args), cls_name, args.vae, _device(args), _dtype(args))


def _save(video, out: Path, stem: str, gif: bool, fps: int) -> list[Path]:
    """Write (3, T, H, W) in [-1, 1] as mp4 (+ gif)."""
    from hivae.data import write_video

    paths = [write_video(out / f"{stem}.mp4", video, fps=fps)]
    if gif:
        paths.append(write_video(out / f"{stem}.gif", video, fps=fps))
    return paths


def _generator(seed: int):
    import torch

    return torch.Generator().manual_seed(seed)  # CPU noise: the same video on any device, up to numerics


def _runtime_args(p) -> None:
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="weights and compute dtype")


def _common_generation_args(p, video_output: bool = True) -> None:
    p.add_argument("--checkpoint", default=None, help="pipeline folder (default: the shipped checkpoint)")
    p.add_argument("--steps", type=int, default=20, help="denoising steps")
    p.add_argument("--guidance", type=float, default=3.0, help="classifier-free guidance scale")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs", help="output folder")
    p.add_argument("--vae", default=None, help="use this tokenizer folder instead of the pipeline's (same latents)")
    p.add_argument("--decoder-steps", type=int, default=None, help="diffusion-decoder steps (tokenizers with one)")
    if video_output:
        p.add_argument("--fps", type=int, default=8, help="frame rate of the written videos")
    _runtime_args(p)


# ---------------------------------------------------------------------------- generate
def _add_generate(sub) -> None:
    p = sub.add_parser("generate", help="generate videos from a prompt or a class")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--prompt", action="append", help="text prompt (repeat for several)")
    group.add_argument("--class", dest="classes", action="append", help="class id or name, e.g. 'red circle left'")
    p.add_argument("--negative-prompt", default=None, help="text for the unconditional branch of guidance")
    p.add_argument("--num", type=int, default=1, help="videos per prompt/class")
    p.add_argument("--no-gif", action="store_true", help="write mp4 only")
    _common_generation_args(p)
    p.set_defaults(run=_run_generate)


def class_table(pipe):
    """The pipeline's class table: the one stored with its DiT, or the steady-only table of older checkpoints."""
    from hivae.data import LEGACY_TABLE, ClassTable

    names = pipe.transformer.config.get("class_names")
    return ClassTable.from_names(names) if names else LEGACY_TABLE


def _run_generate(args) -> None:
    pipe = _pipeline(args)
    condition = {}
    if args.classes:
        condition["class_labels"] = [class_table(pipe).parse(c) for c in args.classes]
    else:
        condition["prompt"] = args.prompt or ["a red circle moving left"]
    frames = pipe(
        **condition,
        negative_prompt=args.negative_prompt,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
        num_videos_per_prompt=args.num,
        generator=_generator(args.seed),
        decoder_steps=args.decoder_steps,
        output_type="pt",
    ).frames  # (B, T, 3, H, W) in [0, 1]
    names = condition.get("prompt") or [f"class{c}" for c in condition["class_labels"]]
    out = Path(args.out)
    for index, clip in enumerate(frames):
        stem = "_".join(names[index // args.num].split())[:60] + f"_seed{args.seed}_{index % args.num}"
        video = frames_to_video(clip[None])[0]
        for path in _save(video, out, stem, not args.no_gif, args.fps):
            print(f"wrote {path.resolve()}")


# ---------------------------------------------------------------------------- reconstruct / eval
def _add_reconstruct(sub) -> None:
    for name, helptext in (
        ("reconstruct", "encode + decode clips, write side-by-side videos and print metrics"),
        ("eval", "reconstruction metrics (PSNR, SSIM, temporal consistency) and compression ratio"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--tokenizer", default=None, help="tokenizer or pipeline folder (default: shipped checkpoint)")
        p.add_argument("--input", help="a video file or a videofolder (default: synthetic shapes)")
        p.add_argument("--num", type=int, default=16, help="clips to use (folder or synthetic)")
        p.add_argument("--seed", type=int, default=1, help="seed of the synthetic clips and of a diffusion decoder")
        p.add_argument("--decoder-steps", type=int, default=None, help="diffusion-decoder steps (tokenizers with one)")
        p.add_argument("--out", default=f"outputs/{name}", help="output folder")
        p.add_argument("--fps", type=int, default=8, help="frame rate of the written videos")
        _runtime_args(p)
        p.set_defaults(run=_run_reconstruct, write_videos=name == "reconstruct")


def _run_reconstruct(args) -> None:
    import torch

    from hivae.evaluation import reconstruct, reconstruction_metrics
    from hivae.loading import default_checkpoint, load_tokenizer

    model = load_tokenizer(args.tokenizer or default_checkpoint(), torch_dtype=_dtype(args)).to(_device(args))
    clips, names = load_clips(args, model)
    videos = torch.stack(clips)
    recon = reconstruct(model, videos, decoder_steps=args.decoder_steps, generator=_generator(args.seed))
    metrics = reconstruction_metrics(recon, videos)
    metrics |= {"compression_ratio": model.compression_ratio, "compression_percent": 100 / model.compression_ratio}
    metrics["num_clips"] = len(clips)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shown = len(names) if args.write_videos else min(4, len(names))  # eval writes a few examples
    for name, target, pred in list(zip(names, videos, recon))[:shown]:
        path = _save(torch.cat([target, pred], dim=3), out, Path(name).stem + "_recon", False, args.fps)[0]
        print(f"wrote {path.resolve()}  (left: input, right: reconstruction)")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    width = max(map(len, metrics))
    for key, value in metrics.items():
        print(f"{key:<{width}}  {value:.4f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    print(f"wrote {(out / 'metrics.json').resolve()}")


# ---------------------------------------------------------------------------- interpolate / edit
def _add_interpolate(sub) -> None:
    p = sub.add_parser("interpolate", help="interpolate between two videos or two prompts in latent space")
    p.add_argument("--video-a"), p.add_argument("--video-b")
    p.add_argument("--prompt-a"), p.add_argument("--prompt-b")
    p.add_argument("--part", choices=["structure", "dynamics", "both"], default="both")
    p.add_argument("--method", choices=["lerp", "slerp"], default="slerp")
    p.add_argument("--num-steps", type=int, default=5, help="interpolation steps including both ends")
    _common_generation_args(p)
    p.set_defaults(run=_run_interpolate)


def _read_for(pipe, path: str):
    from hivae.data import read_video

    vae = pipe.vae.config
    return read_video(path, vae.num_frames, size=vae.sample_size)[None]


def _run_interpolate(args) -> None:
    pipe = _pipeline(args, "HiVAEInterpolationPipeline")
    if args.video_a or args.video_b:
        if not (args.video_a and args.video_b):
            raise ValueError("give both --video-a and --video-b")
        pair = {"video_a": _read_for(pipe, args.video_a), "video_b": _read_for(pipe, args.video_b)}
    elif args.prompt_a and args.prompt_b:
        pair = {"prompt_a": args.prompt_a, "prompt_b": args.prompt_b}
    else:
        raise ValueError("give --video-a/--video-b or --prompt-a/--prompt-b")
    result = pipe(
        **pair,
        num_steps=args.num_steps,
        part=args.part,
        method=args.method,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
        generator=_generator(args.seed),
        decoder_steps=args.decoder_steps,
        output_type="pt",
    )
    out = Path(args.out)
    stem = f"interpolation_{args.part}_{args.method}"
    for path in _save(result.grid[0], out, stem, True, args.fps):
        print(f"wrote {path.resolve()}  ({args.num_steps} steps, left to right)")


def _add_edit(sub) -> None:
    p = sub.add_parser("edit", help="motion transfer or prompt-guided editing of one latent part")
    p.add_argument("--video", required=True, help="source video (its structure is kept for motion transfer)")
    p.add_argument("--motion-from", help="motion transfer: take the dynamics latent of this video")
    p.add_argument("--prompt", help="prompt-guided edit: regenerate --part under this prompt")
    p.add_argument("--negative-prompt", default=None, help="prompt-guided edit: unconditional text of guidance")
    p.add_argument("--part", choices=["structure", "dynamics"], default="dynamics")
    p.add_argument("--strength", type=float, default=0.8, help="re-noising strength in (0, 1]")
    _common_generation_args(p)
    p.set_defaults(run=_run_edit)


def _run_edit(args) -> None:
    import torch

    if bool(args.motion_from) == bool(args.prompt):
        raise ValueError("give exactly one of --motion-from (motion transfer) or --prompt (prompt-guided edit)")
    pipe = _pipeline(args, "HiVAEEditPipeline")
    source = _read_for(pipe, args.video)
    if args.motion_from:
        result = pipe.motion_transfer(
            source,
            _read_for(pipe, args.motion_from),
            decoder_steps=args.decoder_steps,
            generator=_generator(args.seed),
            output_type="pt",
        )
        stem = f"{Path(args.video).stem}_motion_from_{Path(args.motion_from).stem}"
    else:
        result = pipe(
            source,
            prompt=args.prompt,
            negative_prompt=args.negative_prompt,
            part=args.part,
            strength=args.strength,
            num_inference_steps=args.steps,
            guidance_scale=args.guidance,
            generator=_generator(args.seed),
            decoder_steps=args.decoder_steps,
            output_type="pt",
        )
        stem = f"{Path(args.video).stem}_edit_{args.part}"
    edited = frames_to_video(result.frames)[0]
    for path in _save(torch.cat([source[0], edited], dim=3), Path(args.out), stem, True, args.fps):
        print(f"wrote {path.resolve()}  (left: source, right: edited)")


# ---------------------------------------------------------------------------- eval-generation
def _add_eval_generation(sub) -> None:
    p = sub.add_parser(
        "eval-generation", help="accuracy of generated shapes clips (shape, colour, path, pattern) per condition"
    )
    p.add_argument("--num-prompts", type=int, default=None, help="classes spread over the table (default: all)")
    p.add_argument("--per-prompt", type=int, default=2, help="videos per prompt")
    p.add_argument("--condition", choices=["text", "class"], default="text")
    p.add_argument("--batch-size", type=int, default=32, help="videos per pipeline call")
    _common_generation_args(p, video_output=False)
    p.set_defaults(run=_run_eval_generation)


def _run_eval_generation(args) -> None:
    import torch

    from hivae.shape_detector import attribute_accuracy

    pipe = _pipeline(args)
    pipe.set_progress_bar_config(disable=True)
    table = class_table(pipe)
    num_prompts = args.num_prompts or len(table)
    if not 1 <= num_prompts <= len(table):
        raise ValueError(f"--num-prompts must be in [1, {len(table)}], got {num_prompts}")
    labels = torch.linspace(0, len(table) - 1, num_prompts).round().long().tolist()
    targets, videos = [], []
    generator = _generator(args.seed)
    per_call = max(1, args.batch_size // args.per_prompt)
    for start in range(0, len(labels), per_call):
        chunk = labels[start : start + per_call]
        condition = (
            {"prompt": [table.caption(c) for c in chunk]} if args.condition == "text" else {"class_labels": chunk}
        )
        frames = pipe(
            **condition,
            num_inference_steps=args.steps,
            guidance_scale=args.guidance,
            num_videos_per_prompt=args.per_prompt,
            generator=generator,
            decoder_steps=args.decoder_steps,
            output_type="pt",
        ).frames
        videos.append(frames_to_video(frames))
        targets += [table.attributes(c) for c in chunk for _ in range(args.per_prompt)]
    accuracy = attribute_accuracy(torch.cat(videos), targets)
    result = {
        "condition": args.condition,
        "num_videos": len(targets),
        "steps": args.steps,
        "guidance_scale": args.guidance,
        "decoder_steps": args.decoder_steps,
        "seed": args.seed,
        "accuracy": accuracy,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"eval_generation_{args.condition}.json").write_text(json.dumps(result, indent=2))
    print(f"{'attribute':<10} accuracy ({len(targets)} videos, {args.condition} condition)")
    for key, value in accuracy.items():
        print(f"{key:<10} {100 * value:6.1f}%")
    print(f"wrote {(out / f'eval_generation_{args.condition}.json').resolve()}")


# ---------------------------------------------------------------------------- shapes
def _add_shapes(sub) -> None:
    p = sub.add_parser("shapes", help="render synthetic moving-shapes clips into a videofolder (mp4 + metadata.jsonl)")
    p.add_argument("--out", default="outputs/shapes", help="output folder")
    p.add_argument("--num", type=int, default=8, help="number of clips")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--second-object-prob", type=float, default=0.0)
    p.add_argument("--gif", action="store_true", help="also write a .gif next to each mp4")
    p.set_defaults(run=_run_shapes)


def _run_shapes(args) -> None:
    from hivae.data import MovingShapes

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = MovingShapes(args.num, args.frames, args.size, args.seed, args.second_object_prob)
    rows = []
    for index in range(len(dataset)):
        item = dataset[index]
        _save(item["video"], out, f"clip_{index:05d}", args.gif, 8)
        rows.append({"file_name": f"clip_{index:05d}.mp4", "text": item["text"], "label": item["label"]})
    (out / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"wrote {len(rows)} clips and metadata.jsonl to {out.resolve()}")


COMMANDS = [_add_generate, _add_reconstruct, _add_interpolate, _add_edit, _add_eval_generation, _add_shapes]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hivae", description="hierarchical video tokenizer and generator")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (ValueError, FileNotFoundError, TypeError) as err:
        print(f"hivae {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
