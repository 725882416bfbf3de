"""Analytic attribute detector for moving-shapes clips: scores generated and reconstructed videos against their labels.

For a clip of one object on a plain background, the foreground is every pixel far from the clip's median colour:
- colour: the mean foreground colour, nearest entry of the class table;
- shape: the median fill ratio of the foreground inside its bounding box (square ~1.0, circle ~pi/4, triangle ~0.5);
- path: the net displacement of the centroid (first vs last quarter of the visible frames);
- pattern: `blinking` if the object is missing in a quarter of the frames or more, else `shaking` if the horizontal
  centroid jumps between consecutive frames (mean |second difference| above 4% of the width), else `pulsing` if its
  area swings by 2x or more, else `steady`.
It refuses what is not one sharp object: two or more objects in most frames (every attribute None), or a blurred one
(shape and pattern None: its rim of half-way pixels is 1.5 or more pixels wide). The thresholds are fixed: tested on
rendered clips at 32 and 64 px and on negatives (tests/test_detector.py), not tuned on any model's output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from .data.shapes import COLOURS, MOTIONS, PATTERNS

ATTRIBUTES = ("shape", "colour", "motion", "pattern")


@dataclass
class Detection:
    shape: str | None
    colour: str | None
    motion: str | None
    pattern: str | None
    area: float  # mean foreground pixels per frame
    reason: str = ""  # why an attribute is None ("empty", "several objects", "blurred")

    def as_tuple(self) -> tuple[str | None, ...]:
        return self.shape, self.colour, self.motion, self.pattern


def _read_pattern(areas: np.ndarray, track: np.ndarray, width: int) -> str:
    """Fast pattern from per-frame foreground areas (T,) and the centroid track (N, 3) of (frame, x, y)."""
    typical = np.median(areas[areas > 0])
    present = areas > 0.2 * typical
    if (~present).sum() >= max(2, len(areas) // 4):
        return "blinking"
    t, xc = track[:, 0], track[:, 1]
    triples = [i for i in range(len(track) - 2) if t[i + 1] == t[i] + 1 and t[i + 2] == t[i] + 2]
    if triples and np.mean([abs(xc[i + 2] - 2 * xc[i + 1] + xc[i]) for i in triples]) > 0.04 * width:
        return "shaking"
    swing = areas[present]
    if swing.max() / max(swing.min(), 1.0) >= 2.0:
        return "pulsing"
    return "steady"


def detect_attributes(
    video: torch.Tensor,
    threshold: float = 0.35,
    still_fraction: float = 0.12,
    background: torch.Tensor | None = None,
) -> Detection:
    """video: (3, T, H, W) in [-1, 1] -> detected shape, colour, motion and pattern (None where not readable).

    `background` (3, H, W) in [-1, 1]: the clip's true background (e.g. a photo, `MovingShapes.background`); the
    object is what differs from it. Without it, the clip's median colour is the background.
    """
    if video.ndim != 4 or video.shape[0] != 3:
        raise ValueError(f"video must be (3, T, H, W), got {tuple(video.shape)}")
    x = ((video.detach().float().cpu().clamp(-1, 1) + 1) / 2).numpy()  # [0, 1]
    _, frames, height, width = x.shape
    if background is not None:
        if tuple(background.shape) != (3, height, width):
            raise ValueError(f"background must be (3, {height}, {width}), got {tuple(background.shape)}")
        background = ((background.detach().float().cpu().clamp(-1, 1) + 1) / 2).numpy()[:, None]
    else:
        background = np.median(x.reshape(3, -1), axis=1)[:, None, None, None]
    distance = np.abs(x - background).max(axis=0)  # (T, H, W)
    mask = distance > threshold
    areas = mask.reshape(frames, -1).sum(1).astype(float)
    if (areas >= 4).sum() < max(2, frames // 2):
        return Detection(None, None, None, None, float(areas.mean()), "empty")
    objects = [ndimage.label(mask[t])[1] for t in range(frames) if areas[t] >= 4]
    if np.median(objects) > 1:
        return Detection(None, None, None, None, float(areas.mean()), "several objects")
    # sharpness: the band of half-way pixels per boundary pixel; a rendered object has a one-pixel anti-aliased rim
    # (<= 1.2 on rendered 32- and 64-px clips), a blur of 1 px sigma already makes it >= 1.7
    peak = np.percentile(distance[mask], 90)
    band = ((distance > 0.1 * peak) & (distance < 0.75 * peak)).sum()
    boundary = (mask & ~ndimage.binary_erosion(mask, structure=np.ones((1, 3, 3)))).sum()
    rim_width = band / max(boundary, 1)
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
    track = np.array(centroids)
    blurred = rim_width > 1.5
    ratio = float(np.median(ratios))
    shape = None if blurred else "square" if ratio > 0.9 else "circle" if ratio > 0.64 else "triangle"
    pattern = None if blurred else _read_pattern(areas, track, width)

    k = max(1, len(track) // 4)
    dx = track[-k:, 1].mean() - track[:k, 1].mean()
    dy = track[-k:, 2].mean() - track[:k, 2].mean()
    if max(abs(dx), abs(dy)) < still_fraction * min(height, width):
        motion = "still"
    elif abs(dx) >= abs(dy):
        motion = "right" if dx > 0 else "left"
    else:
        motion = "down" if dy > 0 else "up"
    assert motion in MOTIONS and (pattern is None or pattern in PATTERNS)
    return Detection(shape, colour, motion, pattern, float(areas.mean()), "blurred" if blurred else "")


def attribute_accuracy(
    videos: torch.Tensor, targets: list[tuple[str, ...]], backgrounds: torch.Tensor | None = None
) -> dict[str, float]:
    """Fraction of clips (N, 3, T, H, W) whose detected attributes match `targets`: (shape, colour, motion) or
    (shape, colour, motion, pattern) tuples; "all" = every given attribute right. `backgrounds` (N, 3, H, W): each
    clip's true background (see `detect_attributes`)."""
    if len(videos) != len(targets):
        raise ValueError(f"{len(videos)} videos but {len(targets)} targets")
    keys = ATTRIBUTES[: len(targets[0])] if targets else ATTRIBUTES
    hits = {key: 0 for key in (*keys, "all")}
    for index, (video, target) in enumerate(zip(videos, targets)):
        found = detect_attributes(video, background=None if backgrounds is None else backgrounds[index]).as_tuple()
        ok = [found[i] == target[i] for i in range(len(keys))]
        for key, value in zip(keys, ok):
            hits[key] += int(value)
        hits["all"] += int(all(ok))
    return {key: value / len(targets) for key, value in hits.items()}


