"""Encode a dataset once with the frozen tokenizer (normalised posterior means) and its captions' text states.

    python gen/cache_latents.py --config configs/dit/shapes-32.yaml [key=value ...]
    accelerate launch --num_processes 4 gen/cache_latents.py --config ...     # the ranks share the work

The cache is a folder: `shard-r<rank>-<k>.safetensors` (structure, dynamics, label, caption_id per clip),
`captions-r<rank>.safetensors` (text states and masks of each rank's unique captions, float16) and `index.json`. Each
rank encodes one contiguous block of the dataset, so the cache holds the items in dataset order whatever the number
of ranks. It is built under a temporary name and renamed when complete, so a half-written cache never loads.
`index.json` records a fingerprint of everything the cache depends on (tokenizer weights, data settings, text
encoder, max_text_length); a cache whose fingerprint differs from the run's is stale. Videos without a label get
label -1; without text, caption id -1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

if __package__ in (None, ""):  # run as a script from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gen.text_encoder import encode_text  # noqa: E402
from hivae import HiVAE, VideoVAE3D  # noqa: E402
from hivae.data import collate_clips  # noqa: E402

logger = logging.getLogger(__name__)

CACHE_VERSION = 2


# ---------------------------------------------------------------------------- fingerprint
def tokenizer_digest(vae: torch.nn.Module) -> str:
    """sha256 over the tokenizer's weights (names, shapes, dtypes, bytes) and its config."""
    digest = hashlib.sha256()
    config = {k: v for k, v in dict(getattr(vae, "config", {})).items() if not k.startswith("_")}
    digest.update(json.dumps(config, sort_keys=True, default=list).encode())
    for name, tensor in sorted(vae.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}{tuple(value.shape)}{value.dtype}".encode())
        digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


def _folder_digest(root: str) -> str:
    """sha256 of a data folder's file names and sizes (metadata included): another folder, another cache."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(root)}:{path.stat().st_size}\n".encode())
    return digest.hexdigest()


def cache_fingerprint(vae, data_config, text_encoder: str | None, max_text_length: int) -> dict:
    """Everything a latent cache depends on; compare with `LatentCacheDataset.index["fingerprint"]`."""
    data = {k: v for k, v in dataclasses.asdict(data_config).items() if k != "strict"}
    if data.get("root"):
        data["root"] = str(Path(data["root"]).resolve())
        if Path(data["root"]).is_dir():
            data["root_digest"] = _folder_digest(data["root"])
    encoder = None
    if text_encoder is not None:
        encoder = str(Path(text_encoder).resolve()) if Path(text_encoder).is_dir() else str(text_encoder)
    fingerprint = {
        "tokenizer_sha256": tokenizer_digest(vae),
        "data": data,
        "text_encoder": encoder,
        "max_text_length": max_text_length if encoder is not None else None,
    }
    return json.loads(json.dumps(fingerprint, default=list))  # as index.json will hold it (tuples -> lists)


def fingerprint_differences(cached: dict | None, expected: dict) -> list[str]:
    """Dotted names of the fingerprint entries that differ (all of them when the cache has none)."""
    if not cached:
        return ["fingerprint (missing)"]
    diffs = []
    for key in sorted(set(cached) | set(expected)):
        a, b = cached.get(key), expected.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += [f"{key}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            diffs.append(key)
    return diffs


# ---------------------------------------------------------------------------- building
def _rank_block(length: int, rank: int, world_size: int) -> range:
    """Contiguous block of item indices that `rank` encodes."""
    per_rank = -(-length // world_size)
    return range(min(rank * per_rank, length), min((rank + 1) * per_rank, length))


@torch.no_grad()
def _encode_block(
    vae, dataset, tmp: Path, rank: int, text_encoder, max_text_length, batch_size, shard_size, workers, autocast
):
    """Encode `dataset` (this rank's block) into shards and a caption table under `tmp`; write part-r<rank>.json."""
    device = next(vae.parameters()).device
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate_clips)
    captions: dict[str, int] = {}
    buffer: dict[str, list[torch.Tensor]] = {"structure": [], "dynamics": [], "label": [], "caption_id": []}
    shards = []

    def flush() -> None:
        if not buffer["label"]:
            return
        tensors = {k: torch.cat(v).contiguous() for k, v in buffer.items()}
        name = f"shard-r{rank:03d}-{len(shards):05d}.safetensors"
        save_file(tensors, tmp / name)
        shards.append({"file": name, "count": len(tensors["label"])})
        for v in buffer.values():
            v.clear()

    for batch in tqdm(loader, desc=f"caching latents (rank {rank})", disable=len(loader) < 2):
        with autocast():
            latent = vae.normalize_latent(vae.encode(batch["video"].to(device, vae.dtype)).latent_dist.mode())
        count = latent.batch_size
        buffer["structure"].append(latent.structure.float().cpu())
        buffer["dynamics"].append(latent.dynamics.float().cpu())
        labels = batch.get("label")
        buffer["label"].append(labels.long() if labels is not None else torch.full((count,), -1))
        texts = batch.get("text") or [None] * count
        ids = [captions.setdefault(t, len(captions)) if t is not None else -1 for t in texts]
        buffer["caption_id"].append(torch.tensor(ids, dtype=torch.long))
        if sum(len(x) for x in buffer["label"]) >= shard_size:
            flush()
    flush()

    caption_list = list(captions)
    caption_file = None
    if text_encoder is not None and caption_list:
        states, masks = [], []
        for start in range(0, len(caption_list), 256):
            s, m = encode_text(*text_encoder, caption_list[start : start + 256], max_text_length)
            states.append(s.half().cpu())
            masks.append(m.cpu().to(torch.uint8))
        caption_file = f"captions-r{rank:03d}.safetensors"
        save_file({"states": torch.cat(states), "mask": torch.cat(masks)}, tmp / caption_file)
    part = {"shards": shards, "captions": caption_list, "caption_file": caption_file}
    (tmp / f"part-r{rank:03d}.json").write_text(json.dumps(part))


