"""Distributed training on CPU with two processes (slow: run with `pytest -m slow`)."""

import shutil
import subprocess
import sys

import pytest
import torch

pytestmark = pytest.mark.slow


def test_train_dit_with_two_cpu_processes(tmp_path):
    from hivae import HiVAE

    from .conftest import TINY_HIVAE, dit_args

    torch.manual_seed(0)
    HiVAE(**TINY_HIVAE).save_pretrained(tmp_path / "tok")
    launcher = (
        [shutil.which("accelerate"), "launch"]
        if shutil.which("accelerate")
        else [sys.executable, "-m", "accelerate.commands.launch"]
    )
    command = (
        launcher
        + ["--num_processes", "2", "--cpu", "gen/train_dit.py"]
        + dit_args(
            tmp_path,
            "run",
            "data.num_samples=64",
            "train.batch_size=4",
            "train.max_steps=4",
            "train.checkpoint_every=2",
        )
    )
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "pipeline" / "model_index.json").is_file()
    assert (tmp_path / "run" / "checkpoints" / "step-0000004" / "trainer_state.json").is_file()


def test_killed_tokenizer_run_resumes_to_the_same_weights(tmp_path):
    """SIGKILL a training run once it has a checkpoint, rerun the same command, compare with an uninterrupted run."""
    import signal
    import time

    from safetensors.torch import load_file

    from .conftest import TINY_TOKENIZER_OVERRIDES

    def command(out):
        return [
            sys.executable,
            "gen/train_tokenizer.py",
            "--config",
            "configs/tokenizer/shapes-32.yaml",
            f"train.output_dir={out}",
            *TINY_TOKENIZER_OVERRIDES,
            "train.max_steps=60",
            "train.checkpoint_every=10",
            "train.checkpoints_total_limit=10",
        ]

    subprocess.run(command(tmp_path / "full"), check=True, capture_output=True, timeout=600)
    process = subprocess.Popen(command(tmp_path / "killed"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and not list(checkpoints.glob("step-0000020")):
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "killed" / "model").exists()  # killed before the end
    subprocess.run(command(tmp_path / "killed"), check=True, capture_output=True, timeout=600)
    a = load_file(tmp_path / "full" / "checkpoints" / "step-0000060" / "model.safetensors")
    b = load_file(tmp_path / "killed" / "checkpoints" / "step-0000060" / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
