"""Distributed training on CPU with two processes (slow: run with `pytest -m slow`)."""

import os
import subprocess
import sys

import pytest
import torch

pytestmark = pytest.mark.slow


def test_train_dit_with_two_cpu_processes_matches_one_process(tmp_path):
    """DDP with 2 processes x batch 2 (condition_dropout=0, shared latent-cache build) ends at the weights of one
    process with batch 4: gradients averaged over ranks, data split by batches, noise drawn per global batch."""
    from safetensors.torch import load_file

    from hivae import HiVAE

    from .conftest import TINY_HIVAE, dit_args

    torch.manual_seed(0)
    HiVAE(**TINY_HIVAE).save_pretrained(tmp_path / "tok")
    # `accelerate launch --cpu --num_processes 2` starts ONE process (its simple launcher); torchrun starts two
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    common = ["data.num_samples=16", "train.max_steps=4", "train.checkpoint_every=2", "model.condition_dropout=0.0"]
    two = launcher + ["gen/train_dit.py"]
    two += dit_args(tmp_path, "two", *common, "train.batch_size=2", f"cache_dir={tmp_path / 'cache2'}")
    result = subprocess.run(two, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 processes" in result.stdout  # really distributed
    one = [sys.executable, "gen/train_dit.py"]
    one += dit_args(tmp_path, "one", *common, "train.batch_size=4", f"cache_dir={tmp_path / 'cache1'}")
    result = subprocess.run(one, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "two" / "pipeline" / "model_index.json").is_file()
    assert (tmp_path / "two" / "checkpoints" / "step-0000004" / "trainer_state.json").is_file()
    a = load_file(tmp_path / "one" / "model" / "diffusion_pytorch_model.safetensors")
    b = load_file(tmp_path / "two" / "model" / "diffusion_pytorch_model.safetensors")
    moved = load_file(tmp_path / "one" / "checkpoints" / "step-0000002" / "model.safetensors")
    assert any(not torch.equal(moved[k], a[k]) for k in a)  # training did change the weights
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4, msg=key)


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
