"""Synthetic moving shapes: the demo, test and CPU-training domain that needs no download.

Every clip is a shape of one colour following a slow *path* over the whole clip (left, right, up, down, still;
optionally curving gently and speeding up or slowing down, the label naming the net direction) with a fast *pattern*
on top (DESIGN.md section 6):
- `steady`: none;
- `blinking`: hidden on every other pair of frames (on, on, off, off) or every other frame, phase random;
- `pulsing`: its size swings by +-40% with a period of 4 frames, phase random;
- `shaking`: its centre jumps horizontally by +-5-8% of the frame width, alternating every frame or at random
  (two jumps each way in every 4 frames).
Clips are rendered analytically at any resolution and frame count, deterministic from `(seed, index)`, with a caption
("a red circle moving left while blinking"; steady clips: "a red circle moving left") and a class id from a
`ClassTable` of shape x colour x path x pattern. The defaults (steady only, straight paths) are the original domain,
whose table and ids are unchanged.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

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
PATTERNS = ("steady", "blinking", "pulsing", "shaking")
BACKGROUNDS = ("black", "gray", "gradient", "noise", "photo")
PULSE_AMPLITUDE = 0.4  # relative radius swing of `pulsing`
SHAKE_RANGE = (0.05, 0.08)  # horizontal jump of `shaking`, fraction of the frame width


def caption(shape: str, colour: str, motion: str, pattern: str = "steady") -> str:
    """ "a red circle moving left", with " while blinking" (pulsing, shaking) for a fast pattern."""
    text = f"a {colour} {shape} " + ("staying still" if motion == "still" else f"moving {motion}")
    return text if pattern == "steady" else f"{text} while {pattern}"


@dataclass(frozen=True)
class ClassTable:
    """Class ids of shape x colour x path x pattern (pattern fastest). Names: "red circle left" and, when the table
    has more than the steady pattern, "red circle left blinking". Stored with every checkpoint (`to_names`)."""

    shapes: tuple[str, ...] = SHAPES
    colours: tuple[str, ...] = tuple(COLOURS)
    motions: tuple[str, ...] = tuple(MOTIONS)
    patterns: tuple[str, ...] = ("steady",)

    def __len__(self) -> int:
        return len(self.shapes) * len(self.colours) * len(self.motions) * len(self.patterns)

    def factors(self) -> list[int]:
        """Sizes of the id's mixed-radix digits: [shapes, colours, motions, patterns], patterns fastest."""
        return [len(self.shapes), len(self.colours), len(self.motions), len(self.patterns)]

    def id(self, shape: str, colour: str, motion: str, pattern: str = "steady") -> int:
        values = {
            "shape": (shape, self.shapes),
            "colour": (colour, self.colours),
            "motion": (motion, self.motions),
            "pattern": (pattern, self.patterns),
        }
        index = 0
        for name, (value, table) in values.items():
            if value not in table:
                raise ValueError(f"unknown {name} {value!r}, expected one of {list(table)}")
            index = index * len(table) + table.index(value)
        return index

    def attributes(self, label: int) -> tuple[str, str, str, str]:
        """(shape, colour, motion, pattern) of a class id."""
        if not 0 <= label < len(self):
            raise ValueError(f"class id {label} out of range [0, {len(self)})")
        label, pattern = divmod(label, len(self.patterns))
        label, motion = divmod(label, len(self.motions))
        shape, colour = divmod(label, len(self.colours))
        return self.shapes[shape], self.colours[colour], self.motions[motion], self.patterns[pattern]

    def name(self, label: int) -> str:
        shape, colour, motion, pattern = self.attributes(label)
        return f"{colour} {shape} {motion}" + ("" if self.patterns == ("steady",) else f" {pattern}")

    def names(self) -> list[str]:
        return [self.name(i) for i in range(len(self))]

    def caption(self, label: int) -> str:
        return caption(*self.attributes(label))

    def parse(self, value: str) -> int:
        """A class id from an id ("42") or a name ("red circle left blinking")."""
        if value.isdigit():
            if int(value) >= len(self):
                raise ValueError(f"class id {value} out of range [0, {len(self)})")
            return int(value)
        names = self.names()
        if value not in names:
            raise ValueError(f"unknown class {value!r}: give an id in [0, {len(names)}) or a name like {names[-1]!r}")
        return names.index(value)

    @classmethod
    def from_names(cls, names: list[str]) -> "ClassTable":
        """The table whose `names()` are `names` (as stored in a checkpoint's config)."""
        for patterns in (("steady",), PATTERNS):
            table = cls(patterns=patterns)
            if table.names() == list(names):
                return table
        raise ValueError(f"class names ({len(names)}) match no shapes class table")


