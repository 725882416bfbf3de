"""`from_pretrained` that refuses a folder holding another model type, naming the file, before building anything."""

from __future__ import annotations

import json
import os
from pathlib import Path


class CheckedLoadMixin:
    """Put before `ModelMixin` in the bases: local folders are checked for config.json and the right `_class_name`."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs):
        folder = Path(pretrained_model_name_or_path)
        if kwargs.get("subfolder"):
            folder = folder / kwargs["subfolder"]
        config_file = folder / "config.json"
        if not config_file.is_file():
            raise FileNotFoundError(
                f"{config_file}: missing; {folder} is not a saved {cls.__name__} (nothing is downloaded)"
            )
        try:
            saved = json.loads(config_file.read_text()).get("_class_name")
        except json.JSONDecodeError as err:
            raise ValueError(f"{config_file}: not valid JSON ({err.msg})")
        if saved != cls.__name__:
            raise ValueError(f"{config_file}: holds a {saved!r}, not a {cls.__name__}")
        kwargs.setdefault("local_files_only", True)
        kwargs.setdefault("use_safetensors", True)  # never fall back to pickled .bin weights
        weights = folder / "diffusion_pytorch_model.safetensors"
        if kwargs["use_safetensors"] and not weights.is_file():
            raise FileNotFoundError(f"{weights}: missing; only safetensors weights are loaded")
        try:
            return super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        except OSError as err:  # safetensors reports a truncated or corrupt file as an OSError
            raise ValueError(f"{weights}: cannot be loaded ({err})") from err


# environment variable that points the CLI, benchmarks and scripts at a pipeline folder
CHECKPOINT_ENV = "HIVAE_CHECKPOINT"
_SOURCE_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "hivae-shapes-64"


def default_checkpoint() -> Path:
    """The shipped pipeline folder: `$HIVAE_CHECKPOINT`, else `checkpoints/hivae-shapes-64` of a source checkout.

    A non-editable install has no checkpoints folder beside the package: the error says where to point.
    """
    configured = os.environ.get(CHECKPOINT_ENV)
    folder = Path(configured) if configured else _SOURCE_CHECKPOINT
    if not (folder / "model_index.json").is_file():
        where = f"${CHECKPOINT_ENV}={configured}" if configured else str(folder)
        raise FileNotFoundError(
            f"{where}: no shipped checkpoint there (model_index.json missing). The checkpoint lives in the source "
            f"repository's checkpoints/hivae-shapes-64; pass --checkpoint PATH or set {CHECKPOINT_ENV}=PATH"
        )
    return folder


# the models this repository ships, by name: the shapes pipeline (tokenizer + DiT) and the natural-video tokenizer
SHIPPED = {"shapes": "hivae-shapes-64", "natural": "hivae-natural-64"}


def resolve_checkpoint(name_or_path: str | os.PathLike) -> Path:
    """A shipped model's name ("shapes": `default_checkpoint()`; "natural": checkpoints/hivae-natural-64 of a source
    checkout) or a folder path, as a Path."""
    name = str(name_or_path)
    if name == "shapes":
        return default_checkpoint()
    if name in SHIPPED:
        folder = _SOURCE_CHECKPOINT.parent / SHIPPED[name]
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(
                f"{folder}: the shipped {name!r} tokenizer is not there (config.json missing); it lives in the source "
                f"repository's checkpoints/{SHIPPED[name]}; pass a folder path instead"
            )
        return folder
    return Path(name_or_path)


def recorded_psnr(folder: str | os.PathLike) -> tuple[float, str] | None:
    """(PSNR, what it was measured on) that a tokenizer or pipeline folder records for its own evaluation set
    (`evaluation.json` or `tokenizer_eval.json` with a "psnr" key, beside the weights or at the pipeline root)."""
    folder = Path(folder)
    roots = [folder, folder.parent] if folder.name == "vae" else [folder, folder / "vae"]
    for root in roots:
        for name in ("evaluation.json", "tokenizer_eval.json"):
            if (root / name).is_file():
                record = json.loads((root / name).read_text())
                if isinstance(record.get("psnr"), (int, float)):
                    return float(record["psnr"]), str(record.get("dataset", f"the clips of {root / name}"))
    return None


def load_tokenizer(path: str | os.PathLike, **kwargs):
    """A HiVAE or VideoVAE3D from its save_pretrained folder, or from the `vae/` of a pipeline folder, in eval mode.

    `kwargs` go to `from_pretrained` (e.g. `torch_dtype`).
    """
    from . import TOKENIZERS

    folder = Path(path)
    if (folder / "vae" / "config.json").is_file():
        folder = folder / "vae"
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{folder}: no config.json; expected a tokenizer or pipeline folder")
    class_name = json.loads(config_file.read_text()).get("_class_name")
    classes = {cls.__name__: cls for cls in TOKENIZERS.values()}
    if class_name not in classes:
        raise ValueError(f"{config_file}: holds a {class_name!r}, expected one of {sorted(classes)}")
    return classes[class_name].from_pretrained(folder, **kwargs).eval()
