"""Pieces shared by `train_tokenizer.py` and `train_dit.py`: config, accelerator, data order, checkpoints, logging.

Checkpoints are `accelerator.save_state` folders written under a temporary name and renamed when complete, so an
interrupted run never leaves a checkpoint that looks valid. Data order is a pure function of (seed, epoch), so a
resumed run sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import GradientAccumulationPlugin, ProjectConfiguration, set_seed
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from hivae.config import ConfigError, save_config

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    output_dir: str = "runs/run"  # checkpoints/, logs/ (tensorboard), samples/ and the final model/ go here
    seed: int = 0  # seeds model init, data order and noise
    max_steps: int = 2000  # optimizer steps
    batch_size: int = 8  # clips per process per micro-batch
    gradient_accumulation_steps: int = 1  # micro-batches per optimizer step
    learning_rate: float = 2e-4  # peak learning rate (AdamW)
    adam_betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    warmup_steps: int = 100  # linear warm-up steps
    lr_schedule: Literal["cosine", "constant"] = "cosine"  # after warm-up
    max_grad_norm: float = 1.0  # gradient clipping (0 disables)
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"  # autocast on GPU
    ema_decay: float = 0.999  # exponential moving average of weights (0 disables)
    checkpoint_every: int = 500  # steps between save_state checkpoints
    checkpoints_total_limit: int = 2  # keep this many checkpoints (the newest included); 0 keeps all
    log_every: int = 10  # steps between tensorboard scalars
    sample_every: int = 500  # steps between sample videos (0 disables)
    num_workers: int = 0  # DataLoader workers
    resume: bool = True  # continue from the latest checkpoint in output_dir
    allow_tf32: bool = True  # TF32 matmuls on Ampere+ GPUs
    max_minutes: float = 0.0  # stop early (checkpoint + final export) after this wall time; 0 = no limit
    stop_at_step: int = 0  # end this run at this step (checkpointed; resume later), schedule still spans max_steps
    budget_minutes: float = 0.0  # total training wall time over all resumed runs (checkpointed); 0 = no limit


def parse_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="yaml preset under configs/")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.max_steps=100")
    return parser.parse_args(argv)


def check_model_kwargs(cls: type, kwargs: dict[str, Any], section: str = "model") -> None:
    """Reject keys that `cls.__init__` does not take, naming them."""
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ConfigError(
            f"unknown key '{section}.{unknown[0]}' for {cls.__name__} (known: {', '.join(sorted(accepted))})"
        )


def load_init_weights(model, folder: str, kind: str, optional_prefix: str | None = None) -> None:
    """`init_from`: load a save_pretrained folder's safetensors into `model` (fine-tuning / stage 2).

    Keys must match exactly, except that parameters under `optional_prefix` may be absent from the file (new parts).
    """
    from safetensors.torch import load_file

    file = Path(folder) / "diffusion_pytorch_model.safetensors"
    if not file.is_file():
        raise FileNotFoundError(f"{file}: init_from needs a save_pretrained {kind} folder")
    missing, unexpected = model.load_state_dict(load_file(file), strict=False)
    missing = [k for k in missing if not (optional_prefix and k.startswith(optional_prefix))]
    if missing or unexpected:
        raise ValueError(f"{file}: does not fit the model (missing {missing[:3]}, unexpected {unexpected[:3]})")


def make_accelerator(config: TrainConfig) -> Accelerator:
    output = Path(config.output_dir)
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_plugin=GradientAccumulationPlugin(
            num_steps=config.gradient_accumulation_steps, sync_with_dataloader=False
        ),
        log_with="tensorboard",
        project_config=ProjectConfiguration(project_dir=str(output), logging_dir=str(output / "logs")),
    )
    if config.allow_tf32 and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    set_seed(config.seed)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("accelerate").setLevel(logging.WARNING)
    return accelerator


class EpochSampler(Sampler[int]):
    """Random permutation per epoch, a pure function of (seed, epoch)."""

    def __init__(self, length: int, seed: int):
        self.length, self.seed, self.epoch = length, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.length, generator=generator).tolist())

    def __len__(self) -> int:
        return self.length


def make_loader(dataset: Dataset, config: TrainConfig, collate_fn=None) -> DataLoader:
    if len(dataset) < config.batch_size:
        raise ValueError(f"dataset has {len(dataset)} items, fewer than train.batch_size={config.batch_size}")
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=EpochSampler(len(dataset), config.seed),
        drop_last=True,
        num_workers=config.num_workers,
        collate_fn=collate_fn,
        persistent_workers=config.num_workers > 0,
    )


def batches(accelerator: Accelerator, loader: DataLoader, start_step: int, config: TrainConfig) -> Iterator[Any]:
    """Endless micro-batches, starting where step `start_step` of an uninterrupted run would be."""
    consumed = start_step * config.gradient_accumulation_steps
    epoch, skip = divmod(consumed, len(loader))
    while True:
        loader.set_epoch(epoch) if hasattr(loader, "set_epoch") else loader.sampler.set_epoch(epoch)
        source = accelerator.skip_first_batches(loader, skip) if skip else loader
        yield from source
        epoch, skip = epoch + 1, 0


def make_optimizer(params, config: TrainConfig, num_processes: int = 1):
    from diffusers.optimization import get_scheduler

    optimizer = torch.optim.AdamW(
        params, lr=config.learning_rate, betas=config.adam_betas, weight_decay=config.weight_decay
    )
    name = "cosine" if config.lr_schedule == "cosine" else "constant_with_warmup"
    # accelerate steps a prepared scheduler once per process per optimizer step
    scheduler = get_scheduler(
        name,
        optimizer,
        num_warmup_steps=config.warmup_steps * num_processes,
        num_training_steps=config.max_steps * num_processes,
    )
    return optimizer, scheduler


def make_ema(model: torch.nn.Module, config: TrainConfig, accelerator: Accelerator):
    """diffusers' EMAModel over `model`'s parameters (their names kept for saving); None when disabled."""
    if config.ema_decay <= 0:
        return None
    from diffusers.training_utils import EMAModel

    unwrapped = accelerator.unwrap_model(model)
    ema = EMAModel(unwrapped.parameters(), decay=config.ema_decay)
    ema.parameter_names = [name for name, _ in unwrapped.named_parameters()]
    ema.to(accelerator.device)
    return ema


@contextlib.contextmanager
def ema_weights(ema, model: torch.nn.Module):
    """Run the block with the EMA weights in `model` (e.g. to sample), then put the training weights back."""
    if ema is None:
        yield model
        return
    params = list(model.parameters())
    ema.store(params)
    ema.copy_to(params)
    try:
        yield model
    finally:
        ema.restore(params)


def save_ema(ema, folder: Path) -> None:
    """EMA weights as safetensors under the model's own state_dict names, plus its step counter."""
    from safetensors.torch import save_file

    save_file(
        {name: p.detach().cpu().contiguous() for name, p in zip(ema.parameter_names, ema.shadow_params)},
        folder / "ema.safetensors",
    )
    (folder / "ema_state.json").write_text(json.dumps({"optimization_step": ema.optimization_step}))