def confusion_matrices(videos: torch.Tensor, targets: list[tuple[str, str, str, str]]) -> dict[str, dict]:
    """Per attribute: {true value: {detected value (or "none"): count}} over clips (N, 3, T, H, W)."""
    tables: dict[str, dict] = {key: {} for key in ATTRIBUTES}
    for video, target in zip(videos, targets):
        found = detect_attributes(video).as_tuple()
        for key, true, seen in zip(ATTRIBUTES, target, found):
            row = tables[key].setdefault(true, {})
            row[seen or "none"] = row.get(seen or "none", 0) + 1
    return tables


def clip_statistics(video: torch.Tensor, threshold: float = 0.35) -> dict[str, float] | None:
    """What varies between clips of one class: start position (x, y of the first visible centroid, in [0, 1]), size
    (median foreground area as a fraction of the frame) and pattern phase (blinking: first hidden frame mod 4;
    pulsing: frame of the largest area among the first four; shaking: 1 if the first jump goes right, else 0; steady:
    None). None when the clip has no readable object."""
    found = detect_attributes(video, threshold)
    if found.shape is None or found.pattern is None:
        return None
    x = ((video.detach().float().cpu().clamp(-1, 1) + 1) / 2).numpy()
    _, frames, height, width = x.shape
    background = np.median(x.reshape(3, -1), axis=1)[:, None, None, None]
    mask = np.abs(x - background).max(axis=0) > threshold
    areas = mask.reshape(frames, -1).sum(1)
    visible = np.flatnonzero(areas >= 4)
    ys, xs = np.mgrid[0:height, 0:width]
    first = mask[visible[0]]
    stats = {
        "start_x": float(xs[first].mean() / width),
        "start_y": float(ys[first].mean() / height),
        "size": float(np.median(areas[visible]) / (height * width)),
        "phase": None,
    }
    if found.pattern == "blinking":
        hidden = np.flatnonzero(areas < 0.2 * np.median(areas[visible]))
        stats["phase"] = float(hidden[0] % 4) if len(hidden) else None
    elif found.pattern == "pulsing":
        stats["phase"] = float(np.argmax(areas[:4]))
    elif found.pattern == "shaking" and frames > 1:
        centre = [xs[mask[t]].mean() for t in range(2)]
        stats["phase"] = float(centre[1] > centre[0])
    return stats
