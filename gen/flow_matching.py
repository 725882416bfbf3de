"""Rectified flow: x_sigma = (1 - sigma) x0 + sigma * noise, the model predicts v = noise - x0.

The convention is diffusers' `FlowMatchEulerDiscreteScheduler`: timestep = sigma * 1000, and its Euler step
x <- x + (sigma_next - sigma) * v walks from noise (sigma = 1) to data (sigma = 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.utils.torch_utils import randn_tensor

from hivae.latents import HierarchicalLatent


@dataclass
class FlowConfig:
    logit_mean: float = 0.0  # logit-normal timestep sampling: sigma = sigmoid(N(mean, std))
    logit_std: float = 1.0
    structure_weight: float = 1.0  # loss weight of the structure part
    dynamics_weight: float = 1.0  # loss weight of the dynamics part


def sample_sigmas(batch: int, config: FlowConfig, device, generator: torch.Generator | None = None) -> torch.Tensor:
    normal = randn_tensor((batch,), generator=generator, device=torch.device(device))
    return torch.sigmoid(config.logit_mean + config.logit_std * normal)


def add_noise(latent: HierarchicalLatent, noise: HierarchicalLatent, sigmas: torch.Tensor) -> HierarchicalLatent:
    view = lambda x: sigmas.view(-1, *([1] * (x.ndim - 1))).to(x.dtype)  # noqa: E731
    return latent.zip_map(noise, lambda x0, n: (1 - view(x0)) * x0 + view(x0) * n)


def flow_matching_loss(
    model,
    latent: HierarchicalLatent,
    config: FlowConfig,
    generator: torch.Generator | None = None,
    rows: tuple[int, int] | None = None,
    **conditions,
) -> tuple[torch.Tensor, dict[str, float]]:
    """MSE between predicted and true velocity for each part, weighted and summed.

    rows: (offset, total) when `latent` is rows offset..offset+B of a global batch of `total` spread over processes:
    sigmas and noise are drawn for the whole global batch from `generator` and sliced, so a run's randomness does
    not depend on how many processes share the batch.
    """
    batch = latent.batch_size
    offset, total = rows or (0, batch)
    take = slice(offset, offset + batch)
    sigmas = sample_sigmas(total, config, latent.structure.device, generator)[take]
    noise = latent.map(
        lambda x: randn_tensor((total, *x.shape[1:]), generator=generator, device=x.device, dtype=x.dtype)[take]
    )
    noisy = add_noise(latent, noise, sigmas)
    prediction = model(noisy, sigmas * 1000, **conditions).sample
    target = noise.zip_map(latent, lambda n, x0: n - x0)
    loss_s = (prediction.structure.float() - target.structure.float()).pow(2).mean()
    loss_d = (prediction.dynamics.float() - target.dynamics.float()).pow(2).mean()
    loss = config.structure_weight * loss_s + config.dynamics_weight * loss_d
    return loss, {"loss": loss.item(), "loss_structure": loss_s.item(), "loss_dynamics": loss_d.item()}