def build_cache(
    vae: HiVAE | VideoVAE3D,
    dataset: Dataset,
    out_dir: str | os.PathLike,
    text_encoder: tuple | None = None,
    max_text_length: int = 32,
    batch_size: int = 16,
    shard_size: int = 4096,
    num_workers: int = 0,
    fingerprint: dict | None = None,
    rank: int = 0,
    world_size: int = 1,
    barrier: Callable[[], None] | None = None,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> Path:
    """Encode every clip of `dataset` into a latent cache at `out_dir` (replaced atomically).

    `autocast` (e.g. `accelerator.autocast`) is entered around each tokenizer call; captions are encoded in fp32.

    With `world_size` > 1 every rank calls this with its `rank` and a `barrier` (e.g. `accelerator.wait_for_everyone`):
    each encodes its own block, rank 0 writes the index and makes the cache final.
    """
    if world_size > 1 and barrier is None:
        raise ValueError("build_cache with world_size > 1 needs a barrier (e.g. accelerator.wait_for_everyone)")
    barrier = barrier or (lambda: None)
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".tmp-{out_dir.name}")
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier()
    vae.eval()
    block = Subset(dataset, _rank_block(len(dataset), rank, world_size))
    _encode_block(vae, block, tmp, rank, text_encoder, max_text_length, batch_size, shard_size, num_workers, autocast)
    barrier()  # every rank's shards are on disk
    if rank == 0:
        shards, captions, caption_files = [], [], []
        for r in range(world_size):
            part_file = tmp / f"part-r{r:03d}.json"
            part = json.loads(part_file.read_text())
            shards += [shard | {"caption_offset": len(captions)} for shard in part["shards"]]
            if part["caption_file"]:
                caption_files.append({"file": part["caption_file"], "count": len(part["captions"])})
            captions += part["captions"]
            part_file.unlink()
        index = {
            "version": CACHE_VERSION,
            "num_items": sum(s["count"] for s in shards),
            "shards": shards,
            "captions": captions,
            "caption_files": caption_files,
            "has_text_states": text_encoder is not None and bool(captions),
            "max_text_length": max_text_length,
            "latent_shapes": [list(s) for s in vae.latent_shapes()],
            "fingerprint": fingerprint,
        }
        (tmp / "index.json").write_text(json.dumps(index, indent=1, default=list))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    barrier()
    return out_dir


