"""Encode a dataset once with the frozen tokenizer (normalised posterior means) and its captions' text states.

    python gen/cache_latents.py --config configs/dit/shapes-32.yaml [key=value ...]

The cache is a folder: `shard-*.safetensors` (structure, dynamics, label, caption_id per clip), `captions.safetensors`
(text states and masks of the unique captions, float16) and `index.json`. It is built under a temporary name and
renamed when complete, so a half-written cache never loads. Videos without a label get label -1; without text,
caption id -1.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gen.text_encoder import encode_text  # noqa: E402
from hivae import HiVAE  # noqa: E402
from hivae.data import collate_clips  # noqa: E402

CACHE_VERSION = 1


@torch.no_grad()
def build_cache(
    vae: HiVAE,
    dataset: Dataset,
    out_dir: str | os.PathLike,
    text_encoder: tuple | None = None,
    max_text_length: int = 32,
    batch_size: int = 16,
    shard_size: int = 4096,
    num_workers: int = 0,
) -> Path:
    """Encode every clip of `dataset` into a latent cache at `out_dir` (replaced atomically)."""
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".tmp-{out_dir.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    device = next(vae.parameters()).device
    vae.eval()
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_clips)
    captions: dict[str, int] = {}
    buffer: dict[str, list[torch.Tensor]] = {"structure": [], "dynamics": [], "label": [], "caption_id": []}
    shards = []

    def flush() -> None:
        if not buffer["label"]:
            return
        tensors = {k: torch.cat(v).contiguous() for k, v in buffer.items()}
        name = f"shard-{len(shards):05d}.safetensors"
        save_file(tensors, tmp / name)
        shards.append({"file": name, "count": len(tensors["label"])})
        for v in buffer.values():
            v.clear()

    for batch in tqdm(loader, desc="caching latents"):
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
    if text_encoder is not None and caption_list:
        states, masks = [], []
        for start in range(0, len(caption_list), 256):
            s, m = encode_text(*text_encoder, caption_list[start : start + 256], max_text_length)
            states.append(s.half().cpu())
            masks.append(m.cpu().to(torch.uint8))
        save_file({"states": torch.cat(states), "mask": torch.cat(masks)}, tmp / "captions.safetensors")
    index = {
        "version": CACHE_VERSION,
        "num_items": sum(s["count"] for s in shards),
        "shards": shards,
        "captions": caption_list,
        "has_text_states": text_encoder is not None and bool(caption_list),
        "max_text_length": max_text_length,
        "latent_shapes": [list(s) for s in vae.latent_shapes()],
        "tokenizer_config": {k: v for k, v in vae.config.items() if not k.startswith("_")},
    }
    (tmp / "index.json").write_text(json.dumps(index, indent=1, default=list))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return out_dir


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
            raise ValueError(f"{index_file}: cache version {self.index.get('version')}, expected {CACHE_VERSION}")
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
            for key, value in tensors.items():
                parts.setdefault(key, []).append(value)
        self.tensors = {k: torch.cat(v) for k, v in parts.items()}
        self.captions: list[str] = self.index["captions"]
        self.text_states = self.text_mask = None
        if self.index["has_text_states"]:
            text = load_file(self.path / "captions.safetensors")
            self.text_states, self.text_mask = text["states"], text["mask"].bool()

    def __len__(self) -> int:
        return self.index["num_items"]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[i] for k, v in self.tensors.items()}

    def check_compatible(self, vae_config: dict) -> None:
        """Refuse a cache made with another tokenizer (different latent geometry or statistics)."""
        cached = self.index["tokenizer_config"]
        keys = [k for k in cached if not k.startswith("_") and k in vae_config]
        diff = [k for k in keys if json.dumps(cached[k], default=list) != json.dumps(vae_config[k], default=list)]
        if diff:
            raise ValueError(f"{self.path}: cache was made by another tokenizer (differs in {', '.join(diff)})")


def main(argv: list[str] | None = None) -> Path:
    from gen.text_encoder import load_text_encoder
    from gen.train_dit import DiTTrainConfig, load_frozen_tokenizer
    from gen.training import parse_args
    from hivae.config import load_config
    from hivae.data import build_dataset

    args = parse_args(__doc__, argv)
    config = load_config(args.config, DiTTrainConfig, args.overrides)
    if not config.cache_dir:
        raise ValueError(f"{args.config}: set cache_dir to say where the latent cache goes")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    vae = load_frozen_tokenizer(config.tokenizer).to(device)
    text = load_text_encoder(config.text_encoder) if config.text_encoder else None
    if text is not None:
        text[1].to(device)
    out = build_cache(vae, build_dataset(config.data), config.cache_dir, text, config.max_text_length)
    print(f"wrote latent cache ({json.loads((out / 'index.json').read_text())['num_items']} clips) to {out.resolve()}")
    return out


if __name__ == "__main__":
    main()
