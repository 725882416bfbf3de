import json

import pytest
import torch

from hivae.data import MovingShapes, write_video

torch.set_num_threads(2)


@pytest.fixture
def video_folder(tmp_path):
    """A videofolder of 3 good shapes clips (16 frames at 32x32) with metadata.jsonl."""
    dataset = MovingShapes(3, num_frames=16, size=32, seed=1)
    rows = []
    for index in range(3):
        item = dataset[index]
        write_video(tmp_path / f"clip{index}.mp4", item["video"])
        rows.append({"file_name": f"clip{index}.mp4", "text": item["text"], "label": item["label"]})
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path
