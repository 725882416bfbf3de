"""diffusers pipelines over HiVAE latents: generation, interpolation, editing."""

from diffusers.utils import export_to_video

from .editing import HiVAEEditOutput, HiVAEEditPipeline
from .interpolation import HiVAEInterpolationOutput, HiVAEInterpolationPipeline, interpolate_latents, lerp, slerp
from .pipeline_hivae_video import FLOW_SCHEDULERS, HiVAEPipelineOutput, HiVAEVideoPipeline, frames_to_video

__all__ = [
    "FLOW_SCHEDULERS",
    "HiVAEEditOutput",
    "HiVAEEditPipeline",
    "HiVAEInterpolationOutput",
    "HiVAEInterpolationPipeline",
    "HiVAEPipelineOutput",
    "HiVAEVideoPipeline",
    "export_to_video",
    "frames_to_video",
    "interpolate_latents",
    "lerp",
    "slerp",
]
