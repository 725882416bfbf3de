"""Reading and writing video files.

Reading uses decord when it is installed (fast seeking) and PyAV otherwise; both return uint8 frames that are
sampled, resized, centre-cropped and scaled to [-1, 1]. Writing produces mp4 (H.264 through PyAV) or gif (imageio)
and is atomic: the file appears under its final name only once complete.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch

from .transforms import frames_to_tensor, tensor_to_frames

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".gif")
WRITE_EXTENSIONS = (".mp4", ".gif")

try:  # decord is the fast path; it has no wheels for every platform
    import decord

    decord.bridge.set_bridge("native")
except ImportError:  # pragma: no cover - depends on the platform
    decord = None


class VideoReadError(ValueError):
    """A video file is missing, corrupt, too short or of an unsupported type. The message names the file."""


@dataclass
class VideoInfo:
    num_frames: int
    fps: float
    height: int
    width: int


def _check_readable(path: Path) -> None:
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise VideoReadError(f"{path}: unsupported extension {path.suffix!r}, expected one of {VIDEO_EXTENSIONS}")
    if not path.is_file():
        raise VideoReadError(f"{path}: no such video file")
    if path.stat().st_size == 0:
        raise VideoReadError(f"{path}: file is empty (0 bytes)")


def _decord_reader(path: Path):
    try:
        return decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    except Exception as err:  # decord raises its own DECORDError (a RuntimeError)
        raise VideoReadError(f"{path}: cannot be decoded ({err.__class__.__name__}: {str(err).splitlines()[0]})")


def _pyav_decode_all(path: Path) -> tuple[np.ndarray, float]:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(f"{path}: contains no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0) or 0.0
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    except VideoReadError:
        raise
    except Exception as err:
        raise VideoReadError(f"{path}: cannot be decoded ({err.__class__.__name__}: {str(err).splitlines()[0]})")
    if not frames:
        raise VideoReadError(f"{path}: has 0 decodable frames")
    return np.stack(frames), fps


def _use_decord(path: Path, backend: str) -> bool:
    if backend not in ("auto", "decord", "pyav"):
        raise ValueError(f"backend must be 'auto', 'decord' or 'pyav', got {backend!r}")
    if backend == "decord" and decord is None:
        raise ImportError("backend='decord' requested but decord is not installed")
    return decord is not None and backend != "pyav" and path.suffix.lower() != ".gif"


def video_info(path: str | os.PathLike, backend: str = "auto") -> VideoInfo:
    """Frame count, frame rate and size of a video file."""
    path = Path(path)
    _check_readable(path)
    if _use_decord(path, backend):
        reader = _decord_reader(path)
        height, width = reader[0].shape[:2] if len(reader) else (0, 0)
        return VideoInfo(len(reader), float(reader.get_avg_fps()), height, width)
    frames, fps = _pyav_decode_all(path)
    return VideoInfo(len(frames), fps, frames.shape[1], frames.shape[2])


def clip_indices(
    total: int,
    num_frames: int,
    stride: int = 1,
    start: Literal["center", "random"] | int = "center",
    generator: torch.Generator | None = None,
    name: str = "video",
) -> list[int]:
    """Indices of `num_frames` frames `stride` apart inside a video of `total` frames."""
    if num_frames < 1 or stride < 1:
        raise ValueError(f"num_frames and stride must be >= 1, got num_frames={num_frames}, stride={stride}")
    span = (num_frames - 1) * stride + 1
    if total < span:
        raise VideoReadError(
            f"{name}: has {total} frames, need at least {span} (num_frames={num_frames}, stride={stride})"
        )
    if start == "center":
        first = (total - span) // 2
    elif start == "random":
        first = int(torch.randint(0, total - span + 1, (1,), generator=generator))
    elif isinstance(start, int) and not isinstance(start, bool):
        if not 0 <= start <= total - span:
            raise VideoReadError(f"{name}: start={start} leaves fewer than {span} frames (video has {total})")
        first = start
    else:
        raise ValueError(f"start must be 'center', 'random' or a frame index, got {start!r}")
    return list(range(first, first + span, stride))


def _decord_clip(path: Path, num_frames: int, stride: int, start, generator) -> np.ndarray:
    reader = _decord_reader(path)
    indices = clip_indices(len(reader), num_frames, stride, start, generator, name=str(path))
    try:
        return reader.get_batch(indices).asnumpy()
    except Exception as err:
        raise VideoReadError(f"{path}: frames {indices[0]}..{indices[-1]} cannot be decoded ({err})")


def read_video(
    path: str | os.PathLike,
    num_frames: int = 16,
    stride: int = 1,
    start: Literal["center", "random"] | int = "center",
    size: int | Sequence[int] | None = None,
    generator: torch.Generator | None = None,
    backend: Literal["auto", "decord", "pyav"] = "auto",
) -> torch.Tensor:
    """Read a clip of `num_frames` frames, `stride` apart, as a float tensor `(3, T, H, W)` in [-1, 1].

    `size` (int or (H, W)) resizes the shorter side and centre-crops; None keeps the native size.
    Raises `VideoReadError` naming the file when it is missing, corrupt, empty or too short.
    """
    path = Path(path)
    _check_readable(path)
    if _use_decord(path, backend):
        try:
            return frames_to_tensor(_decord_clip(path, num_frames, stride, start, generator), size)
        except VideoReadError as err:
            if backend == "decord" or "need at least" in str(err) or "leaves fewer" in str(err):
                raise
            logger.debug("decord failed (%s); retrying with PyAV", err)  # decord rejects some frame sizes
    all_frames, _ = _pyav_decode_all(path)
    indices = clip_indices(len(all_frames), num_frames, stride, start, generator, name=str(path))
    frames = all_frames[indices]
    return frames_to_tensor(frames, size)


def _atomic_target(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are ordinary files
    return Path(tmp)


def write_video(path: str | os.PathLike, video: torch.Tensor | np.ndarray, fps: int = 8) -> Path:
    """Write a video to .mp4 or .gif atomically and return its path.

    `video`: float tensor `(3, T, H, W)` in [-1, 1], or uint8 array `(T, H, W, 3)`.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_EXTENSIONS:
        raise ValueError(f"{path}: cannot write {suffix!r}, expected one of {WRITE_EXTENSIONS}")
    frames = tensor_to_frames(video) if isinstance(video, torch.Tensor) else np.asarray(video)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"{path}: frames must be uint8 (T, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
    tmp = _atomic_target(path)
    try:
        if suffix == ".gif":
            import imageio.v3 as iio

            iio.imwrite(tmp, frames, extension=".gif", duration=1000 / fps, loop=0)
        else:
            _write_mp4(tmp, frames, fps)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _write_mp4(path: Path, frames: np.ndarray, fps: int) -> None:
    import av

    # yuv420p needs even sizes: pad by edge replication
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=int(fps))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "16", "preset": "fast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
