"""Video datasets in the Hugging Face `videofolder` shape, and an adapter for `datasets.Dataset`.

A folder holds videos and a `metadata.jsonl` (or `metadata.csv`) whose rows have `file_name` and `text` and/or
`label`. Without metadata every video file in the folder is used, unlabelled.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Literal, Sequence

import torch
from torch.utils.data import Dataset

from .video_io import VIDEO_EXTENSIONS, VideoReadError, read_video

logger = logging.getLogger(__name__)


def read_metadata(root: Path) -> list[dict[str, Any]]:
    """Rows of `root/metadata.jsonl` or `root/metadata.csv`; each must have `file_name` and `text` or `label`."""
    jsonl, table = root / "metadata.jsonl", root / "metadata.csv"
    if jsonl.is_file():
        rows = []
        for line_no, line in enumerate(jsonl.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{jsonl}:{line_no}: not valid JSON ({err.msg})")
            if not isinstance(row, dict):
                raise ValueError(f"{jsonl}:{line_no}: expected a JSON object, got {type(row).__name__}")
            rows.append(row)
        source = jsonl
    elif table.is_file():
        with table.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        source = table
    else:
        return [{"file_name": p.name} for p in sorted(root.iterdir()) if p.suffix.lower() in VIDEO_EXTENSIONS]
    for row_no, row in enumerate(rows, 1):
        if "file_name" not in row:
            raise ValueError(f"{source}: row {row_no} has no 'file_name' column (columns: {sorted(row)})")
        if "text" not in row and "label" not in row:
            raise ValueError(f"{source}: row {row_no} needs a 'text' and/or 'label' column (columns: {sorted(row)})")
        if "label" in row:
            try:
                row["label"] = int(row["label"])
            except (TypeError, ValueError):
                raise ValueError(f"{source}: row {row_no} label {row['label']!r} is not an integer")
    return rows


SPLITS = ("train", "eval", "all")


def eval_files(file_names: Sequence[str], eval_fraction: float) -> set[str]:
    """The video files held out for evaluation: about `eval_fraction` of the distinct files, chosen by a hash of the
    file name (stable when files are added), at least one when 0 < eval_fraction and there are two or more files.
    All clips of a file land on the same side, so evaluation never sees a training video."""
    if not 0.0 <= eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
    names = sorted(set(file_names))
    if eval_fraction == 0 or len(names) < 2:
        return set()
    score = {n: int(hashlib.sha1(n.encode()).hexdigest()[:8], 16) / 16**8 for n in names}
    held = {n for n in names if score[n] < eval_fraction}
    if not held:
        held = {min(names, key=score.get)}
    if len(held) == len(names):
        held.discard(max(held, key=score.get))
    return held


def split_indices(file_names: Sequence[str], eval_fraction: float, split: str) -> list[int]:
    """Indices of the rows of `split` ("train", "eval" or "all") under `eval_files`."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if split == "all":
        return list(range(len(file_names)))
    held = eval_files(file_names, eval_fraction)
    return [i for i, name in enumerate(file_names) if (name in held) == (split == "eval")]


class _ClipDataset(Dataset, ABC):
    """Shared clip sampling and bad-file handling for file-backed video datasets.

    In strict mode a bad video raises `VideoReadError`. Otherwise it is skipped: one warning per file, counted in
    `num_skipped`, and the next readable item is returned in its place.
    """

    def __init__(
        self,
        num_frames: int = 16,
        size: int | Sequence[int] | None = None,
        stride: int = 1,
        sampling: Literal["center", "random"] = "random",
        strict: bool = False,
    ):
        if sampling not in ("center", "random"):
            raise ValueError(f"sampling must be 'center' or 'random', got {sampling!r}")
        self.num_frames, self.size, self.stride, self.sampling, self.strict = (
            num_frames,
            size,
            stride,
            sampling,
            strict,
        )
        self.bad_files: set[str] = set()

    @property
    def num_skipped(self) -> int:
        return len(self.bad_files)

    @abstractmethod
    def _video_path(self, index: int) -> str:
        """Path of item `index`'s video."""

    @abstractmethod
    def _row(self, index: int) -> dict[str, Any]:
        """Metadata row of item `index`."""

    def _load(self, index: int) -> dict[str, Any]:
        path = self._video_path(index)
        video = read_video(path, self.num_frames, self.stride, self.sampling, self.size)
        item = {"video": video, "file_name": os.path.basename(path)}
        row = self._row(index)
        if "text" in row:
            item["text"] = str(row["text"])
        if "label" in row:
            item["label"] = int(row["label"])
        return item

    def __getitem__(self, index: int) -> dict[str, Any]:
        for offset in range(len(self)):
            current = (index + offset) % len(self)
            try:
                return self._load(current)
            except VideoReadError as err:
                if self.strict:
                    raise
                path = self._video_path(current)
                if path not in self.bad_files:
                    self.bad_files.add(path)
                    logger.warning("skipping bad video (%d skipped so far): %s", len(self.bad_files), err)
        raise VideoReadError(f"no readable video among {len(self)} items ({self.num_skipped} bad files)")


