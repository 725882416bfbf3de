"""Synthetic moving shapes: the demo, test and CPU-training domain that needs no download.

Every clip is a shape of one colour following one motion (plus optional jitter, a second object and a background),
rendered analytically at any resolution and frame count, deterministic from `(seed, index)`. Each clip has a caption
("a red circle moving left") and a class id from a stable table of shape x colour x motion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

SHAPES = ("circle", "square", "triangle")
COLOURS = {  # name -> RGB in [0, 1]; far apart in hue so that a detector can tell them apart
    "red": (1.0, 0.15, 0.15),
    "green": (0.15, 0.9, 0.15),
    "blue": (0.2, 0.3, 1.0),
    "yellow": (1.0, 0.95, 0.1),
    "cyan": (0.1, 0.95, 0.95),
    "magenta": (1.0, 0.15, 1.0),
}
MOTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0), "still": (0.0, 0.0)}
BACKGROUNDS = ("black", "gray", "gradient", "noise")


def class_names() -> list[str]:
    """The stable class table: index -> "colour shape motion", ordered shape, then colour, then motion."""
    return [f"{c} {s} {m}" for s in SHAPES for c in COLOURS for m in MOTIONS]


def class_id(shape: str, colour: str, motion: str) -> int:
    """Class index of a (shape, colour, motion) triple."""
    values = {"shape": (shape, SHAPES), "colour": (colour, tuple(COLOURS)), "motion": (motion, tuple(MOTIONS))}
    for name, (value, table) in values.items():
        if value not in table:
            raise ValueError(f"unknown {name} {value!r}, expected one of {list(table)}")
    index = (SHAPES.index(shape) * len(COLOURS) + list(COLOURS).index(colour)) * len(MOTIONS)
    return index + list(MOTIONS).index(motion)


def class_attributes(label: int) -> tuple[str, str, str]:
    """(shape, colour, motion) of a class index."""
    if not 0 <= label < len(SHAPES) * len(COLOURS) * len(MOTIONS):
        raise ValueError(f"class id {label} out of range [0, {len(SHAPES) * len(COLOURS) * len(MOTIONS)})")
    label, motion = divmod(label, len(MOTIONS))
    shape, colour = divmod(label, len(COLOURS))
    return SHAPES[shape], list(COLOURS)[colour], list(MOTIONS)[motion]


def caption(shape: str, colour: str, motion: str) -> str:
    return f"a {colour} {shape} " + ("staying still" if motion == "still" else f"moving {motion}")


@dataclass
class ShapeTrack:
    """One object: attributes and its trajectory in normalised [0, 1] image coordinates."""

    shape: str
    colour: str
    motion: str
    radius: float  # fraction of the image size
    start: tuple[float, float]  # (x, y) centre at frame 0
    velocity: tuple[float, float]  # (dx, dy) per frame


def _signed_distance(shape: str, dx: np.ndarray, dy: np.ndarray, radius: float) -> np.ndarray:
    """Signed distance (in pixels, negative inside) from a shape centred at the origin."""
    if shape == "circle":
        return np.sqrt(dx**2 + dy**2) - radius
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) - 0.85 * radius
    # upward equilateral triangle inscribed in the circle of `radius`: three half-planes
    k = np.sqrt(3.0) / 2.0
    edges = [dy - 0.5 * radius, -k * dx - 0.5 * dy - 0.5 * radius, k * dx - 0.5 * dy - 0.5 * radius]
    return np.maximum.reduce(edges)


def render_track(track: ShapeTrack, num_frames: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Colour (3,) and coverage `(T, H, W)` in [0, 1] of one object (anti-aliased by a one-pixel ramp)."""
    scale = min(height, width)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    alpha = np.empty((num_frames, height, width), dtype=np.float32)
    for t in range(num_frames):
        cx = (track.start[0] + track.velocity[0] * t) * width
        cy = (track.start[1] + track.velocity[1] * t) * height
        alpha[t] = np.clip(0.5 - _signed_distance(track.shape, xs - cx, ys - cy, track.radius * scale), 0.0, 1.0)
    return np.asarray(COLOURS[track.colour], dtype=np.float32), alpha


