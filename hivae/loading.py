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
