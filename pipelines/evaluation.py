"""Prompt accuracy of a shapes pipeline: generate clips for classes of its table and read them with the detector.

    from pipelines.evaluation import class_table, generation_accuracy
    accuracy = generation_accuracy(pipe, labels=range(0, 360, 6), condition="text")   # {"shape": ..., "all": ...}
"""

from __future__ import annotations

from typing import Iterable, Literal

import torch

from .pipeline_hivae_video import frames_to_video


def class_table(pipe):
    """The pipeline's class table: the one stored with its DiT, or the steady-only table of older checkpoints."""
    from hivae.data import LEGACY_TABLE, ClassTable

    names = pipe.transformer.config.get("class_names")
    return ClassTable.from_names(names) if names else LEGACY_TABLE


def spread_labels(num_classes: int, num_prompts: int) -> list[int]:
    """`num_prompts` class ids spread evenly over a table of `num_classes` (first and last included)."""
    if not 1 <= num_prompts <= num_classes:
        raise ValueError(f"num_prompts must be in [1, {num_classes}], got {num_prompts}")
    return torch.linspace(0, num_classes - 1, num_prompts).round().long().tolist()


@torch.no_grad()
def generation_accuracy(
    pipe,
    labels: Iterable[int],
    condition: Literal["text", "class"] = "text",
    per_prompt: int = 2,
    num_inference_steps: int = 20,
    guidance_scale: float = 3.0,
    seed: int = 0,
    batch_size: int = 32,
    decoder_steps: int | None = None,
) -> dict[str, float]:
    """Fraction of generated clips whose detected (shape, colour, path, pattern) match their class, per attribute
    and "all"; `per_prompt` clips per class, conditioned on its caption ("text") or its id ("class"), all noise drawn
    from one generator seeded with `seed` (the same call gives the same clips)."""
    from hivae.shape_detector import attribute_accuracy

    if condition not in ("text", "class"):
        raise ValueError(f"condition must be 'text' or 'class', got {condition!r}")
    table, labels = class_table(pipe), list(labels)
    generator = torch.Generator().manual_seed(seed)  # CPU noise, as the CLI draws it
    per_call = max(1, batch_size // per_prompt)
    videos, targets = [], []
    for start in range(0, len(labels), per_call):
        chunk = labels[start : start + per_call]
        given = {"prompt": [table.caption(c) for c in chunk]} if condition == "text" else {"class_labels": chunk}
        frames = pipe(
            **given,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            num_videos_per_prompt=per_prompt,
            generator=generator,
            decoder_steps=decoder_steps,
            output_type="pt",
        ).frames
        videos.append(frames_to_video(frames).float().cpu())
        targets += [table.attributes(c) for c in chunk for _ in range(per_prompt)]
    return attribute_accuracy(torch.cat(videos), targets)