LEGACY_TABLE = ClassTable()  # the original steady-only domain: 90 classes
FULL_TABLE = ClassTable(patterns=PATTERNS)  # two timescales: 360 classes


def class_names() -> list[str]:
    """Names of the steady-only table (the original domain): "colour shape motion"."""
    return LEGACY_TABLE.names()


def class_id(shape: str, colour: str, motion: str) -> int:
    """Class index of a (shape, colour, motion) triple in the steady-only table."""
    return LEGACY_TABLE.id(shape, colour, motion)


def class_attributes(label: int) -> tuple[str, str, str]:
    """(shape, colour, motion) of a class index of the steady-only table."""
    return LEGACY_TABLE.attributes(label)[:3]


@dataclass
class ShapeTrack:
    """One object: attributes and, per frame, its centre (normalised [0, 1] x, y), radius (fraction of the image
    size) and visibility."""

    shape: str
    colour: str
    motion: str
    centres: np.ndarray  # (T, 2)
    radii: np.ndarray  # (T,)
    visible: np.ndarray  # (T,) bool
    pattern: str = "steady"
    details: dict = field(default_factory=dict)  # how the pattern and path were drawn (period, phase, ...)


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
    alpha = np.zeros((num_frames, height, width), dtype=np.float32)
    for t in range(num_frames):
        if not track.visible[t]:
            continue
        cx, cy = track.centres[t, 0] * width, track.centres[t, 1] * height
        distance = _signed_distance(track.shape, xs - cx, ys - cy, track.radii[t] * scale)
        alpha[t] = np.clip(0.5 - distance, 0.0, 1.0)
    return np.asarray(COLOURS[track.colour], dtype=np.float32), alpha


