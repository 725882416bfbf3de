"""Distributed training on CPU with two processes (slow: run with `pytest -m slow`)."""

import shutil
import subprocess
import sys

import pytest
import torch

pytestmark = pytest.mark.slow


def test_train_dit_with_two_cpu_processes(tmp_path):
    from hivae import HiVAE

    from .conftest import TINY_HIVAE

    torch.manual_seed(0)
    HiVAE(**TINY_HIVAE).save_pretrained(tmp_path / "tok")
    launcher = (
        [shutil.which("accelerate"), "launch"]
        if shutil.which("accelerate")
        else [sys.executable, "-m", "accelerate.commands.launch"]
    )
    command = launcher + [
        "--num_processes",
        "2",
        "--cpu",
        "gen/train_dit.py",
        "--config",
        "configs/dit/shapes-32.yaml",
        f"tokenizer={tmp_path / 'tok'}",
        f"cache_dir={tmp_path / 'cache'}",
        f"train.output_dir={tmp_path / 'run'}",
        "size=null",
        "model.hidden_size=32",
        "model.depth=1",
        "model.heads=2",
        "data.size=16",
        "data.num_frames=8",
        "data.num_samples=64",
        "train.batch_size=4",
        "train.max_steps=4",
        "train.checkpoint_every=2",
        "train.sample_every=0",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "pipeline" / "model_index.json").is_file()
    assert (tmp_path / "run" / "checkpoints" / "step-0000004" / "trainer_state.json").is_file()