def load_ema(ema, folder: Path) -> None:
    from safetensors.torch import load_file

    file = folder / "ema.safetensors"
    tensors = load_file(file)
    missing = [name for name in ema.parameter_names if name not in tensors]
    if missing or len(tensors) != len(ema.shadow_params):
        raise ValueError(
            f"{file}: holds {len(tensors)} tensors that do not match the model's {len(ema.shadow_params)} "
            f"parameters (missing {missing[:3]})"
        )
    for name, shadow in zip(ema.parameter_names, ema.shadow_params):
        shadow.data.copy_(tensors[name])
    ema.optimization_step = json.loads((folder / "ema_state.json").read_text())["optimization_step"]


# ---------------------------------------------------------------------------- checkpoints
def checkpoint_dirs(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = Path(output_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.name.startswith("step-") and (p / "trainer_state.json").is_file()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def save_checkpoint(
    accelerator: Accelerator, config: TrainConfig, step: int, ema=None, train_seconds: float = 0.0
) -> Path | None:
    """save_state into a temporary folder, then rename once every rank has written; prune to
    `checkpoints_total_limit` (0 keeps all), never deleting the checkpoint just written."""
    root = Path(config.output_dir) / "checkpoints"
    final = root / f"step-{step:07d}"
    tmp = root / f".tmp-step-{step:07d}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp), safe_serialization=True)  # every rank writes its own RNG state
    accelerator.wait_for_everyone()  # ... and has finished before the folder is made final
    if accelerator.is_main_process:
        if ema is not None:
            save_ema(ema, tmp)
        (tmp / "trainer_state.json").write_text(json.dumps({"step": step, "train_seconds": train_seconds}))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        if config.checkpoints_total_limit > 0:
            others = [p for p in checkpoint_dirs(config.output_dir) if p != final]
            for old in others[: max(0, len(others) - (config.checkpoints_total_limit - 1))]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def trained_seconds(output_dir: str | Path, step: int) -> float:
    """Training wall time recorded with the checkpoint of `step` (0 for a fresh run or an older checkpoint)."""
    state = Path(output_dir) / "checkpoints" / f"step-{step:07d}" / "trainer_state.json"
    return json.loads(state.read_text()).get("train_seconds", 0.0) if state.is_file() else 0.0


def resume_step(accelerator: Accelerator, config: TrainConfig, ema=None) -> int:
    """Load the latest complete checkpoint when `config.resume`; return the step to continue from."""
    found = checkpoint_dirs(config.output_dir)
    if not config.resume or not found:
        return 0
    latest = found[-1]
    accelerator.load_state(str(latest))
    if ema is not None:
        load_ema(ema, latest)
    step = json.loads((latest / "trainer_state.json").read_text())["step"]
    logger.info("resumed from %s (step %d)", latest, step)
    return step


def save_pretrained_atomic(model, path: str | Path, config_obj=None) -> Path:
    """`model.save_pretrained` into a temporary folder, then rename over `path`; the training config goes beside."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    if config_obj is not None:
        save_config(config_obj, tmp / "training_config.yaml")
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------------------- logging
def video_grid(videos: torch.Tensor) -> np.ndarray:
    """(N, 3, T, H, W) in [-1, 1] -> uint8 image (3, N*H, T*W): one row per clip, frames left to right."""
    from einops import rearrange

    videos = ((videos.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return rearrange(videos, "n c t h w -> c (n h) (t w)").numpy()


def log_videos(accelerator: Accelerator, tag: str, videos: torch.Tensor, step: int, fps: int = 8) -> Path:
    """Write `videos` (N, 3, T, H, W) side by side to samples/<tag>-<step>.mp4 and as an image grid to tensorboard."""
    from einops import rearrange

    from hivae.data import write_video

    output = Path(accelerator.project_dir) / "samples" / f"{tag}-{step:07d}.mp4"
    write_video(output, rearrange(videos.float().cpu(), "n c t h w -> c t h (n w)"), fps=fps)
    tracker = accelerator.get_tracker("tensorboard", unwrap=True)
    if hasattr(tracker, "add_image"):
        tracker.add_image(tag, video_grid(videos), step)
    return output


# ---------------------------------------------------------------------------- the loop
def check_finite_loss(accelerator: Accelerator, loss: torch.Tensor, step: int) -> None:
    """Raise on every rank if the loss is NaN/inf on any rank (one rank alone raising would hang the others)."""
    bad = torch.tensor(float(not torch.isfinite(loss.detach()).item()), device=accelerator.device)
    if accelerator.num_processes > 1:
        bad = accelerator.reduce(bad, reduction="sum")
    if bad.item() > 0:
        raise FloatingPointError(
            f"loss is not finite at step {step} (this rank: {loss.item()}); lower train.learning_rate?"
        )


def run_training_loop(
    accelerator: Accelerator,
    model: torch.nn.Module,
    optimizer,
    lr_scheduler,
    loader: DataLoader,
    config: TrainConfig,
    ema,
    start_step: int,
    step_fn: Callable[[Any, int], tuple[torch.Tensor, dict[str, float], Callable[[], dict] | None]],
    sample_fn: Callable[[int], None] | None = None,
    desc: str = "train",
) -> int:
    """Optimizer steps `start_step`..`config.max_steps`: accumulate, clip, step, EMA, log, sample, checkpoint.

    `step_fn(batch, step)` returns (loss, logs, post_backward); `post_backward()` (or None) runs after the
    backward pass, e.g. a discriminator update, and returns extra logs. `sample_fn(step)` runs on the main process
    with the EMA weights loaded into the model.
    """
    step = start_step
    started = time.monotonic()
    prior_seconds = trained_seconds(config.output_dir, start_step) if start_step else 0.0
    spent = lambda: prior_seconds + time.monotonic() - started  # noqa: E731  (training time over all runs)
    if config.budget_minutes > 0 and spent() >= 60 * config.budget_minutes:
        logger.info("training budget of %.1f min already spent at step %d", config.budget_minutes, step)
        return step
    progress = tqdm(total=config.max_steps, initial=start_step, disable=not accelerator.is_main_process, desc=desc)
    model.train()
    for batch in batches(accelerator, loader, start_step, config):
        if step >= config.max_steps:
            break
        # the step's randomness (posterior noise, timesteps, condition dropout) is a pure function of
        # (seed, step, process, micro-batch), so a resumed run repeats the uninterrupted one exactly
        micro = accelerator.step % config.gradient_accumulation_steps
        torch.manual_seed(((config.seed * 1_000_003 + step) * 64 + accelerator.process_index) * 1024 + micro)
        with accelerator.accumulate(model):
            loss, logs, post_backward = step_fn(batch, step)
            check_finite_loss(accelerator, loss, step)
            accelerator.backward(loss)
            if accelerator.sync_gradients and config.max_grad_norm > 0:
                logs["grad_norm"] = float(accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm))
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if post_backward is not None:
                logs.update(post_backward())
        if not accelerator.sync_gradients:
            continue
        step += 1
        if ema is not None:
            ema.step(accelerator.unwrap_model(model).parameters())
        progress.update(1)
        progress.set_postfix(loss=f"{logs['loss']:.4f}")
        if step % config.log_every == 0 or step == config.max_steps:
            accelerator.log(
                {f"train/{k}": v for k, v in logs.items()} | {"train/lr": lr_scheduler.get_last_lr()[0]}, step
            )
        if sample_fn is not None and config.sample_every and step % config.sample_every == 0:
            if accelerator.is_main_process:
                with ema_weights(ema, accelerator.unwrap_model(model)):
                    sample_fn(step)
            model.train()
        out_of_time = config.max_minutes > 0 and time.monotonic() - started > 60 * config.max_minutes
        out_of_time = out_of_time or step == config.stop_at_step
        out_of_time = out_of_time or (config.budget_minutes > 0 and spent() > 60 * config.budget_minutes)
        if accelerator.num_processes > 1:  # every process must stop at the same step
            flag = torch.tensor(float(out_of_time), device=accelerator.device)
            out_of_time = bool(accelerator.reduce(flag, reduction="sum").item())
        if step % config.checkpoint_every == 0 or step == config.max_steps or out_of_time:
            save_checkpoint(accelerator, config, step, ema, spent())
        if out_of_time:
            logger.info("stopping at step %d (max_minutes / stop_at_step / budget_minutes); rerun to resume", step)
            break
    progress.close()
    return step
