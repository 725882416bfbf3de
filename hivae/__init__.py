"""hivae: hierarchical video tokenizer (structure + dynamics latents), DiT generator and pipelines."""

from .baseline import VideoVAE3D
from .latents import DiagonalGaussian, HierarchicalLatent, HierarchicalLatentDistribution
from .model import HiVAE
from .outputs import DecoderOutput, EncoderOutput, ReconstructionOutput

__version__ = "0.1.0"

TOKENIZERS = {"hivae": HiVAE, "baseline": VideoVAE3D}

__all__ = [
    "TOKENIZERS",
    "DecoderOutput",
    "DiagonalGaussian",
    "EncoderOutput",
    "HiVAE",
    "HierarchicalLatent",
    "HierarchicalLatentDistribution",
    "ReconstructionOutput",
    "VideoVAE3D",
]
