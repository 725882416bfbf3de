"""Bad files, malformed metadata, random configs and odd requests end in the documented errors, never a crash."""

import json
import random
from dataclasses import dataclass, field

import pytest
import torch

from hivae import HiVAE
from hivae.config import ConfigError, load_config
from hivae.data import MovingShapes, VideoFolderDataset, VideoReadError, read_video, write_video

from .conftest import TINY_HIVAE, dit_args

DOCUMENTED = (ValueError, FileNotFoundError, TypeError)  # VideoReadError and ConfigError are ValueErrors


def test_truncated_or_missing_weights_name_the_file(tmp_path):
    HiVAE(**TINY_HIVAE).save_pretrained(tmp_path)
    weights = tmp_path / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ValueError, match="diffusion_pytorch_model.safetensors: cannot be loaded"):
        HiVAE.from_pretrained(tmp_path)
    weights.unlink()
    (tmp_path / "diffusion_pytorch_model.bin").write_bytes(b"pickles are never loaded")
    with pytest.raises(FileNotFoundError, match="only safetensors weights are loaded"):
        HiVAE.from_pretrained(tmp_path)


def test_fuzz_video_files(tmp_path):
    rng = random.Random(0)
    good = write_video(tmp_path / "good.mp4", MovingShapes(1, 12, 16)[0]["video"]).read_bytes()
    for index in range(25):
        kind = index % 3
        if kind == 0:
            payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 4000)))
        elif kind == 1:
            payload = good[: rng.randint(0, len(good) - 1)]
        else:  # flip bytes inside a valid file
            payload = bytearray(good)
            for _ in range(20):
                payload[rng.randrange(len(payload))] = rng.getrandbits(8)
            payload = bytes(payload)
        path = tmp_path / f"fuzz{index}.mp4"
        path.write_bytes(payload)
        try:
            clip = read_video(path, num_frames=4, size=16)
        except VideoReadError as err:
            assert str(path) in str(err)
        else:
            assert clip.shape == (3, 4, 16, 16) and torch.isfinite(clip).all()


def test_fuzz_metadata_files(tmp_path):
    rng = random.Random(1)
    samples = ['{"file_name": 3}', "[1, 2]", "{", '{"text": "x"}', '{"file_name": "a.mp4", "label": "x"}', "\x00\xff"]
    for index in range(20):
        folder = tmp_path / f"f{index}"
        folder.mkdir()
        name = "metadata.jsonl" if index % 2 else "metadata.csv"
        lines = [rng.choice(samples) for _ in range(rng.randint(1, 4))]
        (folder / name).write_text("\n".join(lines) if name.endswith("jsonl") else "a,b\n" + "\n".join(lines))
        try:
            dataset = VideoFolderDataset(folder, num_frames=4)
            for i in range(len(dataset)):
                dataset[i]
        except DOCUMENTED as err:
            assert str(folder) in str(err) or "no readable video" in str(err)


@dataclass
class Section:
    lr: float = 1.0
    name: str = "a"


@dataclass
class Root:
    steps: int = 1
    section: Section = field(default_factory=Section)


def test_fuzz_config_loader(tmp_path):
    rng = random.Random(2)
    values = [1, 1.5, "x", True, None, [1, 2], {"lr": "fast"}, {"nope": 1}, {"lr": 2}]
    for index in range(50):
        data = {
            rng.choice(["steps", "section", "stpes", "section"]): rng.choice(values) for _ in range(rng.randint(0, 3))
        }
        path = tmp_path / f"c{index}.yaml"
        path.write_text(json.dumps(data))  # JSON is yaml
        try:
            config = load_config(path, Root)
        except ConfigError as err:
            assert str(path) in str(err)
        else:
            assert isinstance(config.steps, int) and isinstance(config.section.lr, float)


def test_long_and_unusual_prompts(tiny_pipeline):
    long_prompt = "a red circle moving left " * 200  # truncated to max_text_length tokens
    frames = tiny_pipeline(long_prompt, num_inference_steps=1, output_type="pt").frames
    assert frames.shape == (1, 8, 3, 16, 16) and torch.isfinite(frames).all()
    assert tiny_pipeline("\u00e9\u4e2d \U0001f600", num_inference_steps=1, output_type="pt").frames.shape[0] == 1
    with pytest.raises(ValueError, match="empty string"):
        tiny_pipeline("   ", num_inference_steps=1)


def test_dit_training_resumes_exactly(tmp_path, tiny_hivae):
    from safetensors.torch import load_file

    from gen.train_dit import main as train_dit

    tiny_hivae.save_pretrained(tmp_path / "tok")

    def run(out, *extra):
        train_dit(
            dit_args(
                tmp_path,
                out,
                "data.num_samples=32",
                "train.batch_size=8",
                "train.max_steps=4",
                "train.checkpoint_every=4",
                *extra,
            )
        )

    run("a")
    run("b", "train.stop_at_step=2")
    run("b")
    a = load_file(tmp_path / "a" / "checkpoints" / "step-0000004" / "model.safetensors")
    b = load_file(tmp_path / "b" / "checkpoints" / "step-0000004" / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
