"""Analytic attribute detector for moving-shapes clips, used to score generated videos against their prompts.

For a clip on a plain background: the foreground is every pixel far from the clip's median colour; its mean colour
names the colour (nearest entry of the class table), its fill ratio inside the bounding box names the shape
(square ~1.0, circle ~pi/4, triangle ~0.5), and its centroid path names the motion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data.shapes import COLOURS, MOTIONS


@dataclass
class Detection:
    shape: str | None
    colour: str | None
    motion: str | None
    area: float  # mean foreground pixels per frame


def detect_attributes(video: torch.Tensor, threshold: float = 0.35, still_fraction: float = 0.06) -> Detection:
    """video: (3, T, H, W) in [-1, 1] -> detected shape, colour and motion (None where nothing is found)."""
    if video.ndim != 4 or video.shape[0] != 3:
        raise ValueError(f"video must be (3, T, H, W), got {tuple(video.shape)}")
    x = ((video.detach().float().cpu().clamp(-1, 1) + 1) / 2).numpy()  # [0, 1]
    _, frames, height, width = x.shape
    background = np.median(x.reshape(3, -1), axis=1)[:, None, None, None]
    mask = np.abs(x - background).max(axis=0) > threshold  # (T, H, W)
    areas = mask.reshape(frames, -1).sum(1)
    if (areas > 0).sum() < max(2, frames // 2):
        return Detection(None, None, None, float(areas.mean()))
    colour_mean = x[:, mask].mean(axis=1)
    names = list(COLOURS)
    colour = names[int(np.argmin([np.linalg.norm(colour_mean - np.array(COLOURS[n])) for n in names]))]

    ratios, centroids = [], []
    ys, xs = np.mgrid[0:height, 0:width]
    for t in range(frames):
        m = mask[t]
        if m.sum() < 4:
            continue
        rows, cols = np.where(m)
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        ratios.append(m.sum() / box)
        centroids.append((t, xs[m].mean(), ys[m].mean()))
    ratio = float(np.median(ratios))
    shape = "square" if ratio > 0.9 else "circle" if ratio > 0.64 else "triangle"

    track = np.array(centroids)
    k = max(1, len(track) // 4)
    dx = track[-k:, 1].mean() - track[:k, 1].mean()
    dy = track[-k:, 2].mean() - track[:k, 2].mean()
    if max(abs(dx), abs(dy)) < still_fraction * min(height, width):
        motion = "still"
    elif abs(dx) >= abs(dy):
        motion = "right" if dx > 0 else "left"
    else:
        motion = "down" if dy > 0 else "up"
    assert motion in MOTIONS
    return Detection(shape, colour, motion, float(areas.mean()))


def attribute_accuracy(videos: torch.Tensor, targets: list[tuple[str, str, str]]) -> dict[str, float]:
    """Fraction of clips (N, 3, T, H, W) whose detected shape / colour / motion / all three match `targets`."""
    if len(videos) != len(targets):
        raise ValueError(f"{len(videos)} videos but {len(targets)} targets")
    hits = {"shape": 0, "colour": 0, "motion": 0, "all": 0}
    for video, (shape, colour, motion) in zip(videos, targets):
        found = detect_attributes(video)
        ok = {"shape": found.shape == shape, "colour": found.colour == colour, "motion": found.motion == motion}
        for key, value in ok.items():
            hits[key] += int(value)
        hits["all"] += int(all(ok.values()))
    return {key: value / len(targets) for key, value in hits.items()}
