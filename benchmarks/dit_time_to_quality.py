"""DiT time-to-quality: the same DiT trained on HiVAE latents and on 48x 3D-conv VAE latents, prompt accuracy against
training minutes.

    python gen/train_tokenizer.py --config configs/tokenizer/shapes2-64-vae48.yaml     # the 48x VAE (shipped in
                                                                   # checkpoints/vae48-shapes2-64; retrain: --tokenizers)
    python benchmarks/dit_time_to_quality.py --minutes 30 --every 3                      # both latents, three LRs
    python benchmarks/dit_time_to_quality.py --latents vae48 --lrs 5e-4 --minutes 60      # continue one run to 60 min
    python benchmarks/dit_time_to_quality.py --report                                    # table, JSON, plot only
    python benchmarks/dit_time_to_quality.py --jobs 2 --lrs 5e-4    # hivae and vae48 side by side, a thread each

Both DiTs are configs/dit/shapes2-64.yaml (width, depth, heads, batch, AdamW, warm-up then a constant learning rate,
EMA, condition dropout), trained by gen/train_dit.py on latent caches of the same clips (16x64x64 two-timescale
shapes, `--clips` of them). Only the tokenization differs: HiVAE latents are 8 tokens per clip (4 structure queries,
4 dynamics groups), the 48x grid (16 x 4 x 8 x 8) is cut into 2x2 patches (64 tokens) plus the plain VAE's constant
dynamics slot (1 token). Each run trains in chunks of `--every` minutes of training time (train.budget_minutes: a
chained, exactly resumed run; start-up, caching and evaluation are not counted) into
runs/dit_time_to_quality/<latent>-lr<lr>; after each chunk its EMA pipeline generates the fixed prompt set (`--prompts`
classes spread over the 360, 2 clips each, 20 Euler steps, guidance 3, seed 0) and the shapes detector scores them
(all four attributes right). A run stops at `--minutes` or once it reaches `--target`. With `--jobs 2` the runs train
two at a time, each latent's run of a learning rate beside the other's, on `--threads` each (caches are built first),
so that both latents are timed under the same load.

Finished runs (target reached or `--minutes` trained) are read back from the results JSON when their runs/ folder is
gone, so a benchmark too long for one session is completed run by run across sessions (same clips, prompts, seed,
target, overrides, jobs and threads); every latent and learning rate with rows is reported, only the chosen ones are trained.

Writes benchmarks/results/dit_time_to_quality.json: rows {"latent", "lr", "minutes", "step", "accuracy_all", ...},
per latent its tokens per clip, training step time, peak RSS of the training process, and the best learning rate's
minutes and steps to the target ("not reached by N minutes" otherwise); and dit_time_to_quality.svg.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402
    add_parallel_arguments,
    print_table,
    resolve_parallel,
    run_process,
    write_json,
    write_text_atomic,
)
from benchmarks.equal_budget import training_summary  # noqa: E402


@dataclass(frozen=True)
class LatentSpace:
    tokenizer: str  # tokenizer folder (save_pretrained), relative to the repository
    tokens: tuple[str, ...]  # how the DiT cuts the latent into tokens (HiVAEDiT arguments)
    description: str


LATENTS = {
    "hivae": LatentSpace(
        "checkpoints/hivae-shapes-64/vae",
        ("model.token_layout=query", "model.dynamics_group=4"),
        "the shipped HiVAE (683x): 4 structure queries + 4 dynamics groups of 4 frames",
    ),
    "vae48": LatentSpace(
        "checkpoints/vae48-shapes2-64",
        ("model.token_layout=patch", "model.patch_size=2", "model.dynamics_group=1"),
        "3D-conv VAE 4x8x8, 16 channels (48x), 2x2 patches + 1 constant slot",
    ),
}
CONFIG = "configs/dit/shapes2-64.yaml"
# from_pretrained builds modules on the meta device through a process-wide switch: runs side by side load one at a time
LOADING = threading.Lock()
LEARNING_RATES = (2.5e-4, 5e-4, 1e-3)
# a published run counts only under these
SAME_SETTINGS = ("clips", "prompts", "seed", "target", "overrides", "jobs", "threads")


def run_dir(latent: str, lr: float, root: str | Path) -> Path:
    return Path(root) / f"{latent}-lr{lr:g}"


def dit_command(script: str, latent: str, lr: float, run: Path, minutes: float, args) -> list[str]:
    """`gen/<script>` (train_dit.py or cache_latents.py) on the DiT config for `latent`'s tokenizer and cache."""
    space, clips = LATENTS[latent], args.clips
    return [
        sys.executable,
        str(ROOT / "gen" / script),
        "--config",
        str(ROOT / CONFIG),
        f"tokenizer={args.tokenizers[latent]}",
        f"cache_dir={Path(args.runs) / f'cache-{latent}-{clips}'}",
        f"data.num_samples={clips}",
        f"train.output_dir={run}",
        f"train.learning_rate={lr}",
        "train.lr_schedule=constant",
        "train.max_steps=10000000",
        "train.checkpoint_every=10000000",  # a checkpoint at each chunk's end only
        f"train.budget_minutes={minutes}",
        "train.sample_every=0",
        *space.tokens,
        *args.overrides,
    ]