def pattern_frames(pattern: str, num_frames: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Per-frame (visible (T,), radius factor (T,), x offset in widths (T,), details) of a fast pattern."""
    t = np.arange(num_frames)
    visible, scale, offset = np.ones(num_frames, bool), np.ones(num_frames), np.zeros(num_frames)
    details: dict = {}
    if pattern == "blinking":
        period = int(rng.choice([2, 4]))  # on, off | on, on, off, off
        phase = int(rng.integers(period))
        visible = ((t + phase) % period) < period // 2
        details = {"period": period, "phase": phase}
    elif pattern == "pulsing":
        phase = float(rng.uniform(0, 2 * np.pi))
        scale = 1.0 + PULSE_AMPLITUDE * np.sin(2 * np.pi * t / 4 + phase)
        details = {"period": 4, "phase": phase}
    elif pattern == "shaking":
        amplitude = float(rng.uniform(*SHAKE_RANGE))
        if rng.uniform() < 0.5:
            signs = np.where((t + int(rng.integers(2))) % 2 == 0, 1.0, -1.0)  # alternating every frame
            details = {"amplitude": amplitude, "mode": "alternating"}
        else:  # random jumps, balanced within every 4 frames (two each way) so that they stay a fast pattern
            blocks = [rng.permutation([1.0, 1.0, -1.0, -1.0]) for _ in range(-(-num_frames // 4))]
            signs = np.concatenate(blocks)[:num_frames]
            details = {"amplitude": amplitude, "mode": "random"}
        offset = amplitude * signs
    elif pattern != "steady":
        raise ValueError(f"unknown pattern {pattern!r}, expected one of {PATTERNS}")
    return visible, scale, offset, details


@functools.lru_cache(maxsize=1)
def _small_photos() -> tuple[np.ndarray, ...]:
    """The package photos of `hivae.data.natural`, shrunk to 192 px on the shorter side: (3, H, W) float32 in [0, 1]."""
    from .natural import _photo_tensors

    out = []
    for photo in _photo_tensors().values():
        scale = 192 / min(photo.shape[-2:])
        small = torch.nn.functional.interpolate(photo[None], scale_factor=scale, mode="bilinear", antialias=True)
        out.append(small[0].numpy())
    return tuple(out)


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
    if kind == "photo":  # a random crop of a package photo, dimmed to [0, 0.45] so that the objects stay in front
        photos = _small_photos()
        photo = photos[rng.integers(len(photos))]
        extent = int(min(photo.shape[1:]) * rng.uniform(0.3, 1.0))
        top, left = (int(rng.integers(0, photo.shape[i] - extent + 1)) for i in (1, 2))
        crop = torch.from_numpy(photo[None, :, top : top + extent, left : left + extent])
        crop = torch.nn.functional.interpolate(crop, size=(height, width), mode="bilinear", antialias=True)[0]
        return (crop.numpy() * 0.45).astype(np.float32)
    raise ValueError(f"unknown background {kind!r}, expected one of {BACKGROUNDS}")


class MovingShapes(Dataset):
    """Synthetic clips of moving shapes, deterministic from `(seed, index)`.

    Each item is a dict: `video` float `(3, T, H, W)` in [-1, 1], `text` caption, `label` class id (in `table`), and
    the `shape`, `colour`, `motion`, `pattern` strings of the first (captioned) object.

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
        patterns: fast patterns to draw from (`PATTERNS`); ("steady",) is the original domain.
        path_variation: 0 = straight paths at constant speed; up to 1 = gentle curves (a bow of up to 12% of the
            free path) and speeding up or slowing down (progress u**g, g in [1/2, 2]).
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
        patterns: tuple[str, ...] = ("steady",),
        path_variation: float = 0.0,
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
            ("patterns", patterns, PATTERNS),
            ("backgrounds", backgrounds, BACKGROUNDS),
        ):
            unknown = [c for c in chosen if c not in table] or ([] if chosen else ["<empty>"])
            if unknown:
                raise ValueError(f"{name}: unknown {unknown}, expected a non-empty subset of {list(table)}")
        if not 0.0 <= path_variation <= 1.0:
            raise ValueError(f"path_variation must be in [0, 1], got {path_variation}")
        self.num_samples, self.num_frames, self.seed = num_samples, num_frames, seed
        self.second_object_prob, self.backgrounds = second_object_prob, tuple(backgrounds)
        self.radius_range, self.speed_range = radius_range, speed_range
        self.shapes, self.colours, self.motions = tuple(shapes), tuple(colours), tuple(motions)
        self.patterns, self.path_variation = tuple(patterns), path_variation
        # labels live in the full attribute table of the chosen patterns, whatever subset is drawn
        self.table = ClassTable(patterns=tuple(p for p in PATTERNS if p in self.patterns))

    def __len__(self) -> int:
        return self.num_samples

    def _track(
        self, rng: np.random.Generator, shape: str, colour: str, motion: str, pattern: str, pattern_rng=None
    ) -> ShapeTrack:
        """`pattern_rng` draws the pattern's phase etc. apart from `rng`, so that one item rendered with another
        pattern keeps its shape, colour and path."""
        frames = self.num_frames
        radius = rng.uniform(*self.radius_range)
        visible, scale, offset, details = pattern_frames(pattern, frames, pattern_rng or rng)
        direction = np.array(MOTIONS[motion])
        size = min(self.height, self.width)
        # keep the largest extent of the object inside the frame: in the two-timescale domain the margin allows for
        # any pattern, so that one item rendered with another pattern keeps its path
        if self.patterns != ("steady",) or self.path_variation > 0:
            margin_x = radius * (1 + PULSE_AMPLITUDE) + SHAKE_RANGE[1] + 0.5 / size
            margin_y = radius * (1 + PULSE_AMPLITUDE) + 0.5 / size
        else:
            margin_x = margin_y = radius + 0.5 / size
        margins = np.array([margin_x, margin_y])
        free = 1.0 - 2.0 * margins  # room for the centre along each axis
        axis = int(np.argmax(np.abs(direction))) if motion != "still" else 0
        travel = free[axis] * rng.uniform(*self.speed_range) if motion != "still" else 0.0
        u = np.linspace(0.0, 1.0, frames) if frames > 1 else np.zeros(1)
        gamma, bow = 1.0, 0.0
        if self.path_variation > 0 and motion != "still":
            gamma = float(np.exp(rng.uniform(-1, 1) * self.path_variation * np.log(2.0)))  # speeding up / slowing
            bow = float(rng.uniform(-1, 1) * 0.12 * self.path_variation)
        progress = u**gamma
        start = np.zeros(2)
        for a in range(2):
            if direction[a] == 0:
                lo, hi = margins[a], 1.0 - margins[a]
                if a != axis and motion != "still":  # leave room for the bow across the path
                    extent = abs(bow) * free[a]
                    lo, hi = (lo + extent, hi) if bow < 0 else (lo, hi - extent)
                start[a] = rng.uniform(lo, max(lo, hi))
            else:
                lo = margins[a] if direction[a] > 0 else margins[a] + travel
                start[a] = rng.uniform(lo, lo + free[a] - travel)
        centres = start[None] + direction[None] * travel * progress[:, None]
        if motion != "still":
            across = 1 - axis
            centres[:, across] += bow * free[across] * np.sin(np.pi * u)
        centres[:, 0] += offset
        details |= {"gamma": gamma, "bow": bow}
        return ShapeTrack(shape, colour, motion, centres, radius * scale, visible, pattern, details)

    def sample_tracks(self, index: int, pattern_from: int | None = None) -> tuple[list[ShapeTrack], str]:
        """The objects and background of item `index`; with `pattern_from`, its first object carries the fast pattern
        (kind, phase, amplitude) of item `pattern_from` instead of its own, with the same shape, colour and path."""
        if not 0 <= index < self.num_samples:
            raise IndexError(f"index {index} out of range for {self.num_samples} samples")
        rng = np.random.default_rng([self.seed, index])
        pick = lambda options: options[int(rng.integers(len(options)))]  # noqa: E731
        first = [pick(self.shapes), pick(self.colours), pick(self.motions)]
        pattern = pick(self.patterns) if len(self.patterns) > 1 else self.patterns[0]
        source = index
        if pattern_from is not None:
            pattern, source = self.sample_tracks(pattern_from)[0][0].pattern, pattern_from
        tracks = [self._track(rng, *first, pattern, np.random.default_rng([self.seed, source, 1]))]
        if rng.uniform() < self.second_object_prob:
            colour = pick([c for c in self.colours if c != tracks[0].colour] or list(self.colours))
            tracks.append(self._track(rng, pick(self.shapes), colour, pick(self.motions), "steady"))
        return tracks, pick(self.backgrounds)

    def background(self, index: int) -> torch.Tensor:
        """The background of item `index` alone, (3, H, W) in [-1, 1] (for reading its objects over a photo)."""
        _, kind = self.sample_tracks(index)
        return self.render([], kind, seed=self.seed * 1_000_003 + index)[:, 0]

    def render(self, tracks: list[ShapeTrack], background: str = "black", seed: int = 0) -> torch.Tensor:
        """Render objects over a background -> `(3, T, H, W)` in [-1, 1]; later objects are drawn on top."""
        rng = np.random.default_rng(seed)
        frames = np.repeat(_background(background, rng, self.height, self.width)[:, None], self.num_frames, axis=1)
        for track in tracks:
            colour, alpha = render_track(track, self.num_frames, self.height, self.width)
            frames = frames * (1.0 - alpha[None]) + colour[:, None, None, None] * alpha[None]
        return torch.from_numpy(frames * 2.0 - 1.0).float()

    def pattern_swap(self, index: int, pattern_from: int) -> torch.Tensor:
        """Item `index` rendered with the fast pattern of item `pattern_from` -> `(3, T, H, W)`."""
        tracks, background = self.sample_tracks(index, pattern_from)
        return self.render(tracks, background, seed=self.seed * 1_000_003 + index)

    def __getitem__(self, index: int) -> dict:
        tracks, background = self.sample_tracks(index)
        first = tracks[0]
        text = caption(first.shape, first.colour, first.motion, first.pattern)
        if len(tracks) > 1:
            second = tracks[1]
            text += " and " + caption(second.shape, second.colour, second.motion)
        return {
            "video": self.render(tracks, background, seed=self.seed * 1_000_003 + index),
            "text": text,
            "label": self.table.id(first.shape, first.colour, first.motion, first.pattern),
            "shape": first.shape,
            "colour": first.colour,
            "motion": first.motion,
            "pattern": first.pattern,
        }


