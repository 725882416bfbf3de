"""diffusers pipelines over HiVAE latents: generation, interpolation, editing."""

from diffusers.utils import export_to_video

from .pipeline_hivae_video import HiVAEPipelineOutput, HiVAEVideoPipeline, postprocess_video

__all__ = ["HiVAEPipelineOutput", "HiVAEVideoPipeline", "export_to_video", "postprocess_video"]