# ---------------------------------------------------------------------------- reading
class LatentCacheDataset(Dataset):
    """Items of a latent cache: `structure`, `dynamics` (normalised), `label` (-1 = none), `caption_id`.

    `text_states[caption_id]` (L, D) and `text_mask[caption_id]` (L,) hold the captions' encodings.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        index_file = self.path / "index.json"
        if not index_file.is_file():
            raise FileNotFoundError(
                f"{self.path}: not a latent cache (no index.json); build it with gen/cache_latents.py"
            )
        self.index = json.loads(index_file.read_text())
        if self.index.get("version") != CACHE_VERSION:
            raise ValueError(
                f"{index_file}: cache version {self.index.get('version')}, expected {CACHE_VERSION}; delete the "
                "folder or rerun gen/cache_latents.py to rebuild it"
            )
        parts: dict[str, list[torch.Tensor]] = {}
        for shard in self.index["shards"]:
            file = self.path / shard["file"]
            try:
                tensors = load_file(file)
            except Exception as err:
                raise ValueError(f"{file}: unreadable latent shard ({err})")
            if len(tensors.get("label", [])) != shard["count"]:
                raise ValueError(
                    f"{file}: holds {len(tensors.get('label', []))} items, index.json says {shard['count']}"
                )
            ids = tensors["caption_id"]
            tensors["caption_id"] = torch.where(ids >= 0, ids + shard["caption_offset"], ids)
            for key, value in tensors.items():
                parts.setdefault(key, []).append(value)
        self.tensors = {k: torch.cat(v) for k, v in parts.items()}
        self.captions: list[str] = self.index["captions"]
        self.text_states = self.text_mask = None
        if self.index["has_text_states"]:
            tables = [load_file(self.path / f["file"]) for f in self.index["caption_files"]]
            self.text_states = torch.cat([t["states"] for t in tables])
            self.text_mask = torch.cat([t["mask"] for t in tables]).bool()

    def __len__(self) -> int:
        return self.index["num_items"]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[i] for k, v in self.tensors.items()}

    def check_fingerprint(self, expected: dict) -> None:
        """Refuse a stale cache: one made with other tokenizer weights, data settings or text encoder."""
        diffs = fingerprint_differences(self.index.get("fingerprint"), expected)
        if diffs:
            raise ValueError(
                f"{self.path}: latent cache is stale (differs in {', '.join(diffs)}); delete it or let "
                "gen/train_dit.py rebuild it"
            )


def cache_is_current(path: str | os.PathLike, expected: dict) -> tuple[bool, list[str]]:
    """(True, []) if `path` holds a complete cache with this fingerprint, else (False, reasons)."""
    index_file = Path(path) / "index.json"
    if not index_file.is_file():
        return False, ["no cache yet"]
    index = json.loads(index_file.read_text())
    if index.get("version") != CACHE_VERSION:
        return False, [f"cache version {index.get('version')} != {CACHE_VERSION}"]
    diffs = fingerprint_differences(index.get("fingerprint"), expected)
    return not diffs, diffs


def ensure_cache(accelerator, cache_dir, vae, data_config, text, text_encoder_name, max_text_length, num_workers=0):
    """The latent cache at `cache_dir`, (re)built by all ranks together when missing or stale (with a log line).

    The clips are encoded under the accelerator's mixed precision (`train.mixed_precision`)."""
    from hivae.data import build_dataset

    fingerprint = cache_fingerprint(vae, data_config, text_encoder_name, max_text_length)
    current, reasons = cache_is_current(cache_dir, fingerprint)
    if not current:
        if reasons != ["no cache yet"] and accelerator.is_main_process:
            logger.warning("latent cache %s is stale (%s): rebuilding it", cache_dir, ", ".join(reasons))
        build_cache(
            vae,
            build_dataset(data_config, split="train"),
            cache_dir,
            text,
            max_text_length,
            num_workers=num_workers,
            fingerprint=fingerprint,
            rank=accelerator.process_index,
            world_size=accelerator.num_processes,
            barrier=accelerator.wait_for_everyone,
            autocast=accelerator.autocast,
        )
    dataset = LatentCacheDataset(cache_dir)
    dataset.check_fingerprint(fingerprint)
    return dataset


def main(argv: list[str] | None = None) -> Path:
    from accelerate import Accelerator

    from gen.dit_config import DiTTrainConfig, load_frozen_tokenizer
    from gen.text_encoder import load_text_encoder
    from gen.training import parse_args
    from hivae.config import load_config

    args = parse_args(__doc__, argv)
    config = load_config(args.config, DiTTrainConfig, args.overrides)
    if not config.cache_dir:
        raise ValueError(f"{args.config}: set cache_dir to say where the latent cache goes")
    accelerator = Accelerator(mixed_precision=config.train.mixed_precision)  # encoded as gen/train_dit.py would
    vae = load_frozen_tokenizer(config.tokenizer).to(accelerator.device)
    text = load_text_encoder(config.text_encoder) if config.text_encoder else None
    if text is not None:
        text[1].to(accelerator.device)
    dataset = ensure_cache(
        accelerator,
        config.cache_dir,
        vae,
        config.data,
        text,
        config.text_encoder,
        config.max_text_length,
        config.train.num_workers,
    )
    if accelerator.is_main_process:
        print(f"latent cache ({len(dataset)} clips, up to date) at {Path(config.cache_dir).resolve()}")
    return Path(config.cache_dir)


if __name__ == "__main__":
    main()
