"""Video data: file reading/writing, folder datasets, the synthetic moving-shapes domain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from torch.utils.data import Dataset

from .folder import SPLITS, HFVideoDataset, VideoFolderDataset, collate_clips, eval_files, read_metadata, split_indices
from .shapes import (
    COLOURS,
    FULL_TABLE,
    LEGACY_TABLE,
    MOTIONS,
    PATTERNS,
    SHAPES,
    ClassTable,
    MovingShapes,
    PatternSwapPairs,
    caption,
    class_attributes,
    class_id,
    class_names,
    render_clip,
)
from .transforms import fit_to_grid, frames_to_tensor, grid_size, resize_center_crop, tensor_to_frames
from .video_io import VideoInfo, VideoReadError, clip_indices, read_video, video_info, write_video

__all__ = [
    "COLOURS",
    "FULL_TABLE",
    "LEGACY_TABLE",
    "PATTERNS",
    "ClassTable",
    "MOTIONS",
    "SHAPES",
    "SPLITS",
    "DataConfig",
    "HFVideoDataset",
    "MovingShapes",
    "render_clip",
    "PatternSwapPairs",
    "VideoFolderDataset",
    "VideoInfo",
    "VideoReadError",
    "build_dataset",
    "caption",
    "class_attributes",
    "class_id",
    "class_names",
    "clip_indices",
    "eval_files",
    "collate_clips",
    "fit_to_grid",
    "frames_to_tensor",
    "grid_size",
    "read_metadata",
    "read_video",
    "resize_center_crop",
    "split_indices",
    "tensor_to_frames",
    "video_info",
    "write_video",
]


@dataclass
class DataConfig:
    source: Literal["shapes", "folder", "hf"] = "shapes"  # synthetic shapes, a videofolder, or a HF dataset on disk
    root: Optional[str] = None  # folder (videofolder) or `datasets.save_to_disk` directory (hf)
    num_frames: int = 16  # frames per clip
    size: int = 32  # square clip side in pixels
    stride: int = 1  # frame stride when sampling from files
    sampling: Literal["center", "random"] = "random"  # clip start inside a longer video
    strict: bool = False  # raise on a bad video instead of skipping it with a warning
    num_samples: int = 20000  # shapes: dataset length
    seed: int = 0  # shapes: base seed (items depend on (seed, index) only)
    second_object_prob: float = 0.0  # shapes: chance of a second object
    backgrounds: tuple[str, ...] = ("black",)  # shapes: background kinds
    patterns: tuple[str, ...] = ("steady",)  # shapes: fast patterns (steady, blinking, pulsing, shaking)
    path_variation: float = 0.0  # shapes: 0 = straight constant-speed paths, 1 = gentle curves and speed changes
    eval_fraction: float = 0.1  # folder/hf: share of video files held out for evaluation (split by file)
    swap_pairs: bool = False  # shapes, training split: each item also brings a partner and itself with the partner's
    # fast pattern (`PatternSwapPairs`), for the tokenizer's `loss.swap_weight`


# seed offset of the held-out shapes clips: another (seed, index) stream than training's
EVAL_SEED_OFFSET = 1


def build_dataset(config: DataConfig, split: str = "train", **overrides) -> Dataset:
    """Dataset from a `DataConfig`; `overrides` replace its fields (e.g. `sampling="center"`).

    split: "train" or "eval". Files (folder / hf) are split by `eval_files`, so no evaluation clip comes from a
    training video; shapes clips of "eval" come from seed + EVAL_SEED_OFFSET. "all" uses every file.
    """
    from dataclasses import replace

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    config = replace(config, **overrides)
    clip_options = dict(
        num_frames=config.num_frames,
        size=config.size,
        stride=config.stride,
        sampling=config.sampling,
        strict=config.strict,
    )
    if config.source == "shapes":
        shapes = MovingShapes(
            num_samples=config.num_samples,
            num_frames=config.num_frames,
            size=config.size,
            seed=config.seed + (EVAL_SEED_OFFSET if split == "eval" else 0),
            second_object_prob=config.second_object_prob,
            backgrounds=config.backgrounds,
            patterns=config.patterns,
            path_variation=config.path_variation,
        )
        return PatternSwapPairs(shapes) if config.swap_pairs and split == "train" else shapes
    if config.swap_pairs:
        raise ValueError("data.swap_pairs needs data.source=shapes (pairs are rendered)")
    if config.root is None:
        raise ValueError(f"data.root is required for data.source={config.source!r}")
    split_options = dict(split=split, eval_fraction=config.eval_fraction)
    if config.source == "folder":
        return VideoFolderDataset(config.root, **split_options, **clip_options)
    import datasets

    return HFVideoDataset(datasets.load_from_disk(config.root), root=config.root, **split_options, **clip_options)