def train_chunk(latent: str, lr: float, run: Path, minutes: float, args) -> int:
    """Train (or resume) one run until `minutes` of training time; returns the training process's peak RSS (MiB)."""
    return run_process(dit_command("train_dit.py", latent, lr, run, minutes, args), args.threads)


def prompt_accuracy(run: Path, prompts: int, per_prompt: int, seed: int) -> dict[str, float]:
    """The run's exported EMA pipeline on the fixed prompt set: detector accuracy per attribute and "all"."""
    from pipelines import HiVAEVideoPipeline
    from pipelines.evaluation import class_table, generation_accuracy, spread_labels

    with LOADING:
        pipe = HiVAEVideoPipeline.from_pretrained(run / "pipeline")
    pipe.to("cuda" if torch.cuda.is_available() else "cpu")
    pipe.set_progress_bar_config(disable=True)
    labels = spread_labels(len(class_table(pipe)), prompts)
    return generation_accuracy(pipe, labels, "text", per_prompt, num_inference_steps=20, guidance_scale=3.0, seed=seed)


def tokens_per_clip(model: Path) -> int:
    from gen.dit import HiVAEDiT

    with LOADING:
        return HiVAEDiT.from_pretrained(model).num_tokens()


def run_one(latent: str, lr: float, args) -> list[dict]:
    """Chunks of training then evaluation until `args.minutes` or the target; resumable (rows in run/evals.json)."""
    run = run_dir(latent, lr, args.runs)
    log = run / "evals.json"
    rows = json.loads(log.read_text()) if log.is_file() else []
    while True:
        done = rows[-1]["minutes"] if rows else 0.0
        if finished(rows, args):
            return rows
        budget = min(args.minutes, (round(done / args.every) + 1) * args.every)
        peak = train_chunk(latent, lr, run, budget, args)
        summary = training_summary(run)
        accuracy = prompt_accuracy(run, args.prompts, 2, args.seed)
        rows.append({"latent": latent, "lr": lr, "minutes": summary["minutes"], "step": summary["steps"],
                     "accuracy_all": accuracy["all"], **{k: v for k, v in accuracy.items() if k != "all"},
                     "peak_rss_MiB": peak, "tokens_per_clip": tokens_per_clip(run / "model")})
        print(f"{latent} lr {lr:g}: {rows[-1]['minutes']:.1f} min, step {rows[-1]['step']}: "
              f"{100 * accuracy['all']:.1f}% all attributes right", flush=True)
        run.mkdir(parents=True, exist_ok=True)
        write_text_atomic(log, json.dumps(rows, indent=1))


def train_all(pairs: list[tuple[str, float]], args) -> dict[tuple[str, float], list[dict]]:
    """Train the (latent, learning rate) runs in order, `args.jobs` at a time side by side on `args.threads` threads
    each; each latent's cache is built first (once, so that no two runs build it together). -> {pair: rows}"""
    if not pairs:
        return {}
    first = {latent: lr for latent, lr in reversed(pairs)}

    def cache(latent: str) -> int:
        run = run_dir(latent, first[latent], args.runs)
        command = dit_command("cache_latents.py", latent, first[latent], run, args.minutes, args)
        return run_process(command, args.threads)

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(cache, first))
        return dict(zip(pairs, pool.map(lambda pair: run_one(*pair, args), pairs)))