class VideoFolderDataset(_ClipDataset):
    """Videos in `root` with optional `metadata.jsonl`/`metadata.csv` (`file_name`, `text`, `label`).

    Items: `video` float `(3, T, H, W)` in [-1, 1], `file_name`, and `text`/`label` where the metadata has them.
    split: "all" (default), or "train" / "eval" of a split by file (`eval_files` with `eval_fraction`).
    """

    def __init__(self, root: str | os.PathLike, split: str = "all", eval_fraction: float = 0.0, **clip_options):
        super().__init__(**clip_options)
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: video folder does not exist")
        rows = read_metadata(self.root)
        if not rows:
            raise ValueError(f"{self.root}: no videos found (extensions {VIDEO_EXTENSIONS}) and no metadata rows")
        self.rows = [rows[i] for i in split_indices([r["file_name"] for r in rows], eval_fraction, split)]
        if not self.rows:
            raise ValueError(f"{self.root}: the {split!r} split (eval_fraction={eval_fraction}) holds no videos")

    def __len__(self) -> int:
        return len(self.rows)

    def _video_path(self, index: int) -> str:
        return str(self.root / self.rows[index]["file_name"])

    def _row(self, index: int) -> dict[str, Any]:
        return self.rows[index]


class HFVideoDataset(_ClipDataset):
    """Adapter for a `datasets.Dataset` whose rows have a video path column and `text` and/or `label`.

    Args:
        dataset: the Hugging Face dataset.
        video_column: column with a path to the video file (`file_name` or `video` by default).
        root: folder that relative paths are resolved against.
        split, eval_fraction: as for `VideoFolderDataset` (split by the video path column).
    """

    def __init__(
        self,
        dataset,
        video_column: str | None = None,
        root: str | os.PathLike = ".",
        split: str = "all",
        eval_fraction: float = 0.0,
        **clip_options,
    ):
        super().__init__(**clip_options)
        columns = list(dataset.column_names)
        if video_column is None:
            video_column = next((c for c in ("file_name", "video", "path") if c in columns), None)
        if video_column not in columns:
            raise ValueError(f"dataset has no video column {video_column!r} (columns: {columns})")
        if "text" not in columns and "label" not in columns:
            raise ValueError(f"dataset needs a 'text' and/or 'label' column (columns: {columns})")
        self.dataset, self.video_column, self.root = dataset, video_column, Path(root)
        if split != "all":
            paths = [self._path_value(v) for v in dataset[video_column]]
            self.dataset = dataset.select(split_indices(paths, eval_fraction, split))
            if len(self.dataset) == 0:
                raise ValueError(f"the {split!r} split (eval_fraction={eval_fraction}) holds no videos")

    @staticmethod
    def _path_value(value) -> str:
        return str(value.get("path") if isinstance(value, dict) else value)  # datasets' Video feature: {"path": ..}

    def __len__(self) -> int:
        return len(self.dataset)

    def _video_path(self, index: int) -> str:
        return str(self.root / self._path_value(self.dataset[index][self.video_column]))

    def _row(self, index: int) -> dict[str, Any]:
        return self.dataset[index]


def collate_clips(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors (`video`, ...) and `label`; keep strings as lists."""
    batch: dict[str, Any] = {"video": torch.stack([item["video"] for item in items])}
    for key in items[0]:
        if key == "video":
            continue
        values = [item.get(key) for item in items]
        if isinstance(values[0], torch.Tensor):
            batch[key] = torch.stack(values)
        else:
            batch[key] = torch.tensor(values) if key == "label" else values
    return batch