def _background(kind: str, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """(3, H, W) in [0, 1]."""
    if kind == "black":
        return np.zeros((3, height, width), np.float32)
    if kind == "gray":
        return np.full((3, height, width), rng.uniform(0.15, 0.35), np.float32)
    if kind == "gradient":
        ramp = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, None, :] * np.ones((1, height, 1), np.float32)
        low, high = rng.uniform(0.0, 0.15, 3), rng.uniform(0.2, 0.4, 3)
        return (low[:, None, None] + (high - low)[:, None, None] * ramp).astype(np.float32)
    if kind == "noise":
        coarse = rng.uniform(0.0, 0.3, (3, max(1, height // 8), max(1, width // 8))).astype(np.float32)
        return np.kron(coarse, np.ones((8, 8), np.float32))[:, :height, :width]
    raise ValueError(f"unknown background {kind!r}, expected one of {BACKGROUNDS}")


class MovingShapes(Dataset):
    """Synthetic clips of moving shapes, deterministic from `(seed, index)`.

    Each item is a dict: `video` float `(3, T, H, W)` in [-1, 1], `text` caption, `label` class id, and the
    `shape`, `colour`, `motion` strings of the first (captioned) object.

    Args:
        num_samples: dataset length (items are generated on the fly).
        num_frames: frames per clip.
        size: int or (H, W).
        seed: base seed; item `i` depends only on `(seed, i)` and the options below.
        second_object_prob: chance of a second, uncaptioned-but-mentioned object.
        backgrounds: background kinds to draw from ("black", "gray", "gradient", "noise").
        radius_range: object radius as a fraction of the image size.
        speed_range: fraction of the free path travelled during the clip (1.0 = edge to edge).
        shapes, colours, motions: restrict the attributes (names from the class table).
    """

    def __init__(
        self,
        num_samples: int = 1000,
        num_frames: int = 16,
        size: int | tuple[int, int] = 32,
        seed: int = 0,
        second_object_prob: float = 0.0,
        backgrounds: tuple[str, ...] = ("black",),
        radius_range: tuple[float, float] = (0.14, 0.2),
        speed_range: tuple[float, float] = (0.6, 1.0),
        shapes: tuple[str, ...] = SHAPES,
        colours: tuple[str, ...] = tuple(COLOURS),
        motions: tuple[str, ...] = tuple(MOTIONS),
    ):
        from .transforms import parse_size

        self.height, self.width = parse_size(size)
        if min(self.height, self.width) < 8:
            raise ValueError(f"size must be at least 8 pixels, got {(self.height, self.width)}")
        if num_frames < 1 or num_samples < 1:
            raise ValueError(f"num_frames and num_samples must be >= 1, got {num_frames}, {num_samples}")
        for name, chosen, table in (
            ("shapes", shapes, SHAPES),
            ("colours", colours, COLOURS),
            ("motions", motions, MOTIONS),
            ("backgrounds", backgrounds, BACKGROUNDS),
        ):
            unknown = [c for c in chosen if c not in table] or ([] if chosen else ["<empty>"])
            if unknown:
                raise ValueError(f"{name}: unknown {unknown}, expected a non-empty subset of {list(table)}")
        self.num_samples, self.num_frames, self.seed = num_samples, num_frames, seed
        self.second_object_prob, self.backgrounds = second_object_prob, tuple(backgrounds)
        self.radius_range, self.speed_range = radius_range, speed_range
        self.shapes, self.colours, self.motions = tuple(shapes), tuple(colours), tuple(motions)

    def __len__(self) -> int:
        return self.num_samples

    def _track(self, rng: np.random.Generator, shape: str, colour: str, motion: str) -> ShapeTrack:
        radius = rng.uniform(*self.radius_range)
        direction = np.array(MOTIONS[motion])
        margin = radius + 0.5 / min(self.height, self.width)
        free = 1.0 - 2.0 * margin  # room for the centre along each axis
        travel = free * rng.uniform(*self.speed_range) if motion != "still" else 0.0
        start = []
        for axis in range(2):
            if direction[axis] == 0:
                start.append(rng.uniform(margin, 1.0 - margin))
            else:
                lo = margin if direction[axis] > 0 else margin + travel
                start.append(rng.uniform(lo, lo + free - travel))
        velocity = direction * travel / max(self.num_frames - 1, 1)
        return ShapeTrack(shape, colour, motion, radius, (start[0], start[1]), (velocity[0], velocity[1]))

    def sample_tracks(self, index: int) -> tuple[list[ShapeTrack], str]:
        """The objects and background of item `index`."""
        if not 0 <= index < self.num_samples:
            raise IndexError(f"index {index} out of range for {self.num_samples} samples")
        rng = np.random.default_rng([self.seed, index])
        pick = lambda options: options[int(rng.integers(len(options)))]  # noqa: E731
        tracks = [self._track(rng, pick(self.shapes), pick(self.colours), pick(self.motions))]
        if rng.uniform() < self.second_object_prob:
            colour = pick([c for c in self.colours if c != tracks[0].colour] or list(self.colours))
            tracks.append(self._track(rng, pick(self.shapes), colour, pick(self.motions)))
        return tracks, pick(self.backgrounds)

    def render(self, tracks: list[ShapeTrack], background: str = "black", seed: int = 0) -> torch.Tensor:
        """Render objects over a background -> `(3, T, H, W)` in [-1, 1]; later objects are drawn on top."""
        rng = np.random.default_rng(seed)
        frames = np.repeat(_background(background, rng, self.height, self.width)[:, None], self.num_frames, axis=1)
        for track in tracks:
            colour, alpha = render_track(track, self.num_frames, self.height, self.width)
            frames = frames * (1.0 - alpha[None]) + colour[:, None, None, None] * alpha[None]
        return torch.from_numpy(frames * 2.0 - 1.0).float()

    def __getitem__(self, index: int) -> dict:
        tracks, background = self.sample_tracks(index)
        first = tracks[0]
        text = caption(first.shape, first.colour, first.motion)
        if len(tracks) > 1:
            second = tracks[1]
            text += " and " + caption(second.shape, second.colour, second.motion)
        return {
            "video": self.render(tracks, background, seed=self.seed * 1_000_003 + index),
            "text": text,
            "label": class_id(first.shape, first.colour, first.motion),
            "shape": first.shape,
            "colour": first.colour,
            "motion": first.motion,
        }