def render_clip(
    shape: str, colour: str, motion: str, pattern: str = "steady", num_frames: int = 16, size: int = 64, seed: int = 0
) -> torch.Tensor:
    """One two-timescale clip (3, T, H, W) in [-1, 1] with the given attributes (curved, speed-varying path)."""
    data = MovingShapes(
        1,
        num_frames,
        size,
        seed=seed,
        shapes=(shape,),
        colours=(colour,),
        motions=(motion,),
        patterns=(pattern,),
        path_variation=1.0,
    )
    return data[0]["video"]


class PatternSwapPairs(Dataset):
    """Items of a `MovingShapes` with a partner: `partner_video` (another item) and `swap_video` (this item's shape,
    colour and path with the partner's fast pattern): the target of decode(structure of this, dynamics of partner)."""

    def __init__(self, shapes: MovingShapes):
        if shapes.second_object_prob > 0:
            raise ValueError("pattern swap pairs need one object per clip (second_object_prob=0)")
        self.shapes = shapes

    def __len__(self) -> int:
        return len(self.shapes)

    def __getitem__(self, index: int) -> dict:
        partner = int(np.random.default_rng([self.shapes.seed, index, 2]).integers(len(self.shapes)))
        return self.shapes[index] | {
            "partner_video": self.shapes[partner]["video"],
            "swap_video": self.shapes.pattern_swap(index, partner),
        }