def finished(rows: list[dict], args) -> bool:
    """A run is done once it reached the target or trained `args.minutes` (a chunk may overrun its budget)."""
    return bool(rows) and (rows[-1]["accuracy_all"] >= args.target or rows[-1]["minutes"] >= args.minutes)


def published_runs(path: Path, args) -> dict[tuple[str, float], list[dict]]:
    """Finished runs already in the results JSON at `path` (committed by an earlier session, whose runs/ folder may be
    gone): {(latent, lr): rows}. Only runs under the same settings count; unfinished ones are trained again."""
    if not path.is_file():
        return {}
    payload = json.loads(path.read_text())
    if {k: payload["settings"].get(k) for k in SAME_SETTINGS} != {k: getattr(args, k) for k in SAME_SETTINGS}:
        return {}
    runs: dict[tuple[str, float], list[dict]] = {}
    for row in payload["rows"]:
        runs.setdefault((row["latent"], row["lr"]), []).append(row)
    return {key: rows for key, rows in runs.items() if finished(rows, args)}


def best_run(runs: dict[float, list[dict]], target: float) -> tuple[float, dict]:
    """The learning rate whose run first reaches `target` (in training minutes), else the one that ends most
    accurate; with its minutes and steps to the target (None and a "not reached by N minutes" note otherwise)."""
    reached = {lr: next((r for r in rows if r["accuracy_all"] >= target), None) for lr, rows in runs.items()}
    reached = {lr: row for lr, row in reached.items() if row is not None}
    if reached:
        best = min(reached, key=lambda lr: reached[lr]["minutes"])
        return best, {"minutes_to_target": reached[best]["minutes"], "steps_to_target": reached[best]["step"]}
    best = max(runs, key=lambda lr: runs[lr][-1]["accuracy_all"])
    longest = max(rows[-1]["minutes"] for rows in runs.values())
    return best, {"minutes_to_target": None, "steps_to_target": None, "not_reached": f"not reached by {longest:.0f} minutes"}


def reconstruction_accuracy(tokenizer, clips_per_pattern: int) -> float:
    """Attributes (all four) the detector reads from the tokenizer's reconstructions of held-out clips of every
    pattern: the same clips and reading as benchmarks/hierarchy.py (a)."""
    from benchmarks.hierarchy import held_out_clips
    from hivae.evaluation import reconstruct
    from hivae.shape_detector import attribute_accuracy

    c = tokenizer.config
    videos, targets, _ = held_out_clips(c.num_frames, c.sample_size, clips_per_pattern)
    with torch.no_grad():
        return attribute_accuracy(reconstruct(tokenizer, videos), targets)["all"]


