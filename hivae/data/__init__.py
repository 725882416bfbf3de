"""Video data: file reading/writing, folder datasets, the synthetic moving-shapes domain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from torch.utils.data import Dataset

from .folder import HFVideoDataset, VideoFolderDataset, collate_clips, read_metadata
from .shapes import COLOURS, MOTIONS, SHAPES, MovingShapes, caption, class_attributes, class_id, class_names
from .transforms import frames_to_tensor, resize_center_crop, tensor_to_frames
from .video_io import VideoInfo, VideoReadError, clip_indices, read_video, video_info, write_video

__all__ = [
    "COLOURS",
    "MOTIONS",
    "SHAPES",
    "DataConfig",
    "HFVideoDataset",
    "MovingShapes",
    "VideoFolderDataset",
    "VideoInfo",
    "VideoReadError",
    "build_dataset",
    "caption",
    "class_attributes",
    "class_id",
    "class_names",
    "clip_indices",
    "collate_clips",
    "frames_to_tensor",
    "read_metadata",
    "read_video",
    "resize_center_crop",
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


def build_dataset(config: DataConfig, **overrides) -> Dataset:
    """Dataset from a `DataConfig`; `overrides` replace its fields (e.g. `seed=1` for a held-out split)."""
    from dataclasses import replace

    config = replace(config, **overrides)
    clip_options = dict(
        num_frames=config.num_frames,
        size=config.size,
        stride=config.stride,
        sampling=config.sampling,
        strict=config.strict,
    )
    if config.source == "shapes":
        return MovingShapes(
            num_samples=config.num_samples,
            num_frames=config.num_frames,
            size=config.size,
            seed=config.seed,
            second_object_prob=config.second_object_prob,
            backgrounds=config.backgrounds,
        )
    if config.root is None:
        raise ValueError(f"data.root is required for data.source={config.source!r}")
    if config.source == "folder":
        return VideoFolderDataset(config.root, **clip_options)
    import datasets

    return HFVideoDataset(datasets.load_from_disk(config.root), root=config.root, **clip_options)