def summarise(latent: str, tokenizer: Path, runs: dict[float, list[dict]], args) -> dict:
    """Tokens, step time and peak memory of a latent's runs, its best learning rate's time to the target, and the
    attributes read from its tokenizer's reconstructions."""
    from hivae.loading import load_tokenizer

    model = load_tokenizer(tokenizer)
    c = model.config
    values = round(c.in_channels * c.num_frames * c.sample_size**2 / model.compression_ratio)  # numbers that carry
    best, outcome = best_run(runs, args.target)
    last = runs[best][-1]
    return {
        "latent": latent,
        "description": LATENTS[latent].description,
        "latent_values": values,
        "tokens_per_clip": last["tokens_per_clip"],
        "reconstruction_attributes_all": reconstruction_accuracy(model, args.recon_clips),
        "best_lr": best,
        "best_accuracy_all": max(row["accuracy_all"] for row in runs[best]),
        "step_seconds": 60 * last["minutes"] / max(1, last["step"]),
        "peak_rss_MiB": max(row["peak_rss_MiB"] for row in runs[best]),
        **outcome,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latents", nargs="*", default=list(LATENTS), choices=list(LATENTS))
    parser.add_argument("--lrs", nargs="*", type=float, default=list(LEARNING_RATES))
    parser.add_argument("--minutes", type=float, default=30.0, help="training minutes per run at most")
    parser.add_argument("--every", type=float, default=3.0, help="training minutes between evaluations")
    parser.add_argument("--target", type=float, default=0.9, help="accuracy (all attributes) that ends a run")
    parser.add_argument("--clips", type=int, default=20000, help="training clips (latent cache size)")
    parser.add_argument("--prompts", type=int, default=60, help="classes in the evaluation prompt set (x2 clips)")
    parser.add_argument("--seed", type=int, default=0, help="evaluation noise seed")
    parser.add_argument("--recon-clips", type=int, default=48, help="held-out clips per pattern for the attributes "
                        "read from each tokenizer's reconstructions")
    add_parallel_arguments(
        parser, "runs (the latents of one learning rate first, so that they share the machine alike)"
    )
    parser.add_argument("--runs", default=str(ROOT / "runs" / "dit_time_to_quality"))
    parser.add_argument("--report", action="store_true", help="train nothing: table, JSON and plot of the runs")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dit_time_to_quality.json"))
    parser.add_argument("--overrides", nargs="*", default=[], help="gen/train_dit.py key=value for every run")
    parser.add_argument("--tokenizers", nargs="*", default=[], metavar="LATENT=FOLDER",
                        help="other tokenizer folders than the defaults, e.g. vae48=runs/my-vae/model")
    args = parser.parse_args(argv)
    resolve_parallel(parser, args)
    chosen = dict(item.split("=", 1) for item in args.tokenizers)
    if set(chosen) - set(LATENTS):
        parser.error(f"--tokenizers: unknown latent {sorted(set(chosen) - set(LATENTS))}, expected {list(LATENTS)}")
    args.tokenizers = {name: Path(chosen.get(name, ROOT / space.tokenizer)) for name, space in LATENTS.items()}
    for latent in args.latents:
        if not (args.tokenizers[latent] / "config.json").is_file():
            raise SystemExit(f"{args.tokenizers[latent]}: no {latent} tokenizer; see the first command of --help")

    published = published_runs(Path(args.out), args)
    logged = {(latent, lr): run_dir(latent, lr, args.runs) / "evals.json" for latent in LATENTS for lr in args.lrs}
    to_train = [] if args.report else [  # learning rate by learning rate, the latents side by side
        (latent, lr) for lr in args.lrs for latent in args.latents
        if (latent, lr) not in published or logged[latent, lr].is_file()
    ]
    trained = train_all(to_train, args)
    rows, summaries = [], []
    for latent in LATENTS:  # every latent and learning rate with rows is reported; the chosen ones are trained
        runs = {}
        for lr in sorted(set(args.lrs) | {lr for name, lr in published if name == latent}):
            log = run_dir(latent, lr, args.runs) / "evals.json"
            if (latent, lr) in trained:
                runs[lr] = trained[latent, lr]
            elif (latent, lr) in published and not log.is_file():
                runs[lr] = published[latent, lr]
            else:
                runs[lr] = json.loads(log.read_text()) if log.is_file() else []
            rows += runs[lr]
        runs = {lr: r for lr, r in runs.items() if r}
        if runs:
            summaries.append(summarise(latent, args.tokenizers[latent], runs, args))
    print_table(rows, ["latent", "lr", "minutes", "step", "accuracy_all", "pattern", "peak_rss_MiB"])
    print_table(summaries, ["latent", "tokens_per_clip", "reconstruction_attributes_all", "best_lr", "best_accuracy_all", "minutes_to_target",
                            "steps_to_target", "step_seconds", "peak_rss_MiB"])
    settings = {"dit_config": CONFIG, "clip": [16, 64, 64], "learning_rates": args.lrs,
                "eval": {"prompts": args.prompts, "clips_per_prompt": 2, "condition": "text", "steps": 20,
                         "guidance_scale": 3.0, "seed": args.seed},
                "every_minutes": args.every, "max_minutes": args.minutes,
                **{k: getattr(args, k) for k in SAME_SETTINGS}}
    payload = {"settings": settings, "summary": summaries, "rows": rows}
    write_json(args.out, payload)
    plot(rows, Path(args.out).with_suffix(".svg"))
    return payload


def plot(rows: list[dict], path: Path) -> None:
    from benchmarks.svg_plot import Panel, write_svg

    series: dict[str, list] = {}
    for row in rows:
        point = (row["minutes"], max(0.5, 100 * row["accuracy_all"]))  # log axes: 0% drawn at 0.5%
        series.setdefault(f"{row['latent']} lr {row['lr']:g}", []).append(point)
    if series:
        write_svg([Panel("DiT prompt accuracy", "training minutes", "all attributes right (%)", series)], path)


if __name__ == "__main__":
    main()
